"""The fuzzer, shortened for CI: malformed requests never crash, hang or bloat the server.

The full run is `python -m tests.serving.fuzz --count 10000` against a running server.
"""

from pathlib import Path

import numpy as np
import tensorflow as tf

from tests.conftest import free_port, running_server
from tests.serving import fuzz
from tests.serving.test_server import request_for, stubs
from training.data import load, scale

CI_COUNT = 1500


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_malformed_requests_get_clean_errors(quick_model):
    mnist = load()
    images = scale(mnist.x_test[:100])
    rest_port = free_port()
    flags = [
        "--model_name=mnist",
        f"--model_base_path={quick_model.base_path}",
        "--file_system_poll_wait_seconds=0",
        f"--rest_api_port={rest_port}",
    ]
    with running_server(flags) as srv:
        srv.wait_for_log("Exporting HTTP/REST API at:localhost:")
        predict, _ = stubs(srv.target)
        before = predict.Predict(request_for(images), timeout=30)
        rss_before = rss_mb(srv.process.pid)

        report = fuzz.run(srv.target, CI_COUNT, seed=0, rest=f"http://127.0.0.1:{rest_port}")

        assert report.sent == CI_COUNT
        assert report.faults == [], report.faults[:10]
        rejected = sum(n for o, n in report.outcomes.items() if "grpc:INVALID_ARGUMENT" in o)
        assert rejected > CI_COUNT // 3, report.outcomes  # the fuzzer reached input checks
        refused = sum(n for o, n in report.outcomes.items() if o == "json -> http:400")
        assert refused > CI_COUNT // 10, report.outcomes  # and the REST API's
        assert srv.process.poll() is None
        after = predict.Predict(request_for(images), timeout=30)
        np.testing.assert_array_equal(
            tf.make_ndarray(after.outputs["classes"]), tf.make_ndarray(before.outputs["classes"])
        )
        growth = rss_mb(srv.process.pid) - rss_before
        assert growth < 200, f"server memory grew {growth:.0f} MB during the fuzz run"
