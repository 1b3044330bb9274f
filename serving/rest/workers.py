"""Worker processes that parse large JSON bodies off the event loop.

`json.loads` holds the GIL for its whole run (seconds for a body of tens of MB), so a
thread would stall the event loop, and with it every other request, just as long. The
workers are "spawn"ed, fresh interpreters that import numpy, protobuf and the JSON
decoders (`serving.jsontensors`, `serving.jsonexamples`) only, never TensorFlow: they
start in a fraction of a second and stay small.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import grpc

from serving.errors import ServingError

# Each worker holds one parsed body at a time (up to ~10x --max_request_bytes), so there
# are few; large requests beyond them queue.
DEFAULT_PROCESSES = min(2, os.cpu_count() or 1)


class ParserPool:
    """A process pool started on first use (most servers never see a large body) and
    started afresh when a worker dies."""

    def __init__(self, processes: int = DEFAULT_PROCESSES):
        self._processes = processes
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` in a worker; both must pickle. A ServingError it raises
        comes back as itself."""
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self._processes, mp_context=context)
        pool = self._pool
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, functools.partial(function, *args))
        except BrokenProcessPool:  # a worker died (killed for memory?): start afresh
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "The process parsing the request's JSON died (out of memory?); "
                "send smaller requests or lower --max_request_bytes",
            ) from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
