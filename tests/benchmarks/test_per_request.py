"""make bench's costs per request: the CPU budget's arithmetic on made-up runs, and
the server's Python steps timed on a real model."""

from __future__ import annotations

import pytest

from benchmarks import per_request
from benchmarks import serving as bench


def runs(cpus_used: float = 150.0) -> tuple[dict, dict, dict, list[dict]]:
    ceiling = {1: {"images_per_s": 500.0}, 64: {"images_per_s": 5000.0}}
    served = {1: {"images_per_s": 800.0}, 64: {"images_per_s": 4000.0}}  # 0.25 ms an image
    # 2,000 req/s: loadgen 40% of a core (0.2 ms each), canned server 80% (0.4 ms each)
    transport = {"rps": 2000.0, "loadgen_cpu_percent": 40.0, "server_cpu_percent": 80.0}
    rows = [
        {"batching": True, "concurrency": 64, "rps": 1000.0, "server_cpu_percent": cpus_used},
        {"batching": False, "concurrency": 64, "rps": 900.0, "server_cpu_percent": 120.0},
    ]
    return ceiling, served, transport, rows


def test_budget_adds_the_three_unavoidable_costs(monkeypatch):
    monkeypatch.setattr(per_request.os, "cpu_count", lambda: 2)
    budget = per_request.cpu_budget(*runs())
    assert budget["loadgen_ms"] == pytest.approx(0.2)
    assert budget["transport_ms"] == pytest.approx(0.4)
    assert budget["model_ms"] == pytest.approx(0.25)
    assert budget["bound_rps"] == pytest.approx(2000 / 0.85)  # 2 CPUs, 0.85 ms a request
    # The goals: 0.45 x the best ceiling, 0.7 x the transport, in CPUs at that rate.
    assert budget["goals"]["0.45x ceiling"]["rps"] == pytest.approx(2250)
    assert budget["goals"]["0.45x ceiling"]["cpus"] == pytest.approx(2250 * 0.85 / 1000)
    assert budget["goals"]["0.7x transport"]["rps"] == pytest.approx(1400)
    # The server: 1.5 CPUs at 1,000 req/s is 1.5 ms a request, 0.85 of it its own work.
    server = budget["server"]
    assert server["server_ms"] == pytest.approx(1.5)
    assert server["own_ms"] == pytest.approx(1.5 - 0.4 - 0.25)
    assert server["x_bound"] == pytest.approx(1000 / (2000 / 0.85))


def test_budget_lines_name_the_bound_and_each_goal(monkeypatch):
    monkeypatch.setattr(per_request.os, "cpu_count", lambda: 2)
    text = "\n".join(per_request.budget_lines(per_request.cpu_budget(*runs())))
    assert "no server on this stack can answer more than 2353 requests/s" in text
    assert "goal 0.45x ceiling: 2250 requests/s needs 1.91 CPUs" in text
    assert "goal 0.7x transport: 1400 requests/s needs 1.19 CPUs" in text
    assert "its own share 0.850 ms" in text


def test_budget_without_a_batching_row_has_no_server_line(monkeypatch):
    monkeypatch.setattr(per_request.os, "cpu_count", lambda: 2)
    ceiling, served, transport, rows = runs()
    budget = per_request.cpu_budget(ceiling, served, transport, rows[1:])
    assert "server" not in budget
    assert not any("this server" in line for line in per_request.budget_lines(budget))


def test_request_path_times_each_step_of_a_real_predict(quick_model):
    version_dir = quick_model.base_path / "1"
    request_file = bench.predict_request_file(bench.sample_images(1))
    timings = per_request.measure_request_path(
        bench.served_model(version_dir), request_file, repeats=20
    )
    assert list(timings) == [
        "parse the request",
        "check and decode inputs",
        "build the response",
        "serialize the response",
        "count and time it (metrics)",
    ]
    assert all(0 < us < 1e6 for us in timings.values()), timings
