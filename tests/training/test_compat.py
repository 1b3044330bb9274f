"""The TF Serving compatibility gate (training.compat).

The unmarked tests pin its rules without a second TensorFlow (the checker is replaced
by canned results). The tests marked `serving_compat` run the real gate: an isolated
environment with the pinned TF Serving's TensorFlow, created once and cached (about
1-2 minutes and 2 GB the first time), then a few seconds per run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework.attr_value_pb2 import AttrValue
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from tests.conftest import QuickModel
from training import compat, export
from training.model import build_model

PINNED = compat.pinned_version()
IMAGES = np.zeros((4, 28, 28, 1), np.float32)


def canned(passed: dict[str, bool]):
    """A stand-in for compat.check: each version passes or fails as `passed` says."""

    def check(exports, version, *, log=None):
        return [
            compat.Result(
                export=str(e),
                serving_version=version,
                tensorflow=version,
                passed=passed[version],
                error=None if passed[version] else "NotFoundError: Op type not registered 'X'",
            )
            for e in exports
        ]

    return check


def test_the_pinned_version_is_the_image_tag_in_the_one_version_file() -> None:
    assert compat.pinned_image() == f"tensorflow/serving:{PINNED}"
    assert compat.requirements(PINNED) == [
        f"tensorflow=={PINNED}",
        f"tensorflow-serving-api=={PINNED}",
    ]


def test_older_versions_from_the_environment_are_checked_too_oldest_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERVING_COMPAT_VERSIONS", "2.19.1, 2.9.3 2.19.1")
    assert compat.versions_to_check() == sorted({"2.9.3", "2.19.1", PINNED}, key=compat.version_key)
    assert compat.versions_to_check()[0] == "2.9.3"  # numerically, not as text


def test_bad_settings_and_unwritable_caches_are_gate_errors_not_crashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CompatError means "the gate did not run": export() warns and goes ahead."""
    monkeypatch.setenv("SERVING_COMPAT_VERSIONS", "2.19")
    with pytest.raises(compat.CompatError, match=r"not X\.Y\.Z"):
        compat.versions_to_check()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SERVING_COMPAT_CACHE", str(blocker / "cache"))
    with pytest.raises(compat.CompatError, match="cannot create"):
        compat.environment(PINNED)


def test_exports_are_found_in_base_paths_and_version_directories(tmp_path: Path) -> None:
    base = tmp_path / "mnist"
    for name in ("10", "2", ".tmp-3-x", "notes"):
        (base / name).mkdir(parents=True)
    (tmp_path / "single").mkdir()
    (tmp_path / "single" / "saved_model.pb").write_bytes(b"")
    assert compat.find_exports([base, tmp_path / "single"]) == [
        base / "2",
        base / "10",
        tmp_path / "single",
    ]


def test_a_version_the_pinned_server_cannot_load_is_never_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERVING_COMPAT")
    monkeypatch.setattr(compat, "check", canned({PINNED: False}))
    base = tmp_path / "mnist"
    with pytest.raises(export.ExportError, match=f"TF Serving {PINNED}.*Op type not registered"):
        export.export(build_model(), base, 1, warmup_images=IMAGES)
    assert list(base.iterdir()) == []  # neither the version nor its temporary directory


def test_an_older_version_failing_only_moves_the_oldest_passing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERVING_COMPAT")
    monkeypatch.setenv("SERVING_COMPAT_VERSIONS", "2.9.3 2.12.1")
    monkeypatch.setattr(compat, "check", canned({"2.9.3": False, "2.12.1": True, PINNED: True}))
    record = compat.gate_export(tmp_path, log=lambda _: None)
    assert record["oldest_tf_serving_passed"] == "2.12.1"
    assert record["serving_compat"]["pinned"] == PINNED
    assert not record["serving_compat"]["results"]["2.9.3"]["passed"]


def test_when_the_gate_cannot_run_the_export_is_published_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def offline(version, *, log=None):
        raise compat.CompatError("pip could not reach the package index")

    monkeypatch.delenv("SERVING_COMPAT")
    monkeypatch.setattr(compat, "environment", offline)
    path = export.export(build_model(), tmp_path / "mnist", 1, warmup_images=IMAGES)
    metrics = json.loads((path / "assets.extra" / "metrics.json").read_text())
    assert metrics["exported_with_tensorflow"] == tf.__version__
    assert metrics["oldest_tf_serving_passed"] is None
    assert "package index" in metrics["serving_compat"]["error"]
    assert "gate did not run" in capsys.readouterr().err


def test_serving_compat_off_skips_the_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVING_COMPAT", "off")
    monkeypatch.setattr(compat, "check", None)  # would fail if called
    record = compat.gate_export(Path("/nonexistent"), log=lambda _: None)
    assert record == {"oldest_tf_serving_passed": None, "serving_compat": {"skipped": True}}


def test_the_cli_refuses_a_path_without_exports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        compat.main([str(tmp_path)])
    assert info.value.code == 2
    assert "no SavedModel" in capsys.readouterr().err


# The real gate, in the pinned TF Serving's TensorFlow.


def copy_version(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def edit_graph(version: Path, edit) -> None:
    """Rewrite saved_model.pb as a newer exporter might have written it."""
    path = version / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    edit(saved_model.meta_graphs[0].graph_def)
    path.write_bytes(saved_model.SerializeToString())


def first_function_node(graph_def, op: str):
    return next(n for f in graph_def.library.function for n in f.node_def if n.op == op)


def edit_warmup(version: Path, edit) -> None:
    path = version / "assets.extra" / export.WARMUP_FILE
    logs = [
        prediction_log_pb2.PredictionLog.FromString(raw)
        for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()
    ]
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            edit(log.predict_log)
            writer.write(log.SerializeToString())


def shift_probabilities(predict_log) -> None:
    outputs = predict_log.response.outputs
    outputs["probabilities"].CopyFrom(
        tf.make_tensor_proto(tf.make_ndarray(outputs["probabilities"]) + 0.5)
    )


def rename_input(predict_log) -> None:
    predict_log.request.inputs["pixels"].CopyFrom(predict_log.request.inputs.pop("images"))


@pytest.mark.serving_compat
def test_the_gate_passes_the_quick_model_and_catches_what_would_break_it(
    quick_model: QuickModel, tmp_path: Path
) -> None:
    good = copy_version(quick_model.base_path / "1", tmp_path / "good")
    unknown_op = copy_version(good, tmp_path / "unknown-op")
    edit_graph(unknown_op, lambda g: setattr(first_function_node(g, "Relu"), "op", "ReluV9"))
    unknown_attr = copy_version(good, tmp_path / "unknown-attr")
    edit_graph(
        unknown_attr,
        lambda g: first_function_node(g, "Conv2D").attr["future"].CopyFrom(AttrValue(b=True)),
    )
    other_answers = copy_version(good, tmp_path / "other-answers")
    edit_warmup(other_answers, shift_probabilities)
    wrong_input = copy_version(good, tmp_path / "wrong-input")
    edit_warmup(wrong_input, rename_input)
    out = tmp_path / "results.json"

    code = compat.main(
        [str(p) for p in (good, unknown_op, unknown_attr, other_answers, wrong_input)]
        + ["--json", str(out)]
    )

    assert code == 1
    results = {Path(r["export"]).name: r for r in json.loads(out.read_text())}
    assert {r["serving_version"] for r in results.values()} == {PINNED}
    assert {r["tensorflow"] for r in results.values()} == {PINNED}
    ok = results["good"]
    assert ok["passed"], ok["error"]
    assert ok["warmup_batch_sizes"] == list(export.warmup_batch_sizes())
    assert ok["max_abs_diff"] is not None and ok["max_abs_diff"] < 1e-3  # rounding at most
    assert not ok["warnings"]
    assert not results["unknown-op"]["passed"]
    assert "Op type not registered 'ReluV9'" in results["unknown-op"]["error"]
    # TF Serving loads it and ignores the attribute: a warning, and the answers decide.
    assert results["unknown-attr"]["passed"]
    assert "'future'" in results["unknown-attr"]["warnings"][0]
    assert not results["other-answers"]["passed"]
    assert "differs from the exporter's" in results["other-answers"]["error"]
    assert not results["wrong-input"]["passed"]
    assert "['pixels']" in results["wrong-input"]["error"]


@pytest.mark.serving_compat
def test_an_export_records_its_tensorflow_and_the_oldest_tf_serving_that_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `python -m training` writes: export() gates the version before publishing."""
    monkeypatch.delenv("SERVING_COMPAT")

    def add_metrics(assets_extra: Path) -> None:
        (assets_extra / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5}))

    path = export.export(
        build_model(), tmp_path / "mnist", warmup_images=IMAGES, extra_files=add_metrics
    )
    metrics = json.loads((path / "assets.extra" / "metrics.json").read_text())
    assert metrics["test_accuracy"] == 0.5  # training's own entries are kept
    assert metrics["exported_with_tensorflow"] == tf.__version__
    assert metrics["oldest_tf_serving_passed"] == PINNED
    result = metrics["serving_compat"]["results"][PINNED]
    assert result["passed"] and result["tensorflow"] == PINNED
    assert result["warmup_records"] == len(export.warmup_batch_sizes())
