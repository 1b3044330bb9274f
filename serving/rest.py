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
import binascii
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import unquote

import grpc
import numpy as np
from aiohttp import web
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_status_pb2,
    input_pb2,
    model_pb2,
    regression_pb2,
)

from serving import examples, inference, tensors
from serving.manager import Manager
from serving.predict import output_aliases
from serving.servable import DEFAULT_SIGNATURE, Servable, ServingError, Signature, invalid
from serving.services import ModelService

log = logging.getLogger("serving")

RunModel = Callable[[Servable, Signature, Mapping[str, np.ndarray]], Awaitable[dict]]
# (model name, api, status code, seconds) after every /v1 request: the metrics hook.
# `api` is TF Serving's REST label: "predict", "classify", "regress"; "" for GETs.
RequestObserver = Callable[[str, str, grpc.StatusCode, float], None]

# TF Serving has no body limit; this one keeps a single request's parsed JSON (about
# 5-30x the body in Python objects) well inside memory. 64 MiB is ~10,000 MNIST images.
DEFAULT_MAX_BODY_BYTES = 64 << 20
# Bodies (and outputs) at least this big are parsed (formatted) in a worker thread, so
# one large request does not stall every other gRPC and REST call on the event loop.
_OFFLOAD_BYTES = 256 << 10
_OFFLOAD_VALUES = 32 << 10
MAX_RANK = 64  # numpy's limit

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
    enable_cors: bool = False,
    on_request: RequestObserver | None = None,
) -> web.Application:
    """The REST API as an aiohttp app. `timeout_s <= 0` means no timeout.

    Routes added to `app.router` before `start()` (the Prometheus path) are served
    first, as TF Serving serves its exact-path handlers before the REST dispatcher.
    """
    api = _RestApi(manager, run_model, timeout_s, enable_cors, on_request)

    @web.middleware
    async def dispatch(request: web.Request, handler):
        if request.match_info.http_exception is None:  # a route the server added
            return await handler(request)
        if _API.fullmatch(request.rel_url.raw_path):
            return await api.handle(request)
        return await handler(request)  # aiohttp's own 404

    return web.Application(middlewares=[dispatch], client_max_size=max_body_bytes)


async def start(app: web.Application, port: int, *, shutdown_timeout: float) -> web.AppRunner:
    """Listen on 0.0.0.0:port; `stop()` gives in-flight requests `shutdown_timeout` s
    (pass the gRPC server's grace, so both APIs drain alike)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, "0.0.0.0", port).start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(f"cannot listen on 0.0.0.0:{port} for the REST API: {exc}") from exc
    log.info("Exporting HTTP/REST API at:localhost:%d ...", bound_port(runner))
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port actually listened on (useful with port 0)."""
    return runner.addresses[0][1]


async def stop(runner: web.AppRunner) -> None:
    """Stop accepting, let in-flight requests finish (up to the shutdown timeout)."""
    await runner.cleanup()
    log.info("HTTP/REST API stopped")


class _AbortAsError:
    """A gRPC context stand-in: the gRPC handlers' abort() becomes the ServingError it
    reports, so REST answers with exactly what gRPC would."""

    async def abort(self, code: grpc.StatusCode, details: str):
        raise ServingError(code, details)


class _RestApi:
    def __init__(
        self,
        manager: Manager,
        run_model: RunModel,
        timeout_s: float,
        enable_cors: bool,
        on_request: RequestObserver | None,
    ):
        self.manager = manager
        self.run_model = run_model
        self.timeout_s = timeout_s
        self.enable_cors = enable_cors
        self.on_request = on_request
        self.model_service = ModelService(manager)

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
                body = await self._serve(request, route)
            status = grpc.StatusCode.OK
        except ServingError as exc:
            status, body = exc.code, _error(exc.message)
        except web.HTTPRequestEntityTooLarge:
            status, http_status = grpc.StatusCode.RESOURCE_EXHAUSTED, 413
            body = _error(
                f"Request body is larger than the server's limit of {request.client_max_size} bytes"
            )
        except Exception as exc:  # never a crash: an INTERNAL error with the reason
            log.exception("REST %s %s failed", request.method, path)
            status, body = grpc.StatusCode.INTERNAL, _error(f"{type(exc).__name__}: {exc}")
        self._observe(model_name, api, status, started)
        http_status = http_status or HTTP_STATUS.get(status, 500)
        return self._respond(http_status, body, json_body=bool(body))

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

    async def _serve(self, request: web.Request, route: _Route) -> str:
        if route.api == "predict":
            return await self._predict(request, route)
        if route.api in ("classify", "regress"):
            return await self._classify_or_regress(request, route)
        if not route.name:
            raise invalid("Missing model name in request.")
        if route.api == "metadata":
            return _metadata(self.manager.resolve(route.spec()))
        response = await self.model_service.GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec=route.spec()), _AbortAsError()
        )
        return json_format.MessageToJson(
            response, always_print_fields_with_no_presence=True, indent=1
        )

    async def _predict(self, request: web.Request, route: _Route) -> str:
        body = await request.read()
        if len(body) >= _OFFLOAD_BYTES:
            servable, signature, arrays, columnar = await asyncio.to_thread(
                self._decode, route, body
            )
        else:
            servable, signature, arrays, columnar = self._decode(route, body)
        outputs = await self._run(servable, signature, arrays)
        aliases = output_aliases(signature, ())
        if sum(outputs[a].size for a in aliases) >= _OFFLOAD_VALUES:
            return await asyncio.to_thread(encode_outputs, outputs, aliases, columnar)
        return encode_outputs(outputs, aliases, columnar)

    def _decode(
        self, route: _Route, body: bytes
    ) -> tuple[Servable, Signature, dict[str, np.ndarray], bool]:
        """TF Serving's order: JSON, signature_name, model, signature, then the tensors."""
        doc = parse_json(body)
        name = doc.get("signature_name", "")
        if not isinstance(name, str):
            raise invalid(
                f"JSON Value: {_debug(doc)} not formatted correctly. "
                "'signature_name' key must be a string value."
            )
        servable = self.manager.resolve(route.spec())
        signature = servable.signatures.get(name or DEFAULT_SIGNATURE)
        if signature is None:
            raise invalid(
                f'Serving signature name: "{name or DEFAULT_SIGNATURE}" not found in signature def'
            )
        arrays, columnar = decode_inputs(doc, signature)
        return servable, signature, arrays, columnar

    async def _classify_or_regress(self, request: web.Request, route: _Route) -> str:
        """TF Serving's order: JSON, then the model, then the gRPC API's own checks."""
        body = await request.read()
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
        if self.timeout_s <= 0:
            return await self.run_model(servable, signature, arrays)
        # Shielded: a run that is already queued or running finishes in the background
        # (TensorFlow cannot be interrupted); its result is dropped.
        task = asyncio.ensure_future(self.run_model(servable, signature, arrays))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.timeout_s)
        except TimeoutError:
            task.add_done_callback(_discard)
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, TIMEOUT_MESSAGE) from None


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


def _error(message: str) -> str:
    return json.dumps({"error": message}, ensure_ascii=False)


# ---- JSON -> tensors --------------------------------------------------------------------


def parse_json(body: bytes) -> dict:
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise invalid(f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from None
    except ValueError as exc:  # not UTF-8/16/32, an integer of over 4300 digits
        raise invalid(f"JSON Parse error: {exc}") from None
    except RecursionError:
        raise invalid("JSON Parse error: the document is nested too deeply") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {_debug(doc)} Is not object")
    return doc


def decode_inputs(doc: dict, signature: Signature) -> tuple[dict[str, np.ndarray], bool]:
    """The request's tensors in the signature's dtypes, and whether it was columnar."""
    dtypes = {alias: info[0] for alias, info in sorted(signature.inputs.items())}
    if not dtypes:
        raise invalid(f"Failed to get input map for signature: {signature.name}")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid(
            f"JSON Value: {_debug(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid(f"JSON Value: {_debug(doc)} Expecting 'instances' to be an list/array")
        if not instances:
            raise invalid(f"JSON Value: {_debug(doc)} No values in 'instances' array")
        return _from_instances(instances, dtypes), False
    if has_inputs:
        return _from_inputs(doc["inputs"], dtypes), True
    raise invalid("Missing 'inputs' or 'instances' key")


def _from_instances(instances: list, dtypes: dict[str, int]) -> dict[str, np.ndarray]:
    named = _is_named(instances[0])
    if not named and len(dtypes) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    rows: dict[str, list[np.ndarray]] = {alias: [] for alias in dtypes}
    for index, item in enumerate(instances):
        if named:
            if not _is_named(item):
                raise invalid(f"Expecting object but got list at item {index} of input list")
            for key, value in item.items():
                if key not in dtypes:
                    raise invalid(
                        f"Failed to process element: {index} key: {key} of 'instances' list. "
                        f"Error: INVALID_ARGUMENT: JSON object: does not have named input: {key}"
                    )
                _add_row(rows[key], value, dtypes[key], f"{index} key: {key}")
            if set(item) != set(dtypes):
                raise invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{_debug(item)} keys must be equal to: {','.join(dtypes)}"
                )
        else:
            if _is_named(item):
                raise invalid(f"Expecting value/list but got object at item {index} of input list")
            alias = next(iter(dtypes))
            _add_row(rows[alias], item, dtypes[alias], str(index))
    arrays = {}
    for alias, items in rows.items():
        _check_size((len(items), *items[0].shape), dtypes[alias])
        arrays[alias] = np.stack(items)
    return arrays


def _add_row(rows: list[np.ndarray], value, dtype: int, where: str) -> None:
    try:
        array = to_array(value, dtype)
        if rows and array.shape != rows[0].shape:
            first = rows[0]
            if array.size != first.size:
                raise invalid(f"Expecting tensor size: {first.size} but got: {array.size}")
            raise invalid(
                f"Expecting shape {_shape_text(first.shape)} but got: {_shape_text(array.shape)}"
            )
    except ServingError as exc:
        raise invalid(
            f"Failed to process element: {where} of 'instances' list. "
            f"Error: {exc.code.name}: {exc.message}"
        ) from None
    rows.append(array)


def _from_inputs(inputs, dtypes: dict[str, int]) -> dict[str, np.ndarray]:
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(dtypes) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        alias, dtype = next(iter(dtypes.items()))
        return {alias: to_array(inputs, dtype)}
    arrays = {}
    for alias, dtype in dtypes.items():  # like TF Serving, other keys are not read
        if alias not in inputs:
            raise invalid(f"Missing named input: {alias} in 'inputs' object.")
        arrays[alias] = to_array(inputs[alias], dtype)
    return arrays


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_named(value) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


# dtype -> the JSON (Python) types TF Serving accepts for it.
_NUMBER = frozenset((int, float))
_INTEGER = frozenset((int,))
_ACCEPTED: dict[int, frozenset] = {
    types_pb2.DT_FLOAT: _NUMBER,
    types_pb2.DT_DOUBLE: _NUMBER,
    types_pb2.DT_INT8: _INTEGER,
    types_pb2.DT_INT16: _INTEGER,
    types_pb2.DT_INT32: _INTEGER,
    types_pb2.DT_INT64: _INTEGER,
    types_pb2.DT_UINT8: _INTEGER,
    types_pb2.DT_UINT32: _INTEGER,
    types_pb2.DT_UINT64: _INTEGER,
    types_pb2.DT_BOOL: frozenset((bool,)),
    types_pb2.DT_STRING: frozenset((str,)),
}


def to_array(value, dtype: int) -> np.ndarray:
    """One JSON value as a tensor of `dtype`: TF Serving's rules and messages. The shape
    comes from the first element at each level; every list must then match it."""
    accepted = _ACCEPTED.get(dtype)
    if accepted is None:
        raise ServingError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"Conversion of JSON Value: {_debug(value)} to type: {tensors.short_dtype(dtype)}",
        )
    shape = _dense_shape(value)
    _check_size(shape, dtype)
    if dtype != types_pb2.DT_STRING:
        leaves = _dense_leaves(value, shape, accepted)
        if leaves is not None:
            return _convert(leaves, dtype)
    # Strings, and anything the quick check refused: walk the value for the exact error.
    strings: list[bytes] = []
    _walk(value, 0, shape, dtype, accepted, strings)
    if dtype == types_pb2.DT_STRING:
        array = np.empty(len(strings), dtype=object)
        array[:] = strings
        return array.reshape(shape)
    return _convert(value, dtype)


def _dense_leaves(value, shape: tuple[int, ...], accepted: frozenset) -> np.ndarray | None:
    """The values as an object array (pointers only: a long string cannot blow it up),
    or None unless it is exactly `shape` with only accepted leaf types (bool is not int)."""
    try:
        leaves = np.array(value, dtype=object)
    except ValueError:
        return None
    if leaves.shape != shape or not set(map(type, leaves.ravel().tolist())) <= accepted:
        return None
    return leaves


def _convert(values, dtype: int) -> np.ndarray:
    target = tensors.numpy_dtype(dtype)
    try:
        with np.errstate(over="ignore"):  # like TF Serving, 1e39 into float32 is inf
            if isinstance(values, np.ndarray):
                return values.astype(target)
            return np.array(values, dtype=target)
    except OverflowError as exc:  # out of range for an integer dtype, or beyond double
        raise invalid(f"JSON Value out of range for {tensors.short_dtype(dtype)}: {exc}") from None


def _dense_shape(value) -> tuple[int, ...]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if len(shape) > MAX_RANK:
            raise invalid(f"JSON Value: {_debug(value)} has more than {MAX_RANK} dimensions")
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _check_size(shape: tuple[int, ...], dtype: int) -> None:
    try:
        tensors.check_size(shape, dtype)
    except tensors.TensorError as exc:
        raise invalid(str(exc)) from exc


def _walk(value, level: int, shape, dtype: int, accepted: frozenset, strings: list) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid(
                f"JSON Value: {_debug(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {rank}"
            )
        if dtype == types_pb2.DT_STRING:
            strings.append(_string(value))
        elif type(value) not in accepted:
            raise _type_error(value, dtype)
        return
    if level >= rank:
        raise invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for item in value:
        _walk(item, level + 1, shape, dtype, accepted, strings)


def _string(value) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if not isinstance(value, dict):
        raise _type_error(value, types_pb2.DT_STRING)
    if not _is_b64(value):
        raise invalid(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
    text = value["b64"]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Unable to base64 decode") from None


def _type_error(value, dtype: int) -> ServingError:
    return invalid(
        f"JSON Value: {_debug(value)} Type: {_json_type(value)} is not of expected type: "
        f"{tensors.short_dtype(dtype)}"
    )


def _json_type(value) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _debug(value, limit: int = 256) -> str:
    """Compact JSON of `value` for error messages, cut at `limit` characters without
    serializing more than that of a huge document."""
    parts: list[str] = []
    size = 0

    def emit(text: str) -> bool:
        nonlocal size
        parts.append(text)
        size += len(text)
        return size < limit

    def walk(item) -> bool:
        if isinstance(item, list):
            if not emit("["):
                return False
            for index, element in enumerate(item):
                if (index and not emit(",")) or not walk(element):
                    return False
            return emit("]")
        if isinstance(item, dict):
            if not emit("{"):
                return False
            for index, (key, element) in enumerate(item.items()):
                if (index and not emit(",")) or not emit(json.dumps(key) + ":"):
                    return False
                if not walk(element):
                    return False
            return emit("}")
        if isinstance(item, str):
            item = item[:limit]  # a huge string is not copied whole into a message
        return emit(json.dumps(item, ensure_ascii=False))

    walk(value)
    return "".join(parts)[:limit]


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


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
            f"JSON Value: {_debug(doc)} not formatted correctly. "
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
            f"JSON Value: {_debug(doc)} When method is classify, key 'examples' is expected "
            "and was not found"
        )
    rows = doc["examples"]
    if not isinstance(rows, list):
        raise invalid(f"JSON Value: {_debug(doc)} Expecting 'examples' value to be an list/array")
    if not rows:
        raise invalid(f"JSON Value: {_debug(doc)} 'examples' value is an empty array")
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
