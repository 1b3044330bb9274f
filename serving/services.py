"""The gRPC services, by TF Serving's names: PredictionService and ModelService.

They run on grpc.aio: one event loop does all RPC I/O, and the model runs in the batch
threads or a bounded executor, so hundreds of concurrent calls cost no thread each and
do not fight TensorFlow's threads for the GIL. Every handler turns a ServingError into
its status and message; anything unexpected becomes INTERNAL with the exception's text
and a logged traceback. No request can take the server down.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Mapping
from concurrent.futures import Executor

import grpc
import numpy as np
from google.protobuf import any_pb2, message_factory
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
    status_pb2,
)

from serving import inference, metrics
from serving import predict as predict_lib
from serving.batching import Batcher
from serving.errors import bounded
from serving.manager import Manager
from serving.servable import Servable, ServingError, Signature, invalid

log = logging.getLogger("serving")


class Undecodable:
    """What a request's bytes became when they are not the message they should be."""

    def __init__(self, type_name: str, error: Exception):
        self.message = f"Failed to parse {type_name}: {error}"


def _tolerant(message_class):
    """A deserializer that hands bad bytes to the handler (INVALID_ARGUMENT there)
    instead of letting gRPC answer UNKNOWN with an internal exception's text."""

    def deserialize(data: bytes):
        try:
            return message_class.FromString(data)
        except DecodeError as exc:
            return Undecodable(message_class.DESCRIPTOR.name, exc)

    return deserialize


def add_to_server(server: grpc.aio.Server, *servicers) -> None:
    """Register servicers under TF Serving's service names with tolerant deserializers."""
    for servicer in servicers:
        service = servicer.SERVICE
        handlers = {}
        for method in service.methods:
            request_class = message_factory.GetMessageClass(method.input_type)
            response_class = message_factory.GetMessageClass(method.output_type)
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                getattr(servicer, method.name),
                request_deserializer=_tolerant(request_class),
                response_serializer=response_class.SerializeToString,
            )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service.full_name, handlers),)
        )


def _handler(api: str | None = None):
    """Map errors to gRPC statuses (nothing escapes as a crash); count and time the
    PredictionService APIs under TF Serving's metric names."""

    def decorate(method):
        @functools.wraps(method)
        async def wrapper(self, request, context):
            started = time.perf_counter()
            status = "OK"
            try:
                if isinstance(request, Undecodable):
                    raise invalid(request.message)
                return await method(self, request, context)
            except ServingError as exc:
                status = exc.code.name
                await context.abort(exc.code, bounded(exc.message))
            except Exception as exc:
                status = "INTERNAL"
                log.exception("%s failed", method.__name__)
                await context.abort(
                    grpc.StatusCode.INTERNAL, bounded(f"{type(exc).__name__}: {exc}")
                )
            finally:
                if api is not None:
                    metrics.observe_request(
                        getattr(getattr(request, "model_spec", None), "name", ""),
                        api,
                        "GRPC",
                        status,
                        time.perf_counter() - started,
                    )

        return wrapper

    return decorate


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    SERVICE = prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"]

    def __init__(
        self,
        manager: Manager,
        executor: Executor,
        batcher: Batcher | None = None,
        *,
        as_content: bool = False,
        max_rows: int = 0,
    ):
        self.manager = manager
        self.executor = executor  # runs the model when requests are not batched
        self.batcher = batcher
        self.as_content = as_content
        self.max_rows = max_rows  # per unbatched request (--max_request_rows); 0: none

    async def run_model(
        self, servable: Servable, signature: Signature, arrays: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Run checked inputs: through the batcher, or on the bounded executor. The one
        path for every API (gRPC, REST), so they batch together."""
        if self.batcher is not None:  # its max_batch_size bounds a request
            return await self.batcher.submit_async(servable, signature, arrays)
        check_rows(arrays, self.max_rows)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, servable.run, signature, arrays)

    @_handler("Predict")
    async def Predict(self, request, context):
        servable = self.manager.resolve(request.model_spec)
        signature, arrays, aliases = predict_lib.prepare(servable, request)
        outputs = await self.run_model(servable, signature, arrays)
        return predict_lib.respond(servable, signature, aliases, outputs, self.as_content)

    @_handler("GetModelMetadata")
    async def GetModelMetadata(self, request, context):
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for name in request.metadata_field:
            if name != "signature_def":
                raise invalid(f"Metadata field {name} is not supported")
        servable = self.manager.resolve(request.model_spec)
        packed = any_pb2.Any()
        packed.Pack(servable.signature_def_map())
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].CopyFrom(packed)
        return response

    @_handler("Classify")
    async def Classify(self, request, context):
        return await self._single_signature(request, inference.plan_classify)

    @_handler("Regress")
    async def Regress(self, request, context):
        return await self._single_signature(request, inference.plan_regress)

    async def _single_signature(self, request, plan):
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        servable = self.manager.resolve(request.model_spec)
        return await inference.run_async(plan(servable, request), self.run_model)

    # Like TF Serving, MultiInference records no request metrics (it has no model_spec
    # of its own to label them with).
    @_handler()
    async def MultiInference(self, request, context):
        servable = self.manager.resolve(inference.multi_inference_spec(request))
        plan = inference.plan_multi_inference(servable, request)
        return await inference.run_async(plan, self.run_model)


def check_rows(arrays: Mapping[str, np.ndarray], limit: int) -> None:
    """Refuse a request with more than `limit` rows (0: any number). Run as one, a
    request's memory grows with its rows: the model's activations for 10,000 MNIST
    images take about 2 GB, which the per-tensor byte limit does not bound."""
    if limit <= 0:
        return
    for alias, array in sorted(arrays.items()):
        if array.ndim and array.shape[0] > limit:
            raise invalid(
                f"input {alias} has {array.shape[0]} rows (dimension 0), more than the "
                f"{limit} the server takes in one request without batching; send smaller "
                "requests, or raise --max_request_rows"
            )


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    SERVICE = model_service_pb2.DESCRIPTOR.services_by_name["ModelService"]

    def __init__(self, manager: Manager):
        self.manager = manager

    @_handler()
    async def GetModelStatus(self, request, context):
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        return model_status(self.manager, request.model_spec)

    @_handler()
    async def HandleReloadConfigRequest(self, request, context):
        # Like TF Serving, a failed reload is the call's gRPC status (the response's own
        # status field mirrors it on success only).
        if request.config.WhichOneof("config") != "model_config_list":
            raise invalid(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                "Only ModelConfigList is currently supported"
            )
        await asyncio.to_thread(self.manager.apply_config, request.config)  # loads block
        log.info("Reloaded the model config: %s", ", ".join(self.manager.model_names()))
        return model_management_pb2.ReloadConfigResponse(status=status_proto(None))


def model_status(
    manager: Manager, spec: model_pb2.ModelSpec
) -> get_model_status_pb2.GetModelStatusResponse:
    """GetModelStatus's answer for one spec: shared by gRPC and REST, which call it
    directly (each maps the ServingError it may raise to its own wire format)."""
    if spec.WhichOneof("version_choice") == "version_label":
        # Resolve like Predict does, then report that version.
        version = manager.resolve(spec).version
    else:
        version = spec.version.value if spec.HasField("version") else None
    response = get_model_status_pb2.GetModelStatusResponse()
    for number, state, error in manager.status(spec.name, version):
        entry = response.model_version_status.add(version=number, state=int(state))
        entry.status.CopyFrom(status_proto(error))
    return response


def status_proto(error: ServingError | None) -> status_pb2.StatusProto:
    if error is None:
        return status_pb2.StatusProto(error_code=error_codes_pb2.OK)
    return status_pb2.StatusProto(error_code=error.code.value[0], error_message=error.message)
