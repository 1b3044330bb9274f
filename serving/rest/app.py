"""The REST API's aiohttp app: routing to the handlers, and what every request shares.

Every path under /v1/ goes to one aiohttp route, whose handler runs the envelope all
API requests share: CORS, the path parse (`paths`), the request timeout, reading the
body within its own timeout and size limit, the error -> HTTP mapping, and the metrics
hook. What a request does is the handlers' business (`handlers`).

JSON cannot declare a size the way a TensorProto can: every value is in the body, so
the body limit (aiohttp's `client_max_size`) bounds memory; arrays are still checked
against `tensors.MAX_TENSOR_BYTES` before numpy allocates them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable

import grpc
from aiohttp import web

from serving.errors import ServingError
from serving.manager import Manager
from serving.rest import encode, paths
from serving.rest.handlers import Handlers, RunModel
from serving.rest.workers import ParserPool

log = logging.getLogger("serving")

# (model name, api, status code, seconds) after every /v1 request: the metrics hook.
# `api` is TF Serving's REST label: "predict", "classify", "regress"; "" for GETs.
RequestObserver = Callable[[str, str, grpc.StatusCode, float], None]

# TF Serving has no body limit; this one (--max_request_bytes) keeps a single request's
# parsed JSON (about 5-30x the body in Python objects) well inside memory. 64 MiB is
# ~10,000 MNIST images.
DEFAULT_MAX_BODY_BYTES = 64 << 20
# --rest_api_idle_timeout_in_ms and --rest_api_body_timeout_in_ms's defaults.
DEFAULT_IDLE_TIMEOUT_S = 60.0
DEFAULT_BODY_TIMEOUT_S = 30.0
_NEVER_S = 10.0 * 365 * 24 * 3600

# What TF Serving's REST handler logs and answers with when a run outlives
# --rest_api_timeout_in_ms (TensorFlow's session timeout message, HTTP 504).
TIMEOUT_MESSAGE = "Timed out waiting for notification"

# TF Serving's http_server.cc: gRPC status -> HTTP status.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

# Everything under /v1/ in any case (TF Serving matches case-insensitively; `paths`
# decides, on the undecoded path, what is the API's). aiohttp matches the routes the
# server adds for exact paths (the Prometheus path) before this one: it tries the
# longest path prefix first, as TF Serving serves its exact-path handlers before the REST
# dispatcher.
_API_ROUTE = "/{api_version:(?i:v1)}/{api_path:(?s:.*)}"


def build_app(
    manager: Manager,
    run_model: RunModel,
    *,
    timeout_s: float,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    enable_cors: bool = False,
    on_request: RequestObserver | None = None,
) -> web.Application:
    """The REST API as an aiohttp app. `timeout_s` bounds a whole request (reading the
    body, parsing, running, encoding) and `body_timeout_s` the body's arrival; <= 0 means
    no limit. `max_body_bytes` 0 means no size limit.

    Routes the caller adds to `app.router` (the Prometheus path) are served before the
    API's, as TF Serving serves its exact-path handlers before the REST dispatcher.
    """
    parsers = ParserPool()
    endpoint = _Endpoint(
        Handlers(manager, run_model, parsers), timeout_s, body_timeout_s, enable_cors, on_request
    )

    async def close_parsers(app: web.Application) -> None:
        parsers.close()

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_route("*", _API_ROUTE, endpoint.handle)
    app.on_cleanup.append(close_parsers)
    return app


async def start(
    app: web.Application,
    port: int,
    *,
    shutdown_timeout: float,
    host: str = "0.0.0.0",
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
) -> web.AppRunner:
    """Listen on host:port; `stop()` gives in-flight requests `shutdown_timeout` s
    (pass the gRPC server's grace, so both APIs drain alike).

    A connection without a complete request for `idle_timeout_s` (idle between
    requests, or still sending its request line and headers: slowloris) is closed, so
    idle clients cannot hold every file descriptor; <= 0 means never.
    """
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        # aiohttp's timer runs from the connection's start and again after each
        # response; 0 there would close at once, so "never" is a very long time.
        keepalive_timeout=idle_timeout_s if idle_timeout_s > 0 else _NEVER_S,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(f"cannot listen on {host}:{port} for the REST API: {exc}") from exc
    log.info("Exporting HTTP/REST API at:localhost:%d ...", bound_port(runner))
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port actually listened on (useful with port 0)."""
    return runner.addresses[0][1]


async def stop(runner: web.AppRunner) -> None:
    """Stop accepting, let in-flight requests finish (up to the shutdown timeout)."""
    await runner.cleanup()
    log.info("HTTP/REST API stopped")


class _HttpError(ServingError):
    """A ServingError answered with an HTTP status of its own (413, 408) rather than
    its code's."""

    def __init__(self, code: grpc.StatusCode, message: str, http_status: int):
        super().__init__(code, message)
        self.http_status = http_status


class _Endpoint:
    """The aiohttp handler for every path under /v1/: the envelope around `Handlers`."""

    def __init__(
        self,
        handlers: Handlers,
        timeout_s: float,
        body_timeout_s: float,
        enable_cors: bool,
        on_request: RequestObserver | None,
    ):
        self.handlers = handlers
        self.timeout_s = timeout_s
        self.body_timeout_s = body_timeout_s
        self.enable_cors = enable_cors
        self.on_request = on_request

    async def handle(self, request: web.Request) -> web.Response:
        path = request.rel_url.raw_path
        if not paths.is_api(path):  # e.g. /%761/...: /v1/ only once decoded
            raise web.HTTPNotFound()
        started = time.monotonic()
        model_name, api_label, http_status = "", "", None
        try:
            if request.method == "OPTIONS":
                body = self._preflight(request)
            else:
                route = paths.parse(request.method, path)
                model_name, api_label = route.name, route.api_label
                body = await self._within_timeout(self._serve(request, route))
            code = grpc.StatusCode.OK
        except ServingError as exc:
            code, body = exc.code, encode.error_json(exc.message)
            if isinstance(exc, _HttpError):
                http_status = exc.http_status
        except Exception as exc:  # never a crash: an INTERNAL error with the reason
            log.exception("REST %s %s failed", request.method, path)
            code, body = grpc.StatusCode.INTERNAL, encode.error_json(f"{type(exc).__name__}: {exc}")
        self._observe(model_name, api_label, code, started)
        http_status = http_status or HTTP_STATUS.get(code, 500)
        response = self._respond(http_status, body, json_body=bool(body))
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and not request.content.is_eof():
            # Timed out with the body still arriving: answer, then hang up at once.
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            if request.transport is not None:  # rather than read on (aiohttp's lingering)
                request.transport.close()
        return response

    async def _serve(self, request: web.Request, route: paths.Route) -> str:
        body = await self._read_body(request) if route.action in paths.VERBS else b""
        return await self.handlers.serve(route, body)

    def _respond(self, http_status: int, body: str, *, json_body: bool = True) -> web.Response:
        response = web.Response(
            status=http_status,
            body=body.encode(),
            content_type="application/json" if json_body else None,
        )
        if self.enable_cors:
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Allow-Methods"] = "POST, GET"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        return response

    def _observe(self, model: str, api: str, code: grpc.StatusCode, started: float) -> None:
        if self.on_request is not None:
            try:
                self.on_request(model, api, code, time.monotonic() - started)
            except Exception:
                log.exception("REST request observer failed")

    def _preflight(self, request: web.Request) -> str:
        if not re.search(r"https?://", request.headers.get("Origin", "")):
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION, "Origin header is missing in CORS preflight"
            )
        return ""

    async def _within_timeout(self, work: Awaitable[str]) -> str:
        """The whole request (reading its body, parsing, running, encoding) within
        --rest_api_timeout_in_ms: TF Serving's 504 when it runs out."""
        if self.timeout_s <= 0:
            return await work
        try:
            async with asyncio.timeout(self.timeout_s):
                return await work
        except TimeoutError:
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, TIMEOUT_MESSAGE) from None

    async def _read_body(self, request: web.Request) -> bytes:
        """The body, if it arrives within --rest_api_body_timeout_in_ms (a slow sender
        holds a connection and a buffer) and fits in --max_request_bytes."""
        limit_s = self.body_timeout_s if self.body_timeout_s > 0 else None
        try:
            async with asyncio.timeout(limit_s):
                return await request.read()
        except TimeoutError:
            raise _HttpError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"The request body did not arrive within {self.body_timeout_s * 1000:.0f} ms "
                "(--rest_api_body_timeout_in_ms)",
                408,
            ) from None
        except web.HTTPRequestEntityTooLarge:
            raise _HttpError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Request body is larger than the server's limit of {request.client_max_size} "
                "bytes (--max_request_bytes raises it)",
                413,
            ) from None
