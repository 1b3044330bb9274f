"""TF Serving's REST API (`--rest_api_port`) on aiohttp, in the gRPC server's event loop.

Paths, JSON formats, error messages and HTTP codes follow tensorflow_model_server's
REST handler, so a client written against TF Serving's REST API works unchanged. Every
request resolves through the same Manager as gRPC and runs through the same
`run_model` callable, so REST and gRPC requests batch together.

JSON cannot declare a size the way a TensorProto can: every value is in the body, so
the body limit (aiohttp's `client_max_size`) bounds memory; arrays are still checked
against `tensors.MAX_TENSOR_BYTES` before numpy allocates them.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import multiprocessing
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from urllib.parse import unquote

import grpc
import numpy as np
from aiohttp import web
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    input_pb2,
    model_pb2,
    regression_pb2,
)

from serving import examples, inference, services, tensors
from serving.errors import bounded
from serving.jsontensors import JsonType, decode_predict, excerpt, parse_json
from serving.manager import Manager
from serving.predict import output_aliases
from serving.servable import DEFAULT_SIGNATURE, Servable, ServingError, Signature, invalid

log = logging.getLogger("serving")

RunModel = Callable[[Servable, Signature, Mapping[str, np.ndarray]], Awaitable[dict]]
# (model name, api, status code, seconds) after every /v1 request: the metrics hook.
# `api` is TF Serving's REST label: "predict", "classify", "regress"; "" for GETs.
RequestObserver = Callable[[str, str, grpc.StatusCode, float], None]

# TF Serving has no body limit; this one (--max_request_bytes) keeps a single request's
# parsed JSON (about 5-30x the body in Python objects) well inside memory. 64 MiB is
# ~10,000 MNIST images.
DEFAULT_MAX_BODY_BYTES = 64 << 20
# Bodies at least this big are parsed in a worker process (see jsontensors: a thread
# would hold the GIL, and so the event loop, for all of json.loads); smaller ones cost
# the event loop less than a round trip to the worker. Outputs with this many values
# are formatted in a thread.
_OFFLOAD_BYTES = 64 << 10
_OFFLOAD_VALUES = 32 << 10
# Worker processes for JSON bodies: each holds one parsed body at a time (up to ~10x
# --max_request_bytes), so there are few; large requests beyond them queue.
_PARSER_PROCESSES = min(2, os.cpu_count() or 1)
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

# TF Serving's path patterns (case-insensitive, matched on the undecoded path).
_API = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
_POST = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_GET = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?",
    re.IGNORECASE,
)
_INT64_MAX = 2**63 - 1


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

    Routes added to `app.router` before `start()` (the Prometheus path) are served
    first, as TF Serving serves its exact-path handlers before the REST dispatcher.
    """
    api = _RestApi(manager, run_model, timeout_s, body_timeout_s, enable_cors, on_request)

    @web.middleware
    async def dispatch(request: web.Request, handler):
        if request.match_info.http_exception is None:  # a route the server added
            return await handler(request)
        if _API.fullmatch(request.rel_url.raw_path):
            return await api.handle(request)
        return await handler(request)  # aiohttp's own 404

    async def close_parsers(app: web.Application) -> None:
        api.parsers.close()

    app = web.Application(middlewares=[dispatch], client_max_size=max_body_bytes)
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


class _Parsers:
    """Worker processes for large JSON bodies, started on first use ("spawn": fresh
    interpreters that import numpy and serving.jsontensors only, never TensorFlow)."""

    def __init__(self, processes: int = _PARSER_PROCESSES):
        self._processes = processes
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, function: Callable, *args):
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


class _RestApi:
    def __init__(
        self,
        manager: Manager,
        run_model: RunModel,
        timeout_s: float,
        body_timeout_s: float,
        enable_cors: bool,
        on_request: RequestObserver | None,
    ):
        self.manager = manager
        self.run_model = run_model
        self.timeout_s = timeout_s
        self.body_timeout_s = body_timeout_s
        self.enable_cors = enable_cors
        self.on_request = on_request
        self.parsers = _Parsers()

    async def handle(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        path = request.rel_url.raw_path
        model_name, api, http_status = "", "", None
        try:
            if request.method == "OPTIONS":
                body = self._preflight(request)
            else:
                route = _route(request.method, path)
                # TF Serving's metric labels: the verb for POST, "" for status/metadata.
                model_name = route.name
                api = route.api if request.method == "POST" else ""
                body = await self._within_timeout(self._serve(request, route))
            status = grpc.StatusCode.OK
        except ServingError as exc:
            status, body = exc.code, _error(exc.message)
            if isinstance(exc, _HttpError):
                http_status = exc.http_status
        except Exception as exc:  # never a crash: an INTERNAL error with the reason
            log.exception("REST %s %s failed", request.method, path)
            status, body = grpc.StatusCode.INTERNAL, _error(f"{type(exc).__name__}: {exc}")
        self._observe(model_name, api, status, started)
        http_status = http_status or HTTP_STATUS.get(status, 500)
        response = self._respond(http_status, body, json_body=bool(body))
        if status == grpc.StatusCode.DEADLINE_EXCEEDED and not request.content.is_eof():
            # Timed out with the body still arriving: answer, then hang up at once.
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            if request.transport is not None:  # rather than read on (aiohttp's lingering)
                request.transport.close()
        return response

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

    def _observe(self, model: str, api: str, status: grpc.StatusCode, started: float) -> None:
        if self.on_request is not None:
            try:
                self.on_request(model, api, status, time.monotonic() - started)
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

    async def _serve(self, request: web.Request, route: _Route) -> str:
        if route.api == "predict":
            return await self._predict(request, route)
        if route.api in ("classify", "regress"):
            return await self._classify_or_regress(request, route)
        if not route.name:
            raise invalid("Missing model name in request.")
        if route.api == "metadata":
            return _metadata(self.manager.resolve(route.spec()))
        response = services.model_status(self.manager, route.spec())
        return json_format.MessageToJson(
            response, always_print_fields_with_no_presence=True, indent=1
        )

    async def _predict(self, request: web.Request, route: _Route) -> str:
        body = await self._read_body(request)
        servable, signatures = self._json_signatures(route)
        args = (body, signatures, DEFAULT_SIGNATURE)
        if len(body) >= _OFFLOAD_BYTES:
            name, arrays, columnar = await self.parsers.run(decode_predict, *args)
        else:
            name, arrays, columnar = decode_predict(*args)
        signature = servable.signatures[name]
        outputs = await self._run(servable, signature, arrays)
        aliases = output_aliases(signature, ())
        if sum(outputs[a].size for a in aliases) >= _OFFLOAD_VALUES:
            return await asyncio.to_thread(encode_outputs, outputs, aliases, columnar)
        return encode_outputs(outputs, aliases, columnar)

    def _json_signatures(
        self, route: _Route
    ) -> tuple[Servable | None, dict[str, dict[str, JsonType]] | ServingError]:
        """The model's signatures as the JSON decoder needs them, or the error resolving
        the model, which the decoder raises once the body has parsed (TF Serving's order)."""
        try:
            servable = self.manager.resolve(route.spec())
        except ServingError as exc:
            return None, exc
        return servable, {
            name: {alias: json_type(info[0]) for alias, info in signature.inputs.items()}
            for name, signature in servable.signatures.items()
        }

    async def _classify_or_regress(self, request: web.Request, route: _Route) -> str:
        """TF Serving's order: JSON, then the model, then the gRPC API's own checks.
        (Large bodies are parsed in a thread: tf.Example protos need TensorFlow.)"""
        body = await self._read_body(request)
        if len(body) >= _OFFLOAD_BYTES:
            message = await asyncio.to_thread(examples_request, route, body)
        else:
            message = examples_request(route, body)
        servable = self.manager.resolve(message.model_spec)
        if route.api == "classify":
            plan = inference.plan_classify(servable, message)
        else:
            plan = inference.plan_regress(servable, message)
        response = await inference.run_async(plan, self._run)
        if route.api == "classify":
            return classification_json(response.result)
        return regression_json(response.result)

    async def _run(
        self, servable: Servable, signature: Signature, arrays: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        # Shielded: when the request times out, a run that is already queued or running
        # finishes in the background (TensorFlow cannot be interrupted); its result is
        # dropped.
        task = asyncio.ensure_future(self.run_model(servable, signature, arrays))
        task.add_done_callback(_discard)
        return await asyncio.shield(task)


def _discard(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


# ---- paths ------------------------------------------------------------------------------


class _Route:
    __slots__ = ("api", "label", "name", "version")

    def __init__(self, name: str, version: int | None, label: str | None, api: str):
        self.name, self.version, self.label, self.api = name, version, label, api

    def spec(self) -> model_pb2.ModelSpec:
        spec = model_pb2.ModelSpec(name=self.name)
        if self.version is not None:
            spec.version.value = self.version
        elif self.label is not None:
            spec.version_label = self.label
        return spec


def _route(method: str, path: str) -> _Route:
    """Like TF Serving: POST .../{name}[...]:verb and GET .../{name}[...][/metadata];
    anything else under /v1/ is a malformed request (400), any method included."""
    pattern = {"POST": _POST, "GET": _GET}.get(method)
    match = pattern.fullmatch(path) if pattern else None
    if match is None:
        raise invalid(f"Malformed request: {method} {path}")
    name, version_text, label, verb = match.groups()
    version = None
    if version_text:
        version = int(version_text)
        if version > _INT64_MAX:
            raise invalid(f"Failed to convert version: {version_text} to numeric.")
    if method == "POST":
        if verb not in ("predict", "classify", "regress"):  # e.g. ":PREDICT"
            raise invalid(f"Malformed request: {method} {path}")
        api = verb
    else:
        api = "metadata" if verb == "metadata" else "status"
    return _Route(unquote(name or ""), version, unquote(label) if label is not None else None, api)


# ---- status and metadata --------------------------------------------------------------


def _metadata(servable: Servable) -> str:
    """GetModelMetadataResponse as TF Serving prints it: model_spec, then the
    SignatureDefMap under metadata.signature_def, proto field names kept."""
    spec = model_pb2.ModelSpec(name=servable.name)
    spec.version.value = servable.version
    signatures = servable.signature_def_map()
    options = {"preserving_proto_field_name": True, "always_print_fields_with_no_presence": True}
    document = {
        "model_spec": json_format.MessageToDict(spec, **options),
        "metadata": {"signature_def": json_format.MessageToDict(signatures, **options)},
    }
    return json.dumps(document, indent=1)


def json_type(dtype: int) -> JsonType:
    """A signature input's dtype as the JSON decoder takes it."""
    try:
        numpy_dtype = tensors.numpy_dtype(dtype)
    except tensors.TensorError:
        numpy_dtype = None
    return JsonType(tensors.short_dtype(dtype), numpy_dtype, tensors.MAX_TENSOR_BYTES)


def _error(message: str) -> str:
    return json.dumps({"error": bounded(message)}, ensure_ascii=False)


# ---- tensors -> JSON --------------------------------------------------------------------


def encode_outputs(outputs: Mapping[str, np.ndarray], aliases: list[str], columnar: bool) -> str:
    """TF Serving's response: {"predictions": ...} per row, or {"outputs": ...} whole;
    a single output is written without its name, several as objects keyed by name."""
    tokens = {alias: _tokens(alias, np.asarray(outputs[alias])) for alias in aliases}
    single = len(aliases) == 1
    if columnar:
        if single:
            return '{"outputs": ' + _nest(tokens[aliases[0]]) + "}"
        fields = ", ".join(f"{json.dumps(a)}: {_nest(tokens[a])}" for a in aliases)
        return '{"outputs": {' + fields + "}}"
    batch = None
    for alias in aliases:
        if tokens[alias].ndim == 0:
            raise invalid(f"Tensor name: {alias} has no shape information ")
        rows = tokens[alias].shape[0]
        if batch is not None and rows != batch:
            raise invalid(
                f"Tensor name: {alias} has inconsistent batch size: {rows} expecting: {batch}"
            )
        batch = rows
    if single:
        items = [_nest(row) for row in tokens[aliases[0]]]
    else:
        keys = {alias: json.dumps(alias) for alias in aliases}
        items = [
            "{" + ", ".join(f"{keys[a]}: {_nest(tokens[a][i])}" for a in aliases) + "}"
            for i in range(batch or 0)
        ]
    return '{"predictions": [' + ", ".join(items) + "]}"


def _tokens(alias: str, array: np.ndarray) -> np.ndarray:
    """Each value's JSON text, in an object array of the tensor's shape."""
    flat = array.ravel()
    kind = array.dtype.kind
    if kind == "f" and array.dtype in (np.float32, np.float64):
        texts = _float_texts(flat)
    elif kind in "iu":
        texts = [str(v) for v in flat.tolist()]
    elif kind == "b":
        texts = ["true" if v else "false" for v in flat.tolist()]
    elif kind in "OS":
        as_bytes = alias.endswith("_bytes")  # TF Serving's marker for binary outputs
        texts = [_string_text(v, as_bytes) for v in flat.tolist()]
    else:
        raise invalid(f"Failed to write JSON value for tensor type: {array.dtype.name}")
    tokens = np.empty(len(texts), dtype=object)
    tokens[:] = texts
    return tokens.reshape(array.shape)


def _float_texts(flat: np.ndarray) -> list[str]:
    """TF Serving's float text: 6 significant digits when that reads back as the same
    value, else 9 (float32) or 17 (float64); '.0' on whole numbers; NaN, Infinity."""
    values = flat.tolist()
    texts = [f"{v:.6g}" for v in values]
    finite = np.isfinite(flat)
    with np.errstate(all="ignore"):
        back = np.array(texts).astype(flat.dtype)
    full = ".9g" if flat.dtype == np.float32 else ".17g"
    for i in np.flatnonzero(finite & (back != flat)).tolist():
        texts[i] = format(values[i], full)
    for i, text in enumerate(texts):
        if not finite[i]:
            value = values[i]
            texts[i] = "NaN" if value != value else ("-Infinity" if value < 0 else "Infinity")
        elif "." not in text and "e" not in text:
            texts[i] = text + ".0"
    return texts


def _string_text(value, as_bytes: bool) -> str:
    raw = value if isinstance(value, bytes) else str(value).encode()
    if not as_bytes:
        try:
            return json.dumps(raw.decode("utf-8"), ensure_ascii=False)
        except UnicodeDecodeError:
            pass  # not text: sent as base64 rather than as invalid JSON
    return '{"b64": "' + base64.b64encode(raw).decode("ascii") + '"}'


def _nest(tokens: np.ndarray | str) -> str:
    if isinstance(tokens, str):  # one element of a 1-D token array
        return tokens
    if tokens.ndim == 0:
        return tokens.item()
    if tokens.ndim == 1:
        return "[" + ", ".join(tokens.tolist()) + "]"
    return "[" + ", ".join(_nest(t) for t in tokens) + "]"


# ---- classify and regress -------------------------------------------------------------


def examples_request(
    route: _Route, body: bytes
) -> classification_pb2.ClassificationRequest | regression_pb2.RegressionRequest:
    """TF Serving's REST classify/regress body as the gRPC request:
    {"signature_name": ..., "context": {...}, "examples": [{...}, ...]}."""
    doc = parse_json(body)
    if route.api == "classify":
        request = classification_pb2.ClassificationRequest(model_spec=route.spec())
    else:
        request = regression_pb2.RegressionRequest(model_spec=route.spec())
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(
            f"JSON Value: {excerpt(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    request.model_spec.signature_name = name
    listed: input_pb2.ExampleList | input_pb2.ExampleListWithContext
    if "context" in doc:
        listed = request.input.example_list_with_context
        listed.context.CopyFrom(examples.example_from_json(doc["context"]))
    else:
        listed = request.input.example_list
    if "examples" not in doc:
        # TF Serving says "classify" for :regress too.
        raise invalid(
            f"JSON Value: {excerpt(doc)} When method is classify, key 'examples' is expected "
            "and was not found"
        )
    rows = doc["examples"]
    if not isinstance(rows, list):
        raise invalid(f"JSON Value: {excerpt(doc)} Expecting 'examples' value to be an list/array")
    if not rows:
        raise invalid(f"JSON Value: {excerpt(doc)} 'examples' value is an empty array")
    listed.examples.extend(examples.example_from_json(row) for row in rows)
    return request


def classification_json(result: classification_pb2.ClassificationResult) -> str:
    """{"results": [[[label, score], ...], ...]}: one list of classes per example."""
    if not result.classifications:
        raise invalid("Cannot convert empty ClassificationResults to JSON")
    rows = []
    for classifications in result.classifications:
        classes = classifications.classes
        scores = _float_texts(np.array([c.score for c in classes], dtype=np.float32))
        pairs = (
            f"[{json.dumps(c.label, ensure_ascii=False)}, {score}]"
            for c, score in zip(classes, scores, strict=True)
        )
        rows.append("[" + ", ".join(pairs) + "]")
    return '{"results": [' + ", ".join(rows) + "]}"


def regression_json(result: regression_pb2.RegressionResult) -> str:
    """{"results": [value, ...]}: one number per example."""
    if not result.regressions:
        raise invalid("Cannot convert empty RegressionResults to JSON")
    values = np.array([r.value for r in result.regressions], dtype=np.float32)
    return '{"results": [' + ", ".join(_float_texts(values)) + "]}"
