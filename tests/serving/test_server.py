"""`python -m serving` checked the way a TF Serving user's code calls it.

Everything goes through tensorflow-serving-api's own stubs and messages, so a pass here
means a TF Serving client works against the local server unchanged.

Past 400 lines on purpose: the cases share the session's running server (tests/conftest),
and the start-up cases beside them are the same user's view of the same command.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import tensors
from tests.conftest import ROOT, free_port, python_env, running_server
from training import export
from training.data import load, scale

AVAILABLE, END = 30, 50


@pytest.fixture(scope="module")
def digits():
    mnist = load()
    return scale(mnist.x_test[:200]), mnist.y_test[:200]


def stubs(target):
    channel = grpc.insecure_channel(target)
    return (
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
    )


def request_for(images, name="mnist", **spec):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images, shape=images.shape))
    return request


def rpc_error(call, *args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=30)
    return info.value


def statuses(model_stub, name="mnist", version=None):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    response = model_stub.GetModelStatus(request, timeout=10)
    return {s.version: (s.state, s.status.error_message) for s in response.model_version_status}


def wait_until(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# ---- the session server: one version, read-only ------------------------------------


def test_tf_serving_example_client_pattern_unchanged(server, digits, quick_model):
    """TF Serving's own example client: make_tensor_proto + PredictionServiceStub."""
    images, labels = digits
    channel = grpc.insecure_channel(server.target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.model_spec.signature_name = "serving_default"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images, shape=images.shape))
    result = stub.Predict(request, 10.0)

    classes = tf.make_ndarray(result.outputs["classes"])
    probabilities = tf.make_ndarray(result.outputs["probabilities"])
    assert classes.dtype == np.int64 and classes.shape == (200,)
    assert probabilities.dtype == np.float32 and probabilities.shape == (200, 10)
    np.testing.assert_array_equal(classes, probabilities.argmax(axis=1))
    # Same model, same answers: the server's predictions match the SavedModel in-process.
    loaded = tf.saved_model.load(str(quick_model.base_path / "1"))
    local = loaded.signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_array_equal(classes, local["classes"].numpy())
    assert (classes == labels).mean() > 0.8
    assert result.model_spec.name == "mnist"
    assert result.model_spec.version.value == 1
    assert result.model_spec.signature_name == "serving_default"


def test_both_tensor_encodings_and_default_signature(server, digits):
    images = digits[0][:4]
    predict, _ = stubs(server.target)
    typed = request_for(images)
    typed.inputs["images"].CopyFrom(tensors.from_numpy(images, as_content=False))
    content = request_for(images)
    content.inputs["images"].CopyFrom(tensors.from_numpy(images, as_content=True))
    a, b = predict.Predict(typed, timeout=10), predict.Predict(content, timeout=10)
    np.testing.assert_array_equal(
        tf.make_ndarray(a.outputs["probabilities"]), tf.make_ndarray(b.outputs["probabilities"])
    )
    assert a.model_spec.signature_name == "serving_default"  # empty in the request


def test_output_filter(server, digits):
    predict, _ = stubs(server.target)
    request = request_for(digits[0][:2])
    request.output_filter.append("classes")
    assert list(predict.Predict(request, timeout=10).outputs) == ["classes"]
    request.output_filter.append("logits")
    error = rpc_error(predict.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "output tensor alias not found in signature: logits" in error.details()


def test_metadata(server):
    predict, _ = stubs(server.target)
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "mnist"
    request.metadata_field.append("signature_def")
    response = predict.GetModelMetadata(request, timeout=10)
    assert response.model_spec.version.value == 1
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    default = signatures.signature_def["serving_default"]
    assert default.inputs["images"].dtype == tf.float32.as_datatype_enum
    assert [d.size for d in default.inputs["images"].tensor_shape.dim] == [-1, 28, 28, 1]
    assert set(default.outputs) == {"probabilities", "classes"}

    del request.metadata_field[:]
    error = rpc_error(predict.GetModelMetadata, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "must specify at least one metadata_field" in error.details()
    request.metadata_field.append("preprocessing")
    assert (
        "Metadata field preprocessing is not supported"
        in rpc_error(predict.GetModelMetadata, request).details()
    )


def test_model_status(server):
    _, model = stubs(server.target)
    assert statuses(model) == {1: (AVAILABLE, "")}
    assert statuses(model, version=1) == {1: (AVAILABLE, "")}
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    error = rpc_error(model.GetModelStatus, request)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "Could not find any versions of model nope"
    request.model_spec.name = "mnist"
    request.model_spec.version.value = 5
    assert rpc_error(model.GetModelStatus, request).details() == (
        "Could not find version 5 of model mnist"
    )


def test_health(server):
    channel = grpc.insecure_channel(server.target)
    health = health_pb2_grpc.HealthStub(channel)
    response = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("spec", "code", "details"),
    [
        ({"name": "nope"}, "NOT_FOUND", "Servable not found for request: Latest(nope)"),
        ({"version": 9}, "NOT_FOUND", "Servable not found for request: Specific(mnist, 9)"),
        (
            {"version_label": "gold"},
            "INVALID_ARGUMENT",
            "Unrecognized servable version label: gold",
        ),
        ({"name": ""}, "INVALID_ARGUMENT", "ModelSpec has no name specified."),
        (
            {"signature_name": "nope"},
            "FAILED_PRECONDITION",
            'Serving signature key "nope" not found.',
        ),
    ],
)
def test_model_spec_errors(server, digits, spec, code, details):
    predict, _ = stubs(server.target)
    name = spec.pop("name", "mnist")
    error = rpc_error(predict.Predict, request_for(digits[0][:1], name, **spec))
    assert error.code() == getattr(grpc.StatusCode, code)
    assert error.details() == details


def bad_inputs():
    good = np.zeros((2, 28, 28, 1), np.float32)
    huge = tensors.from_numpy(np.zeros((1,), np.float32))
    huge.tensor_shape.dim[0].size = 10**12
    short = tensors.from_numpy(good, as_content=True)
    short.tensor_content = short.tensor_content[:100]
    return [
        (
            {"pixels": tf.make_tensor_proto(good)},
            "input tensor alias not found in signature: pixels. "
            "Inputs expected to be in the set {images}.",
        ),
        (
            {"images": tf.make_tensor_proto(good), "extra": tf.make_tensor_proto(good)},
            "input size does not match signature: 2!=1 len({extra,images}) != len({images}). "
            "Sent extra: {extra}. Missing but required: {}.",
        ),
        ({}, "input size does not match signature: 0!=1"),
        (
            {"images": tf.make_tensor_proto(good.astype(np.float64))},
            "Expects arg[0] to be float but double is provided",
        ),
        (  # refused before the graph runs: a wrong rank can abort TensorFlow's kernels
            {"images": tf.make_tensor_proto(good[..., 0])},
            "input 'images' of signature 'serving_default' has shape [2, 28, 28], but the "
            "graph's placeholder for it takes rank 4 (declared shape [-1, 28, 28, 1])",
        ),
        (  # like TF Serving, the graph (not the SignatureDef) decides: its own error
            {"images": tf.make_tensor_proto(np.zeros((2, 32, 32, 1), np.float32))},
            "Input to reshape is a tensor with",
        ),
        ({"images": huge}, "declares 1000000000000 elements"),
        ({"images": short}, "tensor_content holds 100 bytes, but shape [2, 28, 28, 1]"),
    ]


@pytest.mark.parametrize(("inputs", "message"), bad_inputs(), ids=range(8))
def test_bad_inputs_are_invalid_argument(server, digits, inputs, message):
    predict, _ = stubs(server.target)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    for key, proto in inputs.items():
        request.inputs[key].CopyFrom(proto)
    error = rpc_error(predict.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.details()
    # ... and the server still serves.
    assert predict.Predict(request_for(digits[0][:1]), timeout=10).model_spec.version.value == 1


def test_startup_log_order(server):
    log = server.log()
    records = len(export.warmup_batch_sizes())  # one record per batch shape the servers run
    assert f"Finished reading warmup data for model mnist version 1: {records} records" in log
    loaded = log.index("Successfully loaded servable version {name: mnist version: 1}")
    assert loaded < log.index("Running gRPC ModelServer")


# ---- servers of their own: versions come and go --------------------------------------


class Load:
    """Constant concurrent Predict traffic; counts what was served by which version."""

    def __init__(self, target, images, threads=4):
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
        self.request = request_for(images)
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.versions: list[int] = []  # in completion order
        self.calls: list[tuple[float, float, int]] = []  # (sent, answered, version served)
        self.threads = [threading.Thread(target=self.run) for _ in range(threads)]

    def run(self):
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                version = self.stub.Predict(self.request, timeout=30).model_spec.version.value
            except grpc.RpcError as exc:
                self.failures.append(f"{exc.code()}: {exc.details()}")
                continue
            self.versions.append(version)
            self.calls.append((sent, time.monotonic(), version))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def test_versions_hot_load_unload_and_survive_a_corrupt_one(quick_model, tmp_path, digits):
    base = tmp_path / "mnist"
    shutil.copytree(quick_model.base_path, base)
    with (
        running_server(
            [
                "--model_name=mnist",
                f"--model_base_path={base}",
                "--file_system_poll_wait_seconds=1",
            ],
            base_path=base,
        ) as srv,
        Load(srv.target, digits[0][:8]) as load,
    ):
        predict, model = stubs(srv.target)
        wait_until(lambda: len(load.versions) > 20, what="traffic")

        # A new version appears atomically (rename), as training exports it.
        shutil.copytree(base / "1", tmp_path / "staging")
        (tmp_path / "staging").rename(base / "2")
        wait_until(lambda: statuses(model).get(1, (0,))[0] == END, what="v1 unloaded")
        assert statuses(model)[2] == (AVAILABLE, "")
        assert predict.Predict(request_for(digits[0][:1]), timeout=10).model_spec.version.value == 2
        error = rpc_error(predict.Predict, request_for(digits[0][:1], version=1))
        assert error.details() == "Servable not found for request: Specific(mnist, 1)"

        # A corrupt version 3 fails to load; version 2 keeps serving.
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "saved_model.pb").write_bytes(b"this is not a protobuf")
        (tmp_path / "bad").rename(base / "3")
        wait_until(lambda: statuses(model).get(3, (0,))[0] == END, what="v3 failed")
        _, message = statuses(model)[3]
        assert message, "a failed load reports its error"
        assert statuses(model)[2] == (AVAILABLE, "")
        time.sleep(1.5)  # another poll: still serving 2
        assert predict.Predict(request_for(digits[0][:1]), timeout=10).model_spec.version.value == 2

    assert load.failures == [], load.failures[:5]
    assert load.versions[0] == 1 and load.versions[-1] == 2
    log = srv.log()
    assert "Unloaded servable version {name: mnist version: 1}" in log
    assert "Loading servable version {name: mnist version: 3}" in log
    assert "Loading servable version {name: mnist version: 3} failed" in log


def write_config(path, base, policy="all {}", labels=None, name="mnist"):
    label_text = "".join(
        f'    version_labels {{ key: "{k}" value: {v} }}\n' for k, v in (labels or {}).items()
    )
    path.write_text(
        "model_config_list {\n  config {\n"
        f'    name: "{name}"\n    base_path: "{base}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ {policy} }}\n{label_text}  }}\n}}\n"
    )


def test_config_file_policy_labels_and_reload(quick_model, tmp_path, digits):
    base = tmp_path / "mnist"
    shutil.copytree(quick_model.base_path / "1", base / "1")
    shutil.copytree(quick_model.base_path / "1", base / "2")
    config = tmp_path / "models.config"
    write_config(config, base, "specific { versions: 1 }")
    with running_server(
        [
            f"--model_config_file={config}",
            "--model_config_file_poll_wait_seconds=1",
            "--file_system_poll_wait_seconds",
            "1",
        ],
        base_path=base,
    ) as srv:
        predict, model = stubs(srv.target)
        assert statuses(model) == {1: (AVAILABLE, "")}  # the specific policy skips 2

        # Step 1: load both (all {}). Step 2: labels, once both are AVAILABLE.
        write_config(config, base, "all {}")
        wait_until(lambda: statuses(model).get(2, (0,))[0] == AVAILABLE, what="v2 loaded")
        write_config(config, base, "all {}", {"stable": 1, "canary": 2})

        def served(label):
            try:
                response = predict.Predict(
                    request_for(digits[0][:1], version_label=label), timeout=10
                )
            except grpc.RpcError:
                return None
            return response.model_spec.version.value

        wait_until(lambda: served("stable") == 1, what="stable label")
        assert served("canary") == 2

        # A label may only point at a loaded version: the change is refused, labels stay.
        write_config(config, base, "all {}", {"stable": 7, "canary": 2})
        srv.wait_for_log(
            "Request to assign label to version 7 of model mnist, which is not "
            "currently available for inference"
        )
        assert served("stable") == 1

        # HandleReloadConfigRequest: add a second model, then remove it.
        reload = model_management_pb2.ReloadConfigRequest()
        text_format.Parse(config.read_text(), reload.config)
        reload.config.model_config_list.config[0].version_labels["stable"] = 1
        second = reload.config.model_config_list.config.add()
        second.CopyFrom(reload.config.model_config_list.config[0])
        second.name = "digits"
        second.ClearField("version_labels")
        response = model.HandleReloadConfigRequest(reload, timeout=120)
        assert response.status.error_code == 0
        assert statuses(model, "digits") == {2: (AVAILABLE, ""), 1: (AVAILABLE, "")}
        del reload.config.model_config_list.config[1]
        model.HandleReloadConfigRequest(reload, timeout=60)
        error = rpc_error(predict.Predict, request_for(digits[0][:1], "digits"))
        assert error.code() == grpc.StatusCode.NOT_FOUND

        # A relative base path is refused as TF Serving refuses it.
        reload.config.model_config_list.config[0].base_path = "models/mnist"
        error = rpc_error(model.HandleReloadConfigRequest, reload)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "to have an absolute path or URI; got base_path()=models/mnist" in error.details()
        assert served("stable") == 1


def test_sigterm_drains_in_flight_requests(quick_model, tmp_path):
    base = tmp_path / "mnist"
    shutil.copytree(quick_model.base_path, base)
    big = np.random.default_rng(0).random((6000, 28, 28, 1), dtype=np.float32)
    # 6,000 images that take a second to run but a few bytes to send (TensorFlow's fill
    # rule repeats the one value): the request is in the server within milliseconds even
    # on a loaded machine, where an 18 MB upload might still be on the wire at SIGTERM.
    slow = predict_pb2.PredictRequest()
    slow.model_spec.name = "mnist"
    slow.inputs["images"].CopyFrom(tf.make_tensor_proto(0.5, shape=big.shape))
    # (Over the 1,024 rows a request may have by default: the limit is raised here.)
    flags = ["--model_name=mnist", f"--model_base_path={base}", "--max_request_rows=6000"]
    with running_server(flags) as srv:
        predict, _ = stubs(srv.target)
        future = predict.Predict.future(slow, timeout=60)
        time.sleep(0.3)  # in flight
        srv.process.send_signal(signal.SIGTERM)
        response = future.result()  # completes despite the SIGTERM
        assert tf.make_ndarray(response.outputs["classes"]).shape == (6000,)
        assert srv.process.wait(timeout=30) == 0
        with pytest.raises(grpc.RpcError) as info:
            predict.Predict(request_for(big[:1]), timeout=3)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "Shutting down: draining in-flight requests" in srv.log()


def run_server_cli(*flags):
    return subprocess.run(
        [sys.executable, "-m", "serving", *flags],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_start_up_refusals_exit_like_tensorflow_model_server():
    # Unknown arguments are reported and skipped; BuildAndStart's checks fail the start
    # with "Failed to start server. Error: ..." on stdout and exit status 255 (-1).
    result = run_server_cli(
        "--model_base_path=/x", "--bogus=1", "--batching_parameters_file=/b.config"
    )
    assert result.returncode == 255
    assert result.stdout.startswith("unknown argument: --bogus=1\n")
    assert result.stdout.rstrip().endswith(
        "Failed to start server. Error: INVALID_ARGUMENT: server_options."
        "batching_parameters_file is set without setting server_options.enable_batching to true."
    )
    result = run_server_cli("--port=notaport")
    assert result.returncode == 255
    assert "Couldn't interpret value notaport for flag port." in result.stderr
    assert result.stdout.startswith("usage:")


def test_bad_config_file_fails_start_with_its_name(tmp_path):
    config = tmp_path / "models.config"
    config.write_text("model_config_list { config { name: 'm' base_path: }")
    result = run_server_cli(f"--model_config_file={config}")
    assert result.returncode == 255
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig: 1:" in result.stderr
    assert (
        f"Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file: '{config}'"
        in result.stdout
    )
    result = run_server_cli(f"--model_config_file={tmp_path / 'missing.config'}")
    assert result.returncode == 255
    assert "Failed to start server. Error: NOT_FOUND: " in result.stdout


def test_a_model_that_never_loads_fails_the_start_after_its_retries(tmp_path):
    (tmp_path / "broken" / "7").mkdir(parents=True)
    (tmp_path / "broken" / "7" / "saved_model.pb").write_bytes(b"not a SavedModel")
    started = time.monotonic()
    result = run_server_cli(
        "--model_name=broken",
        f"--model_base_path={tmp_path / 'broken'}",
        f"--port={free_port()}",
        "--max_num_load_retries=2",
        "--load_retry_interval_micros=300000",
    )
    assert result.returncode == 255
    assert result.stdout.startswith(
        "Failed to start server. Error: UNKNOWN: 1 model(s) did not become available: "
        "{{{name: broken version: 7} due to error: "
    )
    assert result.stderr.count("Loading servable version {name: broken version: 7} failed") == 3
    assert time.monotonic() - started >= 0.6  # two retries, 0.3 s apart


def test_start_waits_for_a_first_version_like_tf_serving(quick_model, tmp_path, digits):
    # TF Serving listens only once every model serves; an empty base path is waited for.
    base = tmp_path / "mnist"
    base.mkdir()
    port, log_path = free_port(), tmp_path / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serving",
                f"--port={port}",
                "--model_name=mnist",
                f"--model_base_path={base}",
            ],
            cwd=ROOT,
            env=python_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: "No versions of servable mnist found under base path" in log_path.read_text(),
            timeout=60,
            what="the warning about the empty base path",
        )
        assert process.poll() is None
        with pytest.raises(grpc.FutureTimeoutError):  # not listening yet
            grpc.channel_ready_future(grpc.insecure_channel(f"127.0.0.1:{port}")).result(1)
        shutil.copytree(quick_model.base_path / "1", base / "1")
        predict, _ = stubs(f"127.0.0.1:{port}")
        wait_until(lambda: _serves(predict, digits), timeout=60, what="the first version served")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _serves(predict, digits) -> bool:
    try:
        return predict.Predict(request_for(digits[0][:1]), timeout=5).model_spec.version.value == 1
    except grpc.RpcError:
        return False


def test_labels_at_startup_need_the_flag(quick_model, tmp_path):
    config = tmp_path / "models.config"
    write_config(config, quick_model.base_path, "latest { num_versions: 1 }", {"stable": 1})
    result = run_server_cli(f"--model_config_file={config}", f"--port={free_port()}")
    assert result.returncode == 255
    assert "Request to assign label to version 1 of model mnist" in result.stdout
    with running_server(
        [f"--model_config_file={config}", "--allow_version_labels_for_unavailable_models"]
    ) as srv:
        predict, _ = stubs(srv.target)
        images = np.zeros((1, 28, 28, 1), np.float32)
        response = predict.Predict(request_for(images, version_label="stable"), timeout=10)
        assert response.model_spec.version.value == 1


def test_warmup_can_be_disabled(quick_model):
    with running_server(
        [
            "--model_name=mnist",
            f"--model_base_path={quick_model.base_path}",
            "--enable_model_warmup=false",
            "--file_system_poll_wait_seconds=0",
        ]
    ) as srv:
        assert "Finished reading warmup data" not in srv.log()


def test_batching_server_returns_each_request_its_own_rows(quick_model, tmp_path, digits):
    images, _ = digits
    config = tmp_path / "batching.config"
    config.write_text(
        "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 2000 }\n"
        "num_batch_threads { value: 1 }\nmax_enqueued_batches { value: 100 }\n"
    )
    loaded = tf.saved_model.load(str(quick_model.base_path / "1"))
    expected = loaded.signatures["serving_default"](images=tf.constant(images))["probabilities"]
    flags = [
        "--model_name=mnist",
        f"--model_base_path={quick_model.base_path}",
        "--enable_batching",
        f"--batching_parameters_file={config}",
    ]
    with running_server(flags) as srv:
        predict, _ = stubs(srv.target)
        slices = [slice(i, i + 1) for i in range(40)] + [slice(40, 47), slice(50, 80)]
        results: dict[int, np.ndarray] = {}

        def call(index: int) -> None:
            response = predict.Predict(request_for(images[slices[index]]), timeout=30)
            results[index] = tf.make_ndarray(response.outputs["probabilities"])

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(slices))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for index, rows in enumerate(slices):
            np.testing.assert_allclose(results[index], expected.numpy()[rows], atol=1e-5)

        error = rpc_error(predict.Predict, request_for(images[:33]))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == "Task size 33 is larger than maximum input batch size 32"
    assert "Batching enabled" in srv.log()


@pytest.mark.parametrize("count", ["0", "-5", "10001", "many"])
def test_smoke_refuses_a_bad_count(count, capsys):
    from serving import smoke

    with pytest.raises(SystemExit) as info:
        smoke.main(["--count", count])
    assert info.value.code == 2
    assert "--count" in capsys.readouterr().err
