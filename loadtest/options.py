"""The load test's own command-line options, and their validation in one place.

locust adds these to its parser (hooks.py) and shows them in the web UI, where they can
be changed before each run. The web UI converts a typed value with the type of the
default and no further check, so every value is validated again here, when a run uses
it, with messages that say what to pass.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from client import ClientError, resolve_target
from loadtest import thresholds
from loadtest.saturation import StepPlan

SCENARIOS = ("single", "batch", "labels")
DEFAULT_LABEL_WEIGHTS = "stable=9,canary=1"
MAX_BATCH = 1024  # TF Serving's max_batch_size in serving/batching_*.config
_SCHEMES = {"grpc://": False, "http://": False, "grpcs://": True, "https://": True}


@dataclass(frozen=True)
class Settings:
    """Everything a user needs for one run, validated."""

    target: str  # what the client SDK takes: host:port, a comma list or a gRPC URI
    tls: bool
    model: str
    scenario: str
    batch_size: int
    label_weights: tuple[tuple[str, float], ...]
    request_timeout: float
    limits: thresholds.Limits


def add_arguments(parser: Any) -> None:
    """Register the options on locust's parser (it takes the include_in_web_ui flag)."""
    group = parser.add_argument_group("MNIST model", "What the simulated users send.")
    group.add_argument("--model-name", default="mnist", help="model name in ModelSpec")
    group.add_argument(
        "--scenario",
        default="single",
        choices=SCENARIOS,
        help="single: one digit per Predict (default); batch: --batch-size digits per "
        "Predict; labels: one digit per Predict, spread over version labels by "
        "--label-weights",
    )
    group.add_argument("--batch-size", type=int, default=32, help="digits per Predict (batch)")
    group.add_argument(
        "--label-weights",
        default=DEFAULT_LABEL_WEIGHTS,
        help="version labels and their shares of requests (labels), e.g. stable=9,canary=1",
    )
    group.add_argument(
        "--request-timeout", type=float, default=10.0, help="seconds before a Predict fails"
    )
    limits = parser.add_argument_group(
        "Thresholds", "The run exits non-zero (--exit-code-on-error) when one is crossed."
    )
    limits.add_argument(
        "--max-fail-ratio",
        type=float,
        default=thresholds.MAX_FAIL_RATIO,
        help="highest acceptable share of failed requests (0..1)",
    )
    limits.add_argument(
        "--max-p99-ms",
        type=float,
        default=thresholds.MAX_P99_MS,
        help="highest acceptable p99 latency over the run, and the step load's bound",
    )
    limits.add_argument(
        "--max-wrong-ratio",
        type=float,
        default=thresholds.MAX_WRONG_RATIO,
        help="highest acceptable share of wrong predictions (0..1)",
    )
    steps = parser.add_argument_group(
        "Step load", "Only with loadtest/shapes.py: -f loadtest/locustfile.py,loadtest/shapes.py"
    )
    steps.add_argument("--step-users", type=int, default=8, help="users added per step")
    steps.add_argument("--step-seconds", type=float, default=15.0, help="length of a step")
    steps.add_argument("--step-max-users", type=int, default=256, help="stop at this many users")


def settings(options: argparse.Namespace, host: str | None) -> Settings:
    """Validate a run's options; ValueError says which one is wrong and why."""
    target, tls = parse_host(host)
    scenario = options.scenario
    if scenario not in SCENARIOS:
        raise ValueError(f"--scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
    if not str(options.model_name).strip():
        raise ValueError("--model-name must not be empty")
    batch_size = int(options.batch_size)
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"--batch-size must be between 1 and {MAX_BATCH}, got {batch_size}")
    timeout = float(options.request_timeout)
    if not timeout > 0:
        raise ValueError(f"--request-timeout must be a positive number of seconds, got {timeout}")
    return Settings(
        target=target,
        tls=tls,
        model=str(options.model_name).strip(),
        scenario=scenario,
        batch_size=batch_size,
        label_weights=parse_label_weights(str(options.label_weights)),
        request_timeout=timeout,
        limits=limits(options),
    )


def limits(options: argparse.Namespace) -> thresholds.Limits:
    try:
        return thresholds.Limits(
            max_fail_ratio=float(options.max_fail_ratio),
            max_p99_ms=float(options.max_p99_ms),
            max_wrong_ratio=float(options.max_wrong_ratio),
        )
    except ValueError as exc:
        raise ValueError(f"bad threshold: {exc}") from None


def step_plan(options: argparse.Namespace) -> StepPlan:
    limit = limits(options)
    try:
        return StepPlan(
            step_users=int(options.step_users),
            step_seconds=float(options.step_seconds),
            max_users=int(options.step_max_users),
            p99_limit_ms=limit.max_p99_ms,
            max_fail_ratio=limit.max_fail_ratio,
        )
    except ValueError as exc:
        raise ValueError(f"bad step load option: {exc}") from None


def parse_host(host: str | None) -> tuple[str, bool]:
    """locust's --host as a gRPC target, and whether to use TLS.

    The plain form is host:port, as gRPC takes it. A URL scheme is accepted because the
    web UI's host field invites one: grpc:// and http:// mean plaintext, grpcs:// and
    https:// TLS. gRPC URIs such as dns:///serving:8500 pass through unchanged.
    """
    text = (host or "").strip()
    if not text:
        raise ValueError("no host to load: pass --host host:port, e.g. --host localhost:8500")
    tls = False
    for scheme, secure in _SCHEMES.items():
        if text.lower().startswith(scheme):
            text, tls = text[len(scheme) :].rstrip("/"), secure
            break
    try:
        resolve_target(text)
    except ClientError as exc:
        raise ValueError(f"bad --host {host!r}: {exc}") from None
    return text, tls


def parse_label_weights(text: str) -> tuple[tuple[str, float], ...]:
    """ "stable=9,canary=1" -> (("stable", 9.0), ("canary", 1.0))."""
    pairs: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        label, sep, weight = part.partition("=")
        label = label.strip()
        try:
            value = float(weight) if sep else float("nan")
        except ValueError:
            value = float("nan")
        if not label or not value >= 0 or value == float("inf"):
            raise ValueError(
                f"bad --label-weights entry {part!r}: expected label=weight with a weight >= 0"
            )
        if label in pairs:
            raise ValueError(f"label {label!r} appears twice in --label-weights")
        pairs[label] = value
    if not pairs or sum(pairs.values()) <= 0:
        raise ValueError(
            f"--label-weights needs at least one label with a positive weight, got {text!r}"
        )
    return tuple(pairs.items())
