"""A few tasks of the locustfile's user in a real locust Environment, without a run.

    python -m tests.loadtest.locust_probe HOST TASKS [LOADTEST OPTIONS...]

Prints, as JSON, every request event fired, locust's statistics per name, and the
digits the correctness tally checked. test_grpc_user.py runs it in a subprocess:
importing locust patches the process for gevent, which pytest's own must not be.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import locust
from locust.env import Environment

from loadtest import hooks, options
from loadtest.locustfile import MnistUser


def main(argv: list[str]) -> None:
    host, tasks, *rest = argv
    parser = argparse.ArgumentParser()
    options.add_arguments(parser)
    parsed = parser.parse_args(rest)
    environment = Environment(
        user_classes=[MnistUser], events=locust.events, host=host, parsed_options=parsed
    )
    environment.create_local_runner()  # what records request events in environment.stats
    fired: list[dict[str, Any]] = []

    def record(exception: BaseException | None = None, **event: Any) -> None:
        error = None if exception is None else f"{type(exception).__name__}: {exception}"
        fired.append(event | {"exception": error})

    environment.events.request.add_listener(record)
    MnistUser.host = host
    user = MnistUser(environment)
    user.on_start()
    for _ in range(int(tasks)):
        user.predict()
    user.on_stop()
    stats = {
        entry.name: [entry.num_requests, entry.num_failures]
        for entry in environment.stats.entries.values()
    }
    print(json.dumps({"events": fired, "stats": stats, "digits": hooks.TALLY.total().digits}))


if __name__ == "__main__":
    main(sys.argv[1:])
