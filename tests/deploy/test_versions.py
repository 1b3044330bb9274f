"""One place names the TF Serving version, and the gate checks exports against it."""

from __future__ import annotations

import re
import subprocess

from tests.deploy import manifests
from training import compat

VERSION_FILE = manifests.ROOT / "serving" / "tfserving.env"
TF_SERVING_REFERENCE = re.compile(r"tensorflow/serving:(\d+\.\d+\.\d+)")


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=manifests.ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [f for f in listed if (manifests.ROOT / f).is_file()]


def test_the_version_file_names_a_plain_tf_serving_release() -> None:
    image = compat.pinned_image(VERSION_FILE)
    # The GPU overlay splits the value at `-` to append -gpu: the registry part must
    # have none, and the tag is X.Y.Z exactly.
    assert re.fullmatch(r"[^-]*tensorflow/serving:\d+\.\d+\.\d+", image), image


def test_no_other_file_pins_a_tf_serving_version() -> None:
    """Compose, the overlays and the docs take the version from serving/tfserving.env:
    anything else naming tensorflow/serving:X.Y.Z must name the same release."""
    pinned = compat.pinned_version(VERSION_FILE)
    for name in tracked_files():
        if name.endswith((".png", ".npz", ".jpg")):
            continue
        text = (manifests.ROOT / name).read_text(errors="ignore")
        for version in TF_SERVING_REFERENCE.findall(text):
            assert version == pinned, f"{name} names tensorflow/serving:{version}"
    readme = (manifests.ROOT / "README.md").read_text()
    assert f"tensorflow/serving:{pinned}-gpu" in readme


def test_make_check_serving_compat_runs_the_gate() -> None:
    dry_run = subprocess.run(
        ["make", "-n", "check-serving-compat"],
        cwd=manifests.ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "-m training.compat" in dry_run
