"""The gRPC server's life: build, listen once models are loaded, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from serving.manager import Manager
from serving.protos import server_configs_pb2
from serving.services import ModelService, PredictionService, add_to_server

log = logging.getLogger("serving")

# How long in-flight requests may run after SIGTERM before the server exits anyway.
SHUTDOWN_GRACE_SECONDS = 10.0
# With the health service on: how long NOT_SERVING is announced before closing.
DRAIN_SECONDS = 1.0
# TF Serving lifts gRPC's 4 MB message limit to the protocol's maximum for what it
# sends. What it receives is bounded here by --max_request_bytes (0: that maximum):
# gRPC refuses a longer message from its length prefix, before buffering it.
MAX_MESSAGE_BYTES = 2**31 - 1
# Connections that hold a file descriptor and nothing else: one that has not finished
# its (TLS and HTTP/2) handshake in 20 s is dropped, one without a call for a minute is
# closed (with GOAWAY, so a client reconnects when it next calls), and the peer of a
# call is pinged after a minute of silence and dropped if it does not answer within
# 20 s. None of these ends a connection whose client answers pings and keeps one call
# open by trickling its request message in (a few bytes a second: gRPC has no deadline
# on receiving a message, and the call is not idle): only the connection's age does.
# After 5 minutes (gRPC adds +-10% jitter) the connection gets GOAWAY, so clients open
# a new one for their next calls, and a minute later it is closed with whatever is still
# in flight: no connection lasts more than 6.5 minutes. The minute is twice the REST
# API's whole-request timeout; a call still running after it fails with UNAVAILABLE
# "max connection age". --grpc_channel_arguments overrides any of them (server_options).
CONNECTION_ARGUMENTS: tuple[tuple[str, int], ...] = (
    ("grpc.server_handshake_timeout_ms", 20_000),
    ("grpc.max_connection_idle_ms", 60_000),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.max_connection_age_ms", 300_000),
    ("grpc.max_connection_age_grace_ms", 60_000),
)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def server_options(
    channel_arguments: Iterable[tuple[str, int | str]] = (),
    *,
    max_request_bytes: int = 0,
) -> list[tuple[str, int | str]]:
    """The gRPC server's options: message limits (TF Serving's, or --max_request_bytes
    on receive), no port sharing, connection time limits, and then
    --grpc_channel_arguments, which win (gRPC keeps the first of two values for one key,
    so a user's value after a default used to be ignored)."""
    options: dict[str, int | str] = {
        "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
        "grpc.max_receive_message_length": max_request_bytes or MAX_MESSAGE_BYTES,
        "grpc.so_reuseport": 0,
        **dict(CONNECTION_ARGUMENTS),
    }
    options.update(channel_arguments)
    return list(options.items())


class ModelServer:
    def __init__(
        self,
        manager: Manager,
        prediction: PredictionService,
        *,
        channel_arguments: list[tuple[str, int | str]] = (),
        enable_health: bool = False,
        ssl: server_configs_pb2.SSLConfig | None = None,
        max_request_bytes: int = 0,
        address: str = "0.0.0.0",
    ):
        self.manager = manager
        self._credentials = None
        if ssl is not None:
            self._credentials = grpc.ssl_server_credentials(
                [(ssl.server_key.encode(), ssl.server_cert.encode())],
                root_certificates=ssl.custom_ca.encode() or None,
                require_client_auth=ssl.client_verify,
            )
        self._host = grpc_host(address)
        self._server = grpc.aio.server(
            options=server_options(channel_arguments, max_request_bytes=max_request_bytes)
        )
        add_to_server(self._server, prediction, ModelService(manager))
        self.health: HealthServicer | None = None
        if enable_health:
            self.health = HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        # Other listeners (the REST API) that must stop accepting at the same moment.
        self.also_stop: list[Callable[[], Awaitable[None]]] = []

    async def start(self, port: int, *, socket_path: str = "") -> int:
        """Listen on the address's port (0: no TCP listener) and/or the UNIX socket
        `socket_path`, like TF Serving's --port and --grpc_socket_path."""
        self._loop = asyncio.get_running_loop()
        tcp = f"{self._host}:{port}"
        addresses = ([tcp] if port else []) + ([f"unix:{socket_path}"] if socket_path else [])
        bound = 0
        for address in addresses:
            try:
                if self._credentials is not None:
                    result = self._server.add_secure_port(address, self._credentials)
                else:
                    result = self._server.add_insecure_port(address)
            except RuntimeError as exc:
                raise OSError(f"cannot listen on {address}: {exc}") from exc
            if result == 0:
                raise OSError(f"cannot listen on {address} (is it in use?)")
            if address == tcp:
                bound = result
        await self._server.start()
        await self._set_health()
        tls = " (TLS)" if self._credentials is not None else ""
        if port:
            log.info("Running gRPC ModelServer at %s:%d%s ...", self._host, bound, tls)
        if socket_path:
            log.info("Running gRPC ModelServer at UNIX socket %s%s ...", socket_path, tls)
        return bound

    async def _set_health(self) -> None:
        if self.health is not None and not self._stopping:
            await self.health.set("", SERVING if self.manager.is_ready() else NOT_SERVING)

    def refresh_health(self) -> None:
        """Called from the manager's thread whenever what is served changes."""
        if self.health is not None and self._loop is not None and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._set_health(), self._loop)

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Refuse new calls at once; give in-flight ones `grace` seconds to finish."""
        if self._stopping:
            return
        self._stopping = True
        log.info("Shutting down: draining in-flight requests (grace %.0f s)", grace)
        if self.health is not None:
            # Say NOT_SERVING and keep serving a moment: health-checking clients (this
            # project's, round-robin over several addresses) stop sending calls here
            # before the listener closes, instead of having calls cancelled under them.
            await self.health.enter_graceful_shutdown()
            await asyncio.sleep(DRAIN_SECONDS)
        self.manager.stop()
        await asyncio.gather(self._server.stop(grace), *(stop() for stop in self.also_stop))
        log.info("Server stopped")
        self._stopped.set()

    async def wait(self) -> None:
        """Until stop() has drained everything. (wait_for_termination() can return while
        the drain is still running; returning then would let asyncio.run cancel the
        in-flight calls, which clients would see as CANCELLED.)"""
        await self._stopped.wait()

    def stop_on_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: asyncio.ensure_future(self.stop()))


def grpc_host(address: str) -> str:
    """An address as gRPC writes it before ":port": an IPv6 one in brackets."""
    address = address.strip()
    if ":" in address and not address.startswith("["):
        return f"[{address}]"
    return address
