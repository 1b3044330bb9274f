"""One loaded model version: its signatures, and how it runs, as TF Serving runs it.

TF Serving loads every SavedModel, TF1 graph or TF2 export alike, into a TensorFlow
session and runs a signature by feeding its input tensors and fetching its outputs.
Doing the same here is what makes the local server answer what the real one answers:
the graph, not the SignatureDef, decides which shapes it accepts (a `[-1, 1]` input
fed a `[1]` tensor runs, as in TF Serving), TF1 models with placeholders and in-graph
`tf.Example` parsing load unchanged, and the runtime's own errors come back verbatim.

Errors carry gRPC status codes and TF Serving's wording, so the service layer only
translates them and never has to guess what went wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow.python.util import deprecation
from tensorflow_serving.apis import get_model_metadata_pb2

from serving import tensors
from serving.errors import ServingError, invalid

log = logging.getLogger("serving")

DEFAULT_SIGNATURE = "serving_default"
DEFAULT_TAGS = ("serve",)
WARMUP_PATH = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving replays at most this many

# Process-wide, like the flags they come from (set once by `python -m serving`).
SESSION_CONFIG = config_pb2.ConfigProto(allow_soft_placement=True)
# --enable_signature_method_name_check: Classify/Regress insist on their method names.
SIGNATURE_METHOD_NAME_CHECK = False


def configure(session_config: config_pb2.ConfigProto, *, method_name_check: bool) -> None:
    """Apply the server's TensorFlow flags to every session loaded from now on."""
    global SIGNATURE_METHOD_NAME_CHECK
    SESSION_CONFIG.CopyFrom(session_config)
    SIGNATURE_METHOD_NAME_CHECK = method_name_check


def status_error(exc: tf.errors.OpError) -> ServingError:
    """A TensorFlow runtime error as its gRPC status (the two share their numbering)."""
    return ServingError(_TF_CODES.get(exc.error_code, grpc.StatusCode.UNKNOWN), exc.message)


@dataclass(frozen=True)
class Signature:
    """A runnable SignatureDef: what it declares, and the graph tensors behind it."""

    name: str
    definition: meta_graph_pb2.SignatureDef
    # alias -> (DataType enum, declared shape with -1 for unknown dims, or None)
    inputs: Mapping[str, tuple[int, tuple[int, ...] | None]]
    feeds: Mapping[str, object]  # alias -> the session's handle of the input tensor
    fetches: Mapping[str, object]  # alias -> the session's handle of the output tensor
    # alias -> the rank of the placeholder it feeds, where the graph fixes one
    placeholder_ranks: Mapping[str, int]

    @property
    def method_name(self) -> str:
        return self.definition.method_name

    def check_inputs(self, dtypes: Mapping[str, int]) -> None:
        """The one check TensorFlow's runtime makes on a fed tensor: its dtype. The
        shape is left to the graph, as in TF Serving; this just says which input."""
        for position, (alias, (want, _)) in enumerate(sorted(self.inputs.items())):
            got = dtypes[alias]
            if got != want:
                raise invalid(
                    f"Expects arg[{position}] to be {tensors.short_dtype(want)} but "
                    f"{tensors.short_dtype(got)} is provided (input '{alias}' of signature "
                    f"'{self.name}' expects {tensors.dtype_name(want)}, got "
                    f"{tensors.dtype_name(got)})"
                )


class Servable:
    """A SavedModel version loaded into its own graph and session."""

    def __init__(self, name: str, version: int, path: Path, tags: Sequence[str] = DEFAULT_TAGS):
        self.name, self.version, self.path = name, version, path
        if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
            raise FileNotFoundError(f"no saved_model.pb in {path}")
        graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=graph, config=SESSION_CONFIG)
        with graph.as_default(), deprecation.silence():
            self.meta_graph: meta_graph_pb2.MetaGraphDef = tf.compat.v1.saved_model.load(
                self._session, list(tags), str(path)
            )
        graph.finalize()  # nothing may grow the graph once it serves
        self.signatures: dict[str, Signature] = {}
        for key, definition in self.meta_graph.signature_def.items():
            signature = _runnable(graph, key, definition)
            if signature is not None:
                self.signatures[key] = signature
        if not self.signatures:
            raise ValueError(f"SavedModel at {path} has no usable signatures")

    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        """What GetModelMetadata reports under "signature_def" (gRPC and REST alike):
        every SignatureDef of the MetaGraph, as TF Serving reports them."""
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, definition in self.meta_graph.signature_def.items():
            signatures.signature_def[key].CopyFrom(definition)
        return signatures

    def signature(self, name: str) -> Signature:
        name = name or DEFAULT_SIGNATURE
        try:
            return self.signatures[name]
        except KeyError:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.'
            ) from None

    def run(
        self,
        signature: Signature,
        arrays: Mapping[str, np.ndarray],
        outputs: Iterable[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """One session run: feed the inputs, fetch `outputs` (default: all of them)."""
        aliases = list(signature.fetches if outputs is None else outputs)
        for alias, array in arrays.items():
            rank = signature.placeholder_ranks.get(alias)
            if rank is not None and array.ndim != rank:
                # The one shape check TF Serving does not make: some of TensorFlow's
                # CPU kernels (oneDNN) abort the whole process on a wrong rank.
                raise invalid(
                    f"input '{alias}' of signature '{signature.name}' has shape "
                    f"{list(array.shape)}, but the graph's placeholder for it takes "
                    f"rank {rank} (declared shape {list(signature.inputs[alias][1] or ())})"
                )
        feeds = {signature.feeds[alias]: array for alias, array in arrays.items()}
        try:
            values = self._session._call_tf_sessionrun(
                None, feeds, [signature.fetches[a] for a in aliases], [], None
            )
        except tf.errors.OpError as exc:
            raise status_error(exc) from exc
        return {alias: np.asarray(value) for alias, value in zip(aliases, values, strict=True)}

    def warmup_requests(self) -> Iterable[bytes]:
        path = self.path / WARMUP_PATH
        if not path.is_file():
            return []
        records = tf.data.TFRecordDataset(str(path)).take(MAX_WARMUP_RECORDS)
        return (r.numpy() for r in records)


def _runnable(graph: tf.Graph, key: str, definition: meta_graph_pb2.SignatureDef):
    """The Signature for a SignatureDef whose tensors are all dense tensors of the
    graph; None for entries that are not (TF2's "__saved_model_init_op" names an op,
    composite tensors have no single name): they are reported, not served."""
    try:
        inputs = {a: _tensor(graph, info) for a, info in definition.inputs.items()}
        outputs = {a: _tensor(graph, info) for a, info in definition.outputs.items()}
    except (KeyError, ValueError, TypeError):
        log.debug("Signature %s is not runnable here; it is listed in metadata only", key)
        return None
    return Signature(
        name=key,
        definition=definition,
        inputs={a: (info.dtype, _shape(info)) for a, info in definition.inputs.items()},
        feeds={a: t._as_tf_output() for a, t in inputs.items()},
        fetches={a: t._as_tf_output() for a, t in outputs.items()},
        placeholder_ranks={
            a: t.shape.rank
            for a, t in inputs.items()
            if t.op.type == "Placeholder" and t.shape.rank is not None
        },
    )


def _tensor(graph: tf.Graph, info: meta_graph_pb2.TensorInfo) -> tf.Tensor:
    if info.WhichOneof("encoding") != "name":
        raise ValueError("not a dense tensor")
    return graph.get_tensor_by_name(info.name)


def _shape(info: meta_graph_pb2.TensorInfo) -> tuple[int, ...] | None:
    if info.tensor_shape.unknown_rank:
        return None
    return tuple(d.size for d in info.tensor_shape.dim)


# tensorflow error codes share numbering with gRPC's status codes.
_TF_CODES = {code.value[0]: code for code in grpc.StatusCode}
