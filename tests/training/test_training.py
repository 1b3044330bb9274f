"""The quick training run, the export it writes, and the export's failure modes."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tests.conftest import ROOT, python_env
from training import export
from training.__main__ import train_dataset
from training.data import scale
from training.model import build_model


def version_dir(quick_model):
    return quick_model.base_path / "1"


def test_cli_prints_the_export_path_last(quick_model):
    lines = quick_model.stdout.strip().splitlines()
    assert lines[-1] == str(version_dir(quick_model))
    assert any(line.startswith("test accuracy: ") for line in lines)


def test_signature(quick_model):
    loaded = tf.saved_model.load(str(version_dir(quick_model)))
    fn = loaded.signatures["serving_default"]
    (spec,) = fn.structured_input_signature[1].values()
    assert list(fn.structured_input_signature[1]) == ["images"]
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, 28, 28, 1]
    outputs = fn.structured_outputs
    assert sorted(outputs) == ["classes", "probabilities"]
    assert outputs["probabilities"].dtype == tf.float32
    assert outputs["probabilities"].shape.as_list() == [None, 10]
    assert outputs["classes"].dtype == tf.int64 and outputs["classes"].shape.as_list() == [None]

    images = np.zeros((3, 28, 28, 1), np.float32)
    result = fn(images=tf.constant(images))
    assert result["probabilities"].shape == (3, 10)
    np.testing.assert_allclose(result["probabilities"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(
        result["classes"].numpy(), result["probabilities"].numpy().argmax(axis=1)
    )


def test_warmup_records_are_prediction_logs(quick_model):
    path = version_dir(quick_model) / "assets.extra" / export.WARMUP_FILE
    records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    assert 0 < len(records) <= 1000  # TF Serving replays at most 1000
    sizes = []
    for raw in records:
        log = prediction_log_pb2.PredictionLog.FromString(raw)
        request = log.predict_log.request
        assert request.model_spec.signature_name == "serving_default"
        tensor = tf.make_ndarray(request.inputs["images"])
        assert tensor.dtype == np.float32 and tensor.shape[1:] == (28, 28, 1)
        assert tensor.min() >= 0.0 and tensor.max() <= 1.0
        sizes.append(tensor.shape[0])
        # The exporter's own answers ride along for the compatibility gate.
        response = log.predict_log.response.outputs
        probabilities = tf.make_ndarray(response["probabilities"])
        assert probabilities.shape == (tensor.shape[0], 10)
        np.testing.assert_array_equal(tf.make_ndarray(response["classes"]), probabilities.argmax(1))
    # One record per batch shape the batching files make the servers run.
    assert sizes == list(export.warmup_batch_sizes())


def test_metrics_and_plots(quick_model):
    extra = version_dir(quick_model) / "assets.extra"
    metrics = json.loads((extra / "metrics.json").read_text())
    assert 0.5 < metrics["test_accuracy"] <= 1.0
    assert metrics["epochs"] == 2 and metrics["train_examples"] == 15000
    assert (
        metrics["data_sha256"] == "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"
    )
    assert {"tensorflow", "keras", "numpy"} <= set(metrics["packages"])
    assert metrics["exported_with_tensorflow"] == tf.__version__
    # Tests skip the gate (tests/conftest.py); tests/training/test_compat.py runs it.
    assert metrics["serving_compat"] == {"skipped": True}
    for png in ("training_curves.png", "confusion_matrix.png"):
        assert (extra / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_run_exports_version_2(quick_model, tmp_path):
    import shutil

    base = tmp_path / "mnist"
    shutil.copytree(quick_model.base_path, base)
    (base / ".tmp-leftover").mkdir()  # not numeric: ignored
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "--limit",
            "500",
            "--epochs",
            "1",
            "--export-dir",
            str(base),
        ],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(base / "2")
    assert export.versions(base) == [1, 2]

    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "--limit",
            "500",
            "--epochs",
            "1",
            "--export-dir",
            str(base),
            "--version",
            "2",
        ],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 2
    assert "already exists" in again.stderr


def test_failed_export_leaves_no_version(tmp_path):
    base = tmp_path / "mnist"
    images = np.zeros((4, 28, 28, 1), np.float32)

    def fail_midway(assets_extra):
        (assets_extra / "partial.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        export.export(build_model(), base, 1, warmup_images=images, extra_files=fail_midway)
    assert list(base.iterdir()) == []  # no numeric directory, no temporary leftovers


def test_existing_version_is_not_overwritten(tmp_path):
    base = tmp_path / "mnist"
    (base / "3").mkdir(parents=True)
    (base / "3" / "keep").write_text("old")
    images = np.zeros((1, 28, 28, 1), np.float32)
    with pytest.raises(export.ExportError, match="already exists"):
        export.export(build_model(), base, 3, warmup_images=images)
    assert (base / "3" / "keep").read_text() == "old"
    assert export.next_version(base) == 4


def test_same_seed_same_weights_and_order():
    import keras

    def run(seed):
        keras.utils.set_random_seed(seed)
        weights = build_model().get_weights()
        x = scale(np.arange(64 * 784, dtype=np.uint8).reshape(64, 28, 28) % 251)
        y = np.arange(64) % 10
        labels = [b.numpy().tolist() for _, b in train_dataset(x, y, 16, seed)]
        return weights, labels

    weights_a, order_a = run(7)
    weights_b, order_b = run(7)
    weights_c, order_c = run(8)
    assert all(np.array_equal(a, b) for a, b in zip(weights_a, weights_b, strict=True))
    assert order_a == order_b
    assert order_a != order_c
    assert not np.array_equal(weights_a[0], weights_c[0])


def test_unusable_export_dir_is_refused_before_training(tmp_path, capsys):
    from training.__main__ import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(SystemExit) as info:
        main(["--export-dir", str(blocker / "mnist"), "--limit", "10"])
    assert info.value.code == 2
    assert f"--export-dir {blocker / 'mnist'}" in capsys.readouterr().err
