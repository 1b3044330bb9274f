"""What a hostile or careless world does to the server: request names that would grow the
metrics page without bound, config files read mid-rewrite, odd directory names, versions
and labels that become loadable later, versions that disappear."""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from pathlib import Path

import grpc
import pytest
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving import config as config_lib
from serving import metrics
from serving.manager import Manager, Options, State
from serving.servable import ServingError
from serving.version_dirs import parse_version, version_dirs
from tests.serving import testmodels

# ---- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """One small SavedModel directory, copied in as whichever version a test needs."""
    return testmodels.half_plus_two_tf2(tmp_path_factory.mktemp("source"), version=1) / "1"


def publish(saved_model: Path, base: Path, version: int | str) -> Path:
    return Path(shutil.copytree(saved_model, base / str(version)))


def publish_broken(base: Path, version: int) -> Path:
    path = base / str(version)
    path.mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"not a SavedModel")
    return path


def model_config(base: Path, name: str = "half", labels: dict[str, int] | None = None):
    config = config_lib.single_model(name, str(base))
    config.model_config_list.config[0].model_version_policy.all.SetInParent()
    config.model_config_list.config[0].version_labels.update(labels or {})
    return config


def serving_version_1(saved_model: Path, base: Path) -> Manager:
    """A manager serving `base` (model "half") with version 1 published and loaded."""
    publish(saved_model, base, 1)
    manager = Manager(Options(enable_warmup=False))
    manager.apply_config(model_config(base))
    return manager


def states(manager: Manager, name: str = "half") -> dict[int, State]:
    return {number: state for number, state, _ in manager.status(name)}


def serves(manager: Manager, name: str = "half", **choice) -> int:
    spec = model_pb2.ModelSpec(name=name)
    if "label" in choice:
        spec.version_label = choice["label"]
    return manager.resolve(spec).version


def labelled_models() -> set[str]:
    """The model_name values of the request metrics' series."""
    text = metrics.exposition().decode()
    return set(re.findall(r'^:tensorflow:serving:request_\w+\{.*?model_name="([^"]*)"', text, re.M))


# ---- 1: metric labels come from the config, not from requests ---------------------------


def test_unknown_model_names_share_one_series():
    metrics.set_model_names(["mnist"])
    before = labelled_models()
    for _ in range(3000):
        metrics.observe_request(f"random-{uuid.uuid4().hex}", "Predict", "GRPC", "NOT_FOUND", 0.0)
    assert labelled_models() - before <= {metrics.UNKNOWN_MODEL}
    assert metrics.UNKNOWN_MODEL in labelled_models()


def test_a_huge_model_name_does_not_grow_the_page():
    metrics.set_model_names(["mnist"])
    metrics.observe_request("x", "Predict", "GRPC", "NOT_FOUND", 0.001)
    before = len(metrics.exposition())
    metrics.observe_request("y" * 10_000_000, "Predict", "GRPC", "NOT_FOUND", 0.001)
    assert len(metrics.exposition()) - before < 100


def test_configured_names_are_labels_and_every_label_is_bounded():
    long_name = "m" * 5000
    metrics.set_model_names(["mnist", long_name])
    metrics.observe_request("mnist", "Predict", "GRPC", "OK", 0.001)
    metrics.observe_request(long_name, "Predict" * 1000, "GRPC", "OK", 0.001)
    metrics.observe_load("/models/" + "p" * 5000 + "/7", "OK", 0.5)
    text = metrics.exposition().decode()
    assert ':tensorflow:serving:request_count{model_name="mnist",status="OK"}' in text
    values = re.findall(r'="([^"]*)"', text)
    assert values and max(map(len, values)) <= metrics.MAX_LABEL_CHARS
    # A shortened base path keeps its end: which version it was.
    assert re.search(r'load_attempt_count\{model_path="/models/p+…p+/7",status="OK"\}', text)


def test_rest_status_codes_are_labelled_by_name_as_grpc_ones_are():
    metrics.set_model_names(["rest-status"])
    metrics.observe_request("rest-status", "predict", "REST", grpc.StatusCode.OK, 0.001)
    text = metrics.exposition().decode()
    assert ':tensorflow:serving:request_count{model_name="rest-status",status="OK"}' in text
    assert "StatusCode." not in text


def test_the_manager_tells_metrics_which_models_are_configured(saved_model, tmp_path):
    publish(saved_model, tmp_path / "half", 1)
    metrics.set_model_names([])
    manager = Manager(Options(enable_warmup=False))
    manager.apply_config(model_config(tmp_path / "half", name="configured-half"))
    metrics.observe_request("configured-half", "Predict", "GRPC", "OK", 0.001)
    assert ':request_count{model_name="configured-half",status="OK"}' in (
        metrics.exposition().decode()
    )


# ---- 2: config files: an empty one changes nothing, a rejected one is retried -----------


def test_an_empty_config_unloads_nothing(saved_model, tmp_path, caplog):
    base = tmp_path / "half"
    manager = serving_version_1(saved_model, base)
    with caplog.at_level(logging.WARNING, logger="serving"):
        assert manager.apply_config(model_server_config_pb2.ModelServerConfig()) is False
    assert manager.model_names() == ["half"] and serves(manager) == 1
    assert "Taking no action for empty config" in caplog.text


def test_a_config_file_read_empty_or_truncated_mid_rewrite_unloads_nothing(saved_model, tmp_path):
    base = tmp_path / "half"
    publish(saved_model, base, 1)
    config_file = tmp_path / "models.config"
    config_file.write_text(str(model_config(base)))
    manager = Manager(Options(enable_warmup=False))
    manager.apply_config(config_lib.read_model_config(config_file))

    def read():
        return config_lib.read_model_config(config_file)

    for text in ("", "  \n", str(model_config(base))[:40]):
        config_file.write_text(text)
        manager.reload_config(read)
        assert manager.model_names() == ["half"] and serves(manager) == 1, repr(text)


def test_a_label_rejected_for_a_loading_version_is_applied_once_it_loads(
    saved_model, tmp_path, caplog
):
    base = tmp_path / "half"
    manager = serving_version_1(saved_model, base)
    labelled = model_config(base, labels={"canary": 2})

    manager.reload_config(lambda: labelled)  # version 2 is not there yet
    assert "not currently available for inference" in caplog.text
    with pytest.raises(ServingError, match="Unrecognized servable version label"):
        serves(manager, label="canary")

    publish(saved_model, base, 2)
    manager.poll()
    manager.reload_config(lambda: labelled)  # the same file, read at the next poll
    assert serves(manager, label="canary") == 2


# ---- 5: only ASCII digits name versions -------------------------------------------------


def test_version_names_follow_tf_servings_int64_parse():
    assert parse_version("7") == 7
    assert parse_version("007") == 7  # leading zeros, as absl::SimpleAtoi takes them
    assert parse_version(str(2**63 - 1)) == 2**63 - 1
    for name in ("²", "٣", "1²", str(2**63), "", "-1", "+1", " 1", "1.0", ".tmp-1-x"):
        assert parse_version(name) is None, name


def test_version_dirs_skip_files_and_odd_names(tmp_path):
    for name in ("1", "²", "03", "x", ".tmp-4-abc"):
        (tmp_path / name).mkdir()
    (tmp_path / "5").write_text("a file, not a version")
    assert version_dirs(tmp_path) == {1: tmp_path / "1", 3: tmp_path / "03"}


def test_a_unicode_digit_directory_neither_stops_startup_nor_polling(saved_model, tmp_path):
    base = tmp_path / "half"
    publish(saved_model, base, 1)
    (base / "²").mkdir()
    manager = Manager(Options(enable_warmup=False))
    manager.apply_config(model_config(base))
    assert states(manager) == {1: State.AVAILABLE}
    publish(saved_model, base, 2)
    manager.poll()
    assert states(manager) == {2: State.AVAILABLE, 1: State.AVAILABLE}


# ---- 6: a failed version is loaded again once republished -------------------------------


def version_2_failed(saved_model, tmp_path) -> tuple[Path, Manager]:
    """A manager serving version 1 of a base path whose version 2 failed to load, with
    no retries left."""
    base = tmp_path / "half"
    publish(saved_model, base, 1)
    publish_broken(base, 2)
    manager = Manager(Options(enable_warmup=False, max_num_load_retries=0))
    manager.apply_config(model_config(base))
    return base, manager


def test_a_failed_version_deleted_and_published_again_loads(saved_model, tmp_path):
    base, manager = version_2_failed(saved_model, tmp_path)
    assert states(manager) == {2: State.END, 1: State.AVAILABLE}
    manager.poll()  # retries ran out: not loaded again as it is
    assert states(manager)[2] == State.END

    shutil.rmtree(base / "2")
    manager.poll()  # the file system no longer shows it
    publish(saved_model, base, 2)
    manager.poll()
    assert states(manager)[2] == State.AVAILABLE


def test_a_failed_version_replaced_between_two_polls_loads(saved_model, tmp_path):
    base, manager = version_2_failed(saved_model, tmp_path)
    assert states(manager)[2] == State.END

    shutil.rmtree(base / "2")
    publish(saved_model, base, 2)
    manager.poll()
    assert states(manager)[2] == State.AVAILABLE


# ---- 10: a model whose versions all disappear says so -----------------------------------


def test_a_model_whose_last_version_disappears_warns_it_is_unavailable(
    saved_model, tmp_path, caplog
):
    base = tmp_path / "half"
    manager = serving_version_1(saved_model, base)
    shutil.rmtree(base / "1")
    with caplog.at_level(logging.WARNING, logger="serving"):
        manager.poll()
    assert not manager.is_ready()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("half is now unavailable" in message for message in warnings), warnings
