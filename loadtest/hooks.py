"""locust event listeners: the options, correctness across workers, and the verdict.

Registered once, on import (the locustfile imports this module). Workers send their wrong
prediction counts with every statistics report, so the master's totals cover every
process; the verdict is made where the statistics are complete: the master, or the
single process of a local run.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from typing import Any

from locust import events, log, stats
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtest import correctness, digits, options, saturation, thresholds

logger = logging.getLogger(__name__)

TALLY = correctness.Tally()  # this process's wrong predictions (all of them on the master)
_REPORT_KEY = "mnist_correctness"


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    options.add_arguments(parser)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    parsed = environment.parsed_options
    if parsed is None:  # locust used as a library: the caller passes what it needs
        return
    # A headless run cannot be corrected once started; the web UI's host may come later.
    if parsed.headless or environment.host:
        try:
            options.settings(parsed, environment.host)
            options.step_plan(parsed)
        except ValueError as exc:
            logger.error("%s", exc)
            sys.exit(2)
    if not isinstance(environment.runner, MasterRunner):
        digits.load()  # before the first user starts, not in its first request
    if environment.web_ui is not None:
        environment.web_ui.app.add_url_rule(
            "/mnist/correctness", "mnist_correctness", _correctness_json
        )


def _correctness_json() -> dict[str, Any]:
    """GET /mnist/correctness in the web UI: the wrong-prediction counts so far."""
    return {
        "rows": [vars(row) | {"wrong_ratio": row.wrong_ratio} for row in TALLY.rows()],
        "summary": TALLY.summary(),
    }


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    TALLY.reset()


@events.reset_stats.add_listener
def _on_reset_stats() -> None:
    TALLY.reset()


@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    data[_REPORT_KEY] = TALLY.drain()


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    TALLY.merge(data.get(_REPORT_KEY, {}))


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    parsed = environment.parsed_options
    if not parsed.headless and environment.stats.total.num_requests == 0:
        return  # the web UI was closed without a test: nothing to judge
    search = _step_search(environment)
    found = verdict(environment, parsed, search)
    if parsed.csv_prefix:
        _write_final_stats(environment, parsed.csv_prefix)
        TALLY.write_csv(f"{parsed.csv_prefix}_correctness.csv")
        if search is not None:
            search.write_csv(f"{parsed.csv_prefix}_steps.csv")
    logger.info(TALLY.summary())
    if search is not None:
        for line in search.conclusions():
            logger.info(line)
    if found:
        for reason in found:
            logger.error("Threshold crossed: %s", reason)
        environment.process_exit_code = parsed.exit_code_on_error
    elif not log.unhandled_greenlet_exception:
        logger.info("Thresholds met")
        environment.process_exit_code = 0  # failures within the limit are not an error


def verdict(
    environment: Environment,
    parsed: argparse.Namespace,
    search: saturation.StepSearch | None,
) -> list[str]:
    """Every crossed threshold of the run, in words."""
    total = environment.stats.total
    checked = TALLY.total()
    outcome = thresholds.Outcome(
        requests=total.num_requests,
        failures=total.num_failures,
        p99_ms=total.get_response_time_percentile(0.99) or 0.0,
        digits=checked.digits,
        wrong=checked.wrong,
        errors=sum(e["count"] for e in environment.runner.exceptions.values()),
    )
    # A step load breaks the service level on purpose at its last step; the steps
    # judge latency and failures one by one, and the run passes if one step held.
    found = thresholds.violations(outcome, options.limits(parsed), check_latency=search is None)
    if search is not None and search.best is None:
        found.append("no load step met the service level")
    return found


def _write_final_stats(environment: Environment, prefix: str) -> None:
    """Write locust's totals once more, now that the run is over.

    locust's CSV writer runs once a second and is not called at exit, so its files can
    miss the last second's requests, and disagree with the correctness counts.
    """
    writer = stats.StatsCSV(environment, stats.PERCENTILES_TO_REPORT)
    for suffix, write in (
        ("stats", writer.requests_csv),
        ("failures", writer.failures_csv),
        ("exceptions", writer.exceptions_csv),
    ):
        with open(f"{prefix}_{suffix}.csv", "w", newline="") as file:
            write(csv.writer(file))


def _step_search(environment: Environment) -> saturation.StepSearch | None:
    search = getattr(environment.shape_class, "search", None)
    return search if isinstance(search, saturation.StepSearch) else None
