"""The client and CLI against the real local server (`python -m serving`, quick model)."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from client import (
    AsyncClient,
    Client,
    InvalidInput,
    ModelNotFound,
    Prediction,
)
from tests.client.test_preprocess import digit
from tests.conftest import ROOT, python_env

SAMPLES = ROOT / "data" / "samples"


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "client", *args],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sample_files() -> list[Path]:
    files = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".png", ".jpg"))
    assert len(files) == 10, "data/samples should hold the ten demo digits"
    return files


def check(prediction: Prediction) -> None:
    assert 0 <= prediction.digit <= 9
    assert len(prediction.probabilities) == 10
    assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-4)
    assert prediction.confidence == max(prediction.probabilities)
    assert (prediction.model, prediction.version) == ("mnist", 1)


def test_every_input_kind(server):
    path = sample_files()[0]
    data = path.read_bytes()
    with Client(server.target) as client:
        results = [
            client.predict(path),
            client.predict(str(path)),
            client.predict(data),
            client.predict(io.BytesIO(data)),
            client.predict(Image.open(path)),
            client.predict(np.asarray(Image.open(path))),
        ]
    for result in results:
        check(result)
    # the same picture, the same answer (decoded by Pillow or handed over as pixels)
    np.testing.assert_allclose(
        [r.probabilities for r in results[1:]], [results[0].probabilities] * 5, atol=1e-3
    )


def test_predict_many_matches_one_by_one(server):
    images = [*sample_files(), *(digit(i) for i in range(20))]
    with Client(server.target) as client:
        many = client.predict_many(images, batch_size=8)
        single = [client.predict(image) for image in images]
    assert [p.digit for p in many] == [p.digit for p in single]
    np.testing.assert_allclose(
        [p.probabilities for p in many], [p.probabilities for p in single], atol=1e-5
    )


def test_one_predict_larger_than_four_megabytes(server):
    """3,000 images (9.4 MB) in one Predict: the raised limits on both ends allow it."""
    x = np.random.default_rng(0).random((3000, 28, 28), dtype=np.float32)
    with Client(server.target, timeout=60) as client:
        predictions = client.predict_tensor(x, batch_size=3000)
    assert len(predictions) == 3000


def test_versions_labels_signatures_and_models(server):
    with Client(server.target, version=1) as client:
        check(client.predict(digit(0)))
    with Client(server.target, version=99) as client, pytest.raises(ModelNotFound, match="99"):
        client.predict(digit(0))
    with Client(server.target, "nope") as client, pytest.raises(ModelNotFound, match="nope"):
        client.predict(digit(0))
    with (
        Client(server.target, version_label="stable") as client,
        pytest.raises((InvalidInput, ModelNotFound), match="stable"),
    ):
        client.predict(digit(0))
    with (
        Client(server.target, signature="nope") as client,
        pytest.raises(InvalidInput, match="nope"),
    ):
        client.predict(digit(0))


def test_metadata_status_and_readiness(server):
    with Client(server.target) as client:
        meta = client.metadata()
        status = client.status()
        ready = client.wait_until_ready(30)
    signature = meta.signatures["serving_default"]
    assert (meta.model, meta.version) == ("mnist", 1)
    assert signature.inputs["images"].dtype == "float32"
    assert signature.inputs["images"].shape == (None, 28, 28, 1)
    assert signature.outputs["probabilities"].shape == (None, 10)
    assert signature.outputs["classes"].dtype == "int64"
    assert [(v.version, v.state) for v in status.versions] == [(1, "AVAILABLE")]
    assert ready.available == (1,)


def test_several_addresses_and_dns_targets_balance(server):
    port = server.port
    for target in (
        f"127.0.0.1:{port},127.0.0.1:{port}",
        f"dns:///127.0.0.1:{port}",
        f"ipv4:127.0.0.1:{port}",
    ):
        with Client(target) as client:
            check(client.predict(digit(1)))


def test_async_client(server):
    images = [digit(i) for i in range(40)]

    async def run():
        async with AsyncClient(server.target) as client:
            many = await client.predict_many(images, batch_size=8)
            each = await asyncio.gather(*(client.predict(image) for image in images))
            return many, each, await client.status()

    many, each, status = asyncio.run(run())
    assert [p.digit for p in many] == [p.digit for p in each]
    assert status.available == (1,)


# --- the CLI, as a user runs it ---


def test_cli_predicts_the_samples_and_draws_the_sheet(server, tmp_path):
    sheet = tmp_path / "sheet.png"
    result = run_cli("predict", str(SAMPLES), "--server", server.target, "--show", str(sheet))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(p) for p in sample_files()]
    for line in lines:
        answer = line.split(": ")[1].removesuffix(" [uncertain]")  # the quick model may be unsure
        digit_text, _, confidence = answer.partition(" ")
        assert digit_text.isdigit() and confidence.startswith("(") and confidence.endswith("%)")
    with Image.open(sheet) as image:
        assert image.width > 400 and image.height > 3 * 100  # ten entries, four a row


def test_the_demo_samples_are_valid_photos_of_their_digits():
    """Each sample is a real photo-like image whose name starts with its digit."""
    for path in sample_files():
        with Image.open(path) as image:
            assert max(image.size) >= 200, path  # a photo, not a 28x28 crop
        assert path.name[0].isdigit()
    assert sorted(int(p.name[0]) for p in sample_files()) == list(range(10))


def test_cli_json_with_a_bad_file_among_good_ones(server, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not a picture")
    files = [str(p) for p in sample_files()[:2]]
    result = run_cli(
        "predict", files[0], str(bad), files[1], "--json", "--top-k", "2", "--server", server.target
    )
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in records] == [files[0], str(bad), files[1]]
    assert "not an image" in records[1]["error"] and set(records[1]) == {"file", "error"}
    for record in (records[0], records[2]):
        assert {"file", "digit", "confidence", "probabilities", "model", "version"} <= set(record)
        assert record["model"] == "mnist" and record["version"] == 1
        assert record["top"][0][0] == record["digit"]


def test_cli_batches_many_files(server, tmp_path):
    for i in range(25):
        Image.fromarray(digit(i)).save(tmp_path / f"d{i:02d}.png")
    result = run_cli("predict", str(tmp_path), "--batch-size", "10", "--server", server.target)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 25
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_cli_metadata_status_and_errors(server):
    meta = run_cli("metadata", "--server", server.target)
    assert meta.returncode == 0, meta.stderr
    assert "input  images: float32 (-1, 28, 28, 1)" in meta.stdout
    status = run_cli("status", "--server", server.target, "--json")
    assert json.loads(status.stdout)["versions"][0]["state"] == "AVAILABLE"
    missing = run_cli("status", "--server", server.target, "--model", "nope")
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "NOT_FOUND" in missing.stderr
    label = run_cli(
        "predict", str(sample_files()[0]), "--label", "stable", "--server", server.target
    )
    assert label.returncode == 1 and "stable" in label.stderr


def test_tensorflow_is_never_imported(server):
    """Real use of `import client` and the CLI in a fresh interpreter loads no TensorFlow."""
    script = f"""
import sys
import client
from client import _cli as cli
with client.Client({server.target!r}) as c:
    c.predict({str(sample_files()[0])!r})
    c.predict_many([{str(sample_files()[1])!r}])
    c.metadata()
    c.status()
assert cli.main(["predict", {str(SAMPLES)!r}, "--server", {server.target!r}, "--json"]) == 0
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in ("tensorflow", "tensorflow_serving", "keras", "matplotlib"))
print("HEAVY", heavy)
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "HEAVY []"
    assert len(result.stdout.splitlines()) == 11  # the ten JSON lines ran, and the check
