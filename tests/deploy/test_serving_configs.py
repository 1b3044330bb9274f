"""serving/*.config parse with TF Serving's own messages and keep the rules TF Serving enforces.

The rules checked here are the ones that otherwise fail only on the real server: at
startup (a bad batching file stops the model from loading) or at a config reload (a label
pointing at a version that is not loaded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format

from tests.deploy import manifests

CONFIG = manifests.SERVING_CONFIG_DIR
BATCHING_FILES = {"gpu": "batching_gpu.config", "cpu": "batching_cpu.config"}


def parse(path: Path, message: str) -> Any:
    proto = manifests.proto_class(message)()
    text_format.Parse(path.read_text(), proto)
    return proto


def test_models_config_serves_mnist_from_the_mounted_models() -> None:
    config = parse(CONFIG / "models.config", "ModelServerConfig")
    assert config.WhichOneof("config") == "model_config_list"
    (model,) = config.model_config_list.config
    assert model.name == "mnist"
    assert model.base_path == "/models/mnist"  # the read-only mount in compose and the pods
    assert model.model_platform == "tensorflow"


def test_every_label_points_at_a_version_the_policy_loads() -> None:
    """TF Serving refuses a label on a version that is not loaded, at start or reload."""
    (model,) = parse(CONFIG / "models.config", "ModelServerConfig").model_config_list.config
    assert model.model_version_policy.WhichOneof("policy_choice") == "specific"
    versions = set(model.model_version_policy.specific.versions)
    assert versions, "the specific policy lists no version"
    assert set(model.version_labels) == {"stable", "canary"}
    for label, version in model.version_labels.items():
        assert version in versions, f"label {label} -> {version}, not in {sorted(versions)}"


def test_a_fresh_deployment_needs_only_version_1() -> None:
    """`python -m training` exports version 1 into an empty base path."""
    (model,) = parse(CONFIG / "models.config", "ModelServerConfig").model_config_list.config
    assert list(model.model_version_policy.specific.versions) == [1]
    assert dict(model.version_labels) == {"stable": 1, "canary": 1}


@pytest.mark.parametrize("variant", sorted(BATCHING_FILES))
def test_batching_parameters_pass_tf_servings_checks(variant: str) -> None:
    """The checks TF Serving applies when it creates the batching session."""
    params = parse(CONFIG / BATCHING_FILES[variant], "BatchingParameters")
    for field in (
        "max_batch_size",
        "batch_timeout_micros",
        "num_batch_threads",
        "max_enqueued_batches",
    ):
        assert params.HasField(field), f"{field} is left to TF Serving's default"
    assert params.max_batch_size.value >= 1
    assert params.num_batch_threads.value >= 1
    assert params.max_enqueued_batches.value >= 1
    assert params.batch_timeout_micros.value >= 0
    splitting = params.enable_large_batch_splitting.value
    execution = (
        params.max_execution_batch_size.value
        if splitting and params.HasField("max_execution_batch_size")
        else params.max_batch_size.value
    )
    assert execution <= params.max_batch_size.value
    sizes = list(params.allowed_batch_sizes)
    if sizes:
        assert sizes == sorted(set(sizes)), "allowed_batch_sizes must increase strictly"
        assert sizes[-1] == execution, (
            f"the last allowed batch size ({sizes[-1]}) must equal the executed batch size "
            f"({execution})"
        )


def test_requests_have_the_same_size_limit_on_gpu_and_cpu() -> None:
    gpu, cpu = (parse(CONFIG / BATCHING_FILES[v], "BatchingParameters") for v in ("gpu", "cpu"))
    assert gpu.max_batch_size.value == cpu.max_batch_size.value


def test_gpu_batches_are_padded_to_few_shapes_and_cpu_batches_are_not() -> None:
    gpu = parse(CONFIG / "batching_gpu.config", "BatchingParameters")
    cpu = parse(CONFIG / "batching_cpu.config", "BatchingParameters")
    assert 0 < len(gpu.allowed_batch_sizes) <= 8
    assert not cpu.allowed_batch_sizes
    assert gpu.batch_timeout_micros.value > 0  # a GPU step pays off only when full
    assert cpu.batch_timeout_micros.value == 0


def test_monitoring_exports_prometheus_metrics() -> None:
    config = parse(CONFIG / "monitoring.config", "MonitoringConfig")
    assert config.prometheus_config.enable
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_warm_up_covers_every_batch_shape_the_batching_files_run(quick_model) -> None:
    """TF Serving replays warm-up through the batching session, one record at a time.

    With allowed_batch_sizes every batch is padded up to one of them, so each must have
    a record of exactly that size, or the first real batch of that shape runs cold
    (GPU kernel selection, autotuning and allocation under user traffic). Without them,
    the largest executed batch and a lone request are warmed.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from training import export

    path = quick_model.base_path / "1" / "assets.extra" / export.WARMUP_FILE
    records = [
        prediction_log_pb2.PredictionLog.FromString(raw).predict_log.request
        for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()
    ]
    assert 0 < len(records) <= 1000  # TF Serving refuses more than 1000
    sizes = {r.inputs["images"].tensor_shape.dim[0].size for r in records}
    for variant, name in BATCHING_FILES.items():
        params = parse(CONFIG / name, "BatchingParameters")
        execution = (
            params.max_execution_batch_size.value
            if params.enable_large_batch_splitting.value
            else params.max_batch_size.value
        )
        wanted = {1, execution, *params.allowed_batch_sizes}
        assert wanted <= sizes, f"{variant}: no warm-up record of batch {sorted(wanted - sizes)}"
