"""Short headless locust runs against the local server: a few seconds of load each.

locust patches the process for gevent on import, so it only ever runs in subprocesses
here, never inside pytest.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from loadtest import __main__ as driver
from loadtest import correctness, report
from tests.conftest import ROOT, python_env, running_server

LOCUSTFILE = "loadtest/locustfile.py"
# The quick model gets ~3% of the test digits wrong; the default limit is for real models.
QUICK_MODEL_WRONG = ["--max-wrong-ratio", "0.1"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    result.output = result.stdout + result.stderr
    return result


def locust(*args: str) -> subprocess.CompletedProcess:
    return run("-m", "locust", "-f", LOCUSTFILE, "--headless", "--only-summary", *args)


def totals(prefix) -> tuple[report.StatsRow, correctness.Row]:
    stats = report.read_stats(prefix)[-1]
    checked = correctness.read_csv(f"{prefix}_correctness.csv")[-1]
    assert stats.name == checked.name == "Aggregated"
    return stats, checked


def test_make_loadtest_driver_runs_locust_and_writes_every_report(server, tmp_path):
    prefix = tmp_path / "reports" / "run"
    result = run(
        *("-m", "loadtest", "--host", server.target, "-u", "4", "-r", "4", "-t", "4s"),
        *("--out", str(prefix), *QUICK_MODEL_WRONG),
    )
    assert result.returncode == 0, result.output
    stats, checked = totals(prefix)
    assert stats.requests > 100 and stats.failures == 0
    assert checked.digits == stats.requests  # every answer was checked
    assert 0 < checked.wrong_ratio < 0.1
    for suffix in ("_stats_history.csv", "_failures.csv", "_exceptions.csv"):
        assert (tmp_path / "reports" / f"run{suffix}").is_file()
    assert "<html" in (tmp_path / "reports" / "run.html").read_text()[:2000].lower()
    assert (tmp_path / "reports" / "run.png").read_bytes()[:4] == b"\x89PNG"
    history = report.read_history(prefix)
    assert max(history.users) == 4 and max(history.rps) > 0
    assert "Thresholds met" in result.output
    assert f"Aggregated  {stats.requests:>8}  0 (0.00%)" in result.output  # the summary table


def test_crossed_thresholds_fail_the_run_and_say_why(server, tmp_path):
    result = locust(
        *("-u", "2", "-r", "2", "-t", "2s", "--host", server.target),
        *("--max-p99-ms", "0.001", "--max-wrong-ratio", "0"),
    )
    assert result.returncode == 1, result.output
    assert "Threshold crossed: p99 latency" in result.output
    assert "Threshold crossed: wrong predictions" in result.output


def test_processes_and_batches_count_every_digit_on_the_master(server, tmp_path):
    prefix = tmp_path / "batch"
    result = locust(
        *("-u", "4", "-r", "4", "-t", "4s", "--host", server.target, "--processes", "2"),
        *("--scenario", "batch", "--batch-size", "8", "--csv", str(prefix), *QUICK_MODEL_WRONG),
    )
    assert result.returncode == 0, result.output
    stats, checked = totals(prefix)
    assert report.read_stats(prefix)[0].name == "Predict batch=8"
    assert stats.requests > 10 and stats.failures == 0
    assert checked.digits == 8 * stats.requests  # both workers' counts reached the master


def test_step_load_reports_steps_and_the_sustained_rate(server, tmp_path):
    prefix = tmp_path / "steps"
    result = run(
        *("-m", "locust", "-f", f"{LOCUSTFILE},loadtest/shapes.py", "--headless"),
        *("--only-summary", "--host", server.target, "--csv", str(prefix), *QUICK_MODEL_WRONG),
        *("--step-users", "2", "--step-seconds", "3", "--step-max-users", "4"),
    )
    assert result.returncode == 0, result.output
    steps = (tmp_path / "steps_steps.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in steps[1:]] == ["2", "4"]
    assert "Highest rate sustained within the service level" in result.output


def test_traffic_split_over_version_labels(quick_model, tmp_path):
    base = tmp_path / "mnist"
    for version in (1, 2):
        shutil.copytree(quick_model.base_path / "1", base / str(version))
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "mnist" base_path: "{base}"\n'
        '  model_platform: "tensorflow" model_version_policy { all {} }\n'
        '  version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 }\n'
        "} }\n"
    )
    prefix = tmp_path / "labels"
    flags = [f"--model_config_file={config}", "--allow_version_labels_for_unavailable_models"]
    with running_server(flags) as srv:
        result = locust(
            *("-u", "4", "-r", "4", "-t", "3s", "--host", srv.target, "--csv", str(prefix)),
            *("--scenario", "labels", "--label-weights", "stable=1,canary=1", *QUICK_MODEL_WRONG),
        )
    assert result.returncode == 0, result.output
    names = {row.name: row for row in report.read_stats(prefix)}
    assert names["Predict label=stable"].requests > 10
    assert names["Predict label=canary"].requests > 10
    assert names["Aggregated"].failures == 0
    versions = {
        (row.name, row.version) for row in correctness.read_csv(f"{prefix}_correctness.csv")
    }
    assert {("Predict label=stable", "1"), ("Predict label=canary", "2")} <= versions


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no host to load: pass --host host:port"),
        (["--host", "localhost:8500", "--scenario", "labels", "--label-weights", "a=0"], "a=0"),
    ],
)
def test_bad_options_stop_a_headless_run_before_it_starts(args, message):
    result = locust("-u", "1", "-t", "1s", *args)
    assert result.returncode == 2, result.output
    assert message in result.output


def test_driver_without_a_model_says_how_to_get_one(tmp_path, capsys):
    code = driver.main(["--model-base-path", str(tmp_path / "empty"), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "no model version under" in capsys.readouterr().err


def test_driver_without_testkit_asks_for_a_host(tmp_path, monkeypatch, capsys):
    """An installed copy has no testkit (it is not shipped): starting a local server
    then fails with what to do, not an ImportError's traceback."""
    (tmp_path / "mnist" / "1").mkdir(parents=True)
    monkeypatch.setitem(sys.modules, "testkit.launch", None)  # importing it now fails
    argv = ["--model-base-path", str(tmp_path / "mnist"), "--out", str(tmp_path / "r")]
    assert driver.main(argv) == 2
    assert "pass --host host:port" in capsys.readouterr().err
