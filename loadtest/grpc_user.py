"""A reusable locust User for a model behind TF Serving's gRPC API, built on client.Client.

It knows nothing of what is sent: each user owns a `client.Client` (its `client`, as an
HttpUser's is an HTTP session) whose calls a LocustInterceptor times and reports to
locust, and the scenario's tasks call it inside `self.request(name)` blocks.

gRPC's C core does its own blocking I/O, which gevent cannot switch away from, so
without grpc's gevent integration every call blocks the whole locust process: measured
here, 32 users then behave like one (250 req/s at 3 ms each, against 600 req/s with
it). With it, calls yield to other users as HTTP requests do. It must be switched on
before the first channel exists: this module does it on import, and channels are only
created when users start.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import grpc.experimental.gevent
from locust import User, constant
from locust.exception import StopUser

from client import Client
from loadtest import options
from loadtest.interceptor import LocustInterceptor

grpc.experimental.gevent.init_gevent()

# A subchannel pool of the channel's own: its own HTTP/2 connection, not one shared
# with every other channel to the same address in the process.
OWN_CONNECTION = ("grpc.use_local_subchannel_pool", 1)


class GrpcUser(User):
    """One simulated client: its own channel and connection, a closed request loop.

    A user sends its next request as soon as the previous one is answered, so the user
    count is the number of requests in flight. Each user has its own HTTP/2 connection,
    as independent clients would: behind a Kubernetes Service, connections, not
    requests, are what kube-proxy spreads over the pods.

    The client never retries: a retried UNAVAILABLE would hide the failure and inflate
    the latency of the call that reports it. Its timeout is --request-timeout; --host,
    --model-name and the rest are the load test's options (loadtest/options.py, added to
    locust's parser by loadtest/hooks.py, which a locustfile imports).
    """

    abstract = True
    wait_time: ClassVar[Callable[..., float]] = constant(0)

    settings: options.Settings
    client: Client

    def on_start(self) -> None:
        try:
            self.settings = options.settings(self.environment.parsed_options, self.host)
        except ValueError as exc:  # only from the web UI: the command line is checked at init
            raise StopUser(f"cannot start a user: {exc}") from None
        self._timing = LocustInterceptor(self.environment.events.request)
        self.client = Client(
            self.settings.target,
            self.settings.model,
            tls=self.settings.tls,
            timeout=self.settings.request_timeout,
            retries=0,
            channel_options=[OWN_CONNECTION],
            interceptors=[self._timing],
        )

    def on_stop(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()

    def request(self, name: str, **context: Any) -> AbstractContextManager[None]:
        """Name the calls made in the block in locust's statistics, with `context`.

        A ClientError raised in the block (a failed call, or an answer the client refused)
        is recorded as the request's failure and ends the block; see loadtest/interceptor.py.
        """
        return self._timing.request(name, **context)
