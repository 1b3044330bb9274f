"""An in-process stand-in for TF Serving, scripted to fail, stall or misbehave on demand.

The real server (`python -m serving`) is used by the integration tests; this one exists
for what a real server will not do on cue: answer UNAVAILABLE exactly twice, take two
seconds, or send a malformed response. It speaks the same method paths and bytes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
import numpy as np

from client import tensors
from client.protos import tfs_pb2

LIMIT = 64 * 1024 * 1024


def fake_digit(image: np.ndarray) -> int:
    """The fake model's answer: a function of the pixels, so order mix-ups show."""
    return int(image.sum() * 1000) % 10


@dataclass
class Script:
    failures: list[grpc.StatusCode] = field(default_factory=list)  # returned first, in order
    delay: float = 0.0  # seconds before answering
    # ok | bad_shape | no_output | padded | bad_any | nan | negative | unnormalized
    mode: str = "ok"
    details: str | None = None  # the message of the scripted failures
    loading_polls: int = 0  # GetModelStatus answers LOADING this many times first
    calls: dict[str, int] = field(default_factory=dict)
    batch_sizes: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, method: str, context: grpc.ServicerContext) -> None:
        with self.lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            context.abort(failure, self.details or f"scripted {failure.name}")
        if self.delay:
            time.sleep(self.delay)


class FakeServing:
    def __init__(self, script: Script) -> None:
        self.script = script

    def predict(self, request: tfs_pb2.PredictRequest, context) -> tfs_pb2.PredictResponse:
        self.script.begin("Predict", context)
        images = tensors.to_numpy(request.inputs["images"])
        with self.script.lock:
            self.script.batch_sizes.append(len(images))
        probabilities = np.full((len(images), 10), 0.01, np.float32)
        for i, image in enumerate(images):
            probabilities[i, fake_digit(image)] = 0.91
        response = tfs_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 1
        mode = self.script.mode
        if mode == "bad_shape":
            probabilities = probabilities[:, :9]
        elif mode == "nan":
            probabilities[-1, 0] = np.nan
        elif mode == "negative":  # still summing to 1
            probabilities[-1, :2] = (-0.5, 0.51)
        elif mode == "unnormalized":  # scores, not probabilities
            probabilities[-1] /= 2
        if mode != "no_output":
            response.outputs["probabilities"].CopyFrom(tensors.to_proto(probabilities))
        if mode == "padded":  # a response over gRPC's default 4 MB receive limit
            response.outputs["padding"].CopyFrom(tensors.to_proto(np.zeros(2_000_000, np.float32)))
        return response

    def metadata(self, request, context) -> tfs_pb2.GetModelMetadataResponse:
        self.script.begin("GetModelMetadata", context)
        signature = tfs_pb2.SignatureDef(method_name="tensorflow/serving/predict")
        signature.inputs["images"].dtype = tfs_pb2.DT_FLOAT
        for size in (-1, 28, 28, 1):
            signature.inputs["images"].tensor_shape.dim.add(size=size)
        signature.outputs["probabilities"].dtype = tfs_pb2.DT_FLOAT
        signature_map = tfs_pb2.SignatureDefMap()
        signature_map.signature_def["serving_default"].CopyFrom(signature)
        response = tfs_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 1
        packed = response.metadata["signature_def"]
        packed.type_url = "type.googleapis.com/tensorflow.serving.SignatureDefMap"
        if self.script.mode == "bad_any":
            packed.type_url = "type.googleapis.com/tensorflow.serving.Something"
        packed.value = signature_map.SerializeToString()
        return response

    def status(self, request, context) -> tfs_pb2.GetModelStatusResponse:
        self.script.begin("GetModelStatus", context)
        response = tfs_pb2.GetModelStatusResponse()
        version = response.model_version_status.add(version=1)
        with self.script.lock:
            loading = self.script.loading_polls > 0
            self.script.loading_polls -= 1
        version.state = (
            tfs_pb2.ModelVersionStatus.LOADING if loading else tfs_pb2.ModelVersionStatus.AVAILABLE
        )
        return response


def _handler(method, request_type, response_type) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        method,
        request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString,
    )


@contextmanager
def fake_server(script: Script | None = None, port: int = 0) -> Iterator[tuple[str, Script]]:
    """Yields ("127.0.0.1:PORT", script) with the fake serving until the block ends."""
    script = script or Script()
    servicer = FakeServing(script)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[
            ("grpc.max_receive_message_length", LIMIT),
            ("grpc.max_send_message_length", LIMIT),
        ],
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "tensorflow.serving.PredictionService",
                {
                    "Predict": _handler(
                        servicer.predict, tfs_pb2.PredictRequest, tfs_pb2.PredictResponse
                    ),
                    "GetModelMetadata": _handler(
                        servicer.metadata,
                        tfs_pb2.GetModelMetadataRequest,
                        tfs_pb2.GetModelMetadataResponse,
                    ),
                },
            ),
            grpc.method_handlers_generic_handler(
                "tensorflow.serving.ModelService",
                {
                    "GetModelStatus": _handler(
                        servicer.status,
                        tfs_pb2.GetModelStatusRequest,
                        tfs_pb2.GetModelStatusResponse,
                    )
                },
            ),
        )
    )
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        yield f"127.0.0.1:{port}", script
    finally:
        server.stop(grace=None).wait(5)


@contextmanager
def slow_link(target: str, delay: float) -> Iterator[str]:
    """Yields a "127.0.0.1:PORT" relaying to `target` over a link with a long round trip.

    Each connection's bytes are held back `delay` seconds before the relay starts, so
    the server's first HTTP/2 frames (what gRPC waits for before a connection counts as
    made) arrive that late, as from a server across the world or behind a slow proxy.
    """
    host, port = target.rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    sockets: list[socket.socket] = [listener]

    def pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def relay(client: socket.socket) -> None:
        if stop.wait(delay):
            return
        try:
            upstream = socket.create_connection((host, int(port)))
        except OSError:
            client.close()
            return
        sockets.append(upstream)
        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
        pump(upstream, client)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sockets.append(client)
            threading.Thread(target=relay, args=(client,), daemon=True).start()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        server.join(5)
        for sock in sockets:
            sock.close()
