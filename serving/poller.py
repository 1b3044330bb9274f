"""The background poll: base paths and the model config file, on TF Serving's intervals.

TF Serving looks for new versions every --file_system_poll_wait_seconds and re-reads
--model_config_file every --model_config_file_poll_wait_seconds. One daemon thread does
both here, waking every TICK_S to see which is due, so either interval can be changed
without the other and a stop is noticed within a tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("serving")

TICK_S = 0.2


def start(
    stop: threading.Event,
    poll_files: Callable[[], None],
    file_system_interval_s: float,
    reload_config: Callable[[], None] | None = None,
    config_interval_s: float = 0,
) -> threading.Thread | None:
    """Call `poll_files` and `reload_config` at their intervals until `stop` is set; an
    interval of 0 (or no reload_config) leaves that poll out. None when neither runs."""
    polls_config = reload_config is not None and config_interval_s > 0
    if file_system_interval_s <= 0 and not polls_config:
        return None

    def loop() -> None:
        next_files = time.monotonic() + file_system_interval_s
        next_config = time.monotonic() + config_interval_s
        while not stop.wait(TICK_S):
            now = time.monotonic()
            if polls_config and now >= next_config:
                next_config = now + config_interval_s
                reload_config()
            if file_system_interval_s > 0 and now >= next_files:
                next_files = now + file_system_interval_s
                try:
                    poll_files()
                except Exception:
                    log.exception("file system poll failed")

    thread = threading.Thread(target=loop, name="model-poller", daemon=True)
    thread.start()
    return thread
