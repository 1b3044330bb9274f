"""The REST API's handlers: a parsed route and its body in, TF Serving's JSON out.

They call what the gRPC services call (`Manager.resolve`, `services.model_status`, the
`run_model` callable, `inference`'s plans) directly, not through a gRPC servicer, so the
two APIs share behaviour without REST pretending to be an RPC. Errors are raised as
`ServingError`s with TF Serving's wording; the app maps them to HTTP (`serving.rest.app`).
Checks run in TF Serving's order, which clients can observe: for predict and classify
the body's JSON is checked before the model is looked up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import numpy as np

from serving import inference, services
from serving.errors import ServingError, invalid
from serving.jsonexamples import decode_examples
from serving.jsontensors import JsonType, decode_predict
from serving.manager import Manager
from serving.predict import output_aliases
from serving.rest import decode, encode
from serving.rest.paths import Route
from serving.rest.workers import ParserPool
from serving.servable import DEFAULT_SIGNATURE, Servable, Signature

RunModel = Callable[[Servable, Signature, Mapping[str, np.ndarray]], Awaitable[dict]]

# Bodies at least this big are parsed in a worker process; smaller ones cost the event
# loop less than the round trip. Predict outputs with this many values, and classify or
# regress results for this many examples (~20 us each, written from protos), are
# written in a thread.
OFFLOAD_BYTES = 64 << 10
OFFLOAD_VALUES = 32 << 10
OFFLOAD_RESULTS = 1 << 10
_METHODS = {"classify": inference.CLASSIFY_METHOD, "regress": inference.REGRESS_METHOD}


class Handlers:
    """One per app: the manager, the model runner and the JSON worker processes."""

    def __init__(self, manager: Manager, run_model: RunModel, parsers: ParserPool):
        self.manager = manager
        self.run_model = run_model
        self.parsers = parsers

    async def serve(self, route: Route, body: bytes) -> str:
        """The response body for `route` (`body` is b"" for GETs)."""
        if route.action == "predict":
            return await self.predict(route, body)
        if route.action in ("classify", "regress"):
            return await self.classify_or_regress(route, body)
        if not route.name:
            raise invalid("Missing model name in request.")
        if route.action == "metadata":
            return encode.metadata_json(self.manager.resolve(route.spec()))
        return encode.status_json(services.model_status(self.manager, route.spec()))

    async def predict(self, route: Route, body: bytes) -> str:
        servable, types = self._signature_types(route)
        args = (body, types, DEFAULT_SIGNATURE)
        if len(body) >= OFFLOAD_BYTES:
            name, arrays, columnar = await self.parsers.run(decode_predict, *args)
        else:
            name, arrays, columnar = decode_predict(*args)
        signature = servable.signatures[name]
        outputs = await self._run(servable, signature, arrays)
        aliases = output_aliases(signature, ())
        if sum(outputs[a].size for a in aliases) >= OFFLOAD_VALUES:
            return await asyncio.to_thread(encode.predict_json, outputs, aliases, columnar)
        return encode.predict_json(outputs, aliases, columnar)

    def _signature_types(
        self, route: Route
    ) -> tuple[Servable | None, dict[str, dict[str, JsonType]] | ServingError]:
        """The model's signatures as the JSON decoder takes them, or the error resolving
        the model, which the decoder raises once the body has parsed (TF Serving's order)."""
        try:
            servable = self.manager.resolve(route.spec())
        except ServingError as exc:
            return None, exc
        return servable, decode.signature_types(servable)

    async def classify_or_regress(self, route: Route, body: bytes) -> str:
        """TF Serving's order: JSON, then the model, then the gRPC API's own checks."""
        if len(body) >= OFFLOAD_BYTES:
            name, rows = await self.parsers.run(decode_examples, body)
        else:
            name, rows = decode_examples(body)
        spec = route.spec()
        spec.signature_name = name
        servable = self.manager.resolve(spec)
        plan = inference.plan_rows(servable, _METHODS[route.action], name, rows)
        response = await inference.run_async(plan, self._run)
        write = encode.classification_json if route.action == "classify" else encode.regression_json
        if len(rows) >= OFFLOAD_RESULTS:
            return await asyncio.to_thread(write, response.result)
        return write(response.result)

    async def _run(
        self, servable: Servable, signature: Signature, arrays: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        # Shielded: when the request times out, a run that is already queued or running
        # finishes in the background (TensorFlow cannot be interrupted); its result is
        # dropped.
        task = asyncio.ensure_future(self.run_model(servable, signature, arrays))
        task.add_done_callback(_retrieve)
        return await asyncio.shield(task)


def _retrieve(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved
