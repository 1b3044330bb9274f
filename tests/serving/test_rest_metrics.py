"""`python -m serving --rest_api_port --monitoring_config_file`, end to end: REST and
gRPC on one server, and Prometheus metrics under TF Serving's names."""

import json
import re
import urllib.request

import grpc
import numpy as np
import pytest

from tests.conftest import free_port, running_server
from tests.serving import fuzz
from tests.serving.test_server import request_for, stubs
from training.data import load, scale


def http(url: str, body: dict | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def rest_server(quick_model, tmp_path_factory):
    config_dir = tmp_path_factory.mktemp("monitoring")
    monitoring = config_dir / "monitoring.config"
    monitoring.write_text(
        'prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }'
    )
    batching = config_dir / "batching.config"
    batching.write_text("max_batch_size { value: 64 }\nnum_batch_threads { value: 1 }\n")
    rest_port = free_port()
    flags = [
        "--model_name=mnist",
        f"--model_base_path={quick_model.base_path}",
        f"--rest_api_port={rest_port}",
        f"--monitoring_config_file={monitoring}",
        "--enable_batching",
        f"--batching_parameters_file={batching}",
    ]
    with running_server(flags) as srv:
        srv.wait_for_log("Exporting HTTP/REST API at:localhost:")
        yield srv, f"http://127.0.0.1:{rest_port}"


def test_rest_status_and_predict_match_grpc(rest_server):
    srv, url = rest_server
    status, body = http(f"{url}/v1/models/mnist")
    assert status == 200
    assert json.loads(body)["model_version_status"][0]["state"] == "AVAILABLE"

    images = scale(load().x_test[:5])
    status, body = http(f"{url}/v1/models/mnist:predict", {"instances": images.tolist()})
    assert status == 200, body
    rest_classes = [p["classes"] for p in json.loads(body)["predictions"]]
    predict, _ = stubs(srv.target)
    grpc_classes = list(
        predict.Predict(request_for(images), timeout=10).outputs["classes"].int64_val
    )
    assert rest_classes == grpc_classes

    status, body = http(f"{url}/v1/models/nope:predict", {"instances": images.tolist()})
    assert status == 404 and "error" in json.loads(body)


def test_prometheus_metrics_use_tf_serving_names(rest_server):
    srv, url = rest_server
    predict, _ = stubs(srv.target)
    predict.Predict(request_for(np.zeros((1, 28, 28, 1), np.float32)), timeout=10)
    with pytest.raises(grpc.RpcError):
        predict.Predict(request_for(np.zeros((1, 28, 28, 1), np.float32), "nope"), timeout=10)
    http(f"{url}/v1/models/mnist:predict", {"instances": [[[[0.0]] * 28] * 28]})

    status, text = http(f"{url}/monitoring/prometheus/metrics")
    assert status == 200
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert re.search(
        r':tensorflow:serving:request_count\{model_name="mnist",status="OK"\} \d', text
    )
    # A model that is not configured is counted under one fixed name, never its own.
    assert re.search(
        r':tensorflow:serving:request_count\{model_name="",status="NOT_FOUND"\} \d', text
    )
    assert 'model_name="nope"' not in text
    assert "_total" not in text and "_created" not in text
    for entrypoint in ("GRPC", "REST"):
        assert re.search(
            r':tensorflow:serving:request_latency_bucket\{API="[a-zA-Z]+",entrypoint="'
            + entrypoint
            + r'",le="[0-9.e+]+",model_name="mnist"\}',
            text,
        ), entrypoint
    assert ":tensorflow:cc:saved_model:load_latency{model_path=" in text
    assert ":tensorflow:serving:model_warmup_latency_count{model_path=" in text
    assert ":tensorflow:serving:batching_session:queuing_latency_count{thread_pool_name=" in text


def test_rest_fuzz(rest_server):
    srv, url = rest_server
    report = fuzz.run(srv.target, 500, seed=1, rest=url)
    assert report.faults == [], report.faults[:10]
    assert sum(n for o, n in report.outcomes.items() if o.startswith("json -> http:4")) > 50
