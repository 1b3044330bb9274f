"""The locust user (loadtest/grpc_user.py, loadtest/locustfile.py) in a real locust
Environment: every call is a request event that locust's statistics count."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, free_port, python_env


def probe(host: str, tasks: int, *options: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.loadtest.locust_probe", host, str(tasks), *options],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_each_predict_fires_a_request_event_that_locust_counts(server):
    seen = probe(server.target, 3, "--scenario", "batch", "--batch-size", "4")
    assert len(seen["events"]) == 3
    for event in seen["events"]:
        assert event["request_type"] == "grpc" and event["name"] == "Predict batch=4"
        assert event["exception"] is None and event["context"] == {"label": None, "digits": 4}
        assert 0 < event["response_time"] < 10_000
        assert event["response_length"] > 4 * 10 * 4  # four rows of ten float32 probabilities
    assert seen["stats"] == {"Predict batch=4": [3, 0]}
    assert seen["digits"] == 12  # every answer checked


def test_a_failed_call_is_one_failed_request_never_retried():
    seen = probe(f"127.0.0.1:{free_port()}", 1, "--request-timeout", "5")
    [event] = seen["events"]  # one attempt: the user's client does not retry
    assert event["name"] == "Predict"
    assert event["exception"].startswith("Unavailable: Predict mnist on 127.0.0.1:")
    assert event["response_length"] == 0 and event["response_time"] < 5000
    assert seen["stats"] == {"Predict": [1, 1]}
    assert seen["digits"] == 0
