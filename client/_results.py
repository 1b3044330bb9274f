"""What the client returns: plain, typed, immutable values with no protobuf in them.

Callers should never need the generated message classes, so responses are copied into
these dataclasses at the edge (client/_rpc.py) and the protos stay an implementation
detail that can change without breaking anyone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from contract.states import State

if TYPE_CHECKING:  # the CLI imports this module for MIN_CONFIDENCE: kept free of numpy
    import numpy as np

# Below this confidence an answer is flagged as uncertain. Chosen with the recipe model on
# the development writers of the handwriting set (README, "Low confidence"): it flags two
# thirds of the wrong answers and under 2% of the right ones.
MIN_CONFIDENCE = 0.9


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image, and which model version gave it."""

    digit: int
    confidence: float  # the probability of `digit`
    probabilities: tuple[float, ...]  # ten values, for digits 0..9
    model: str
    version: int | None  # None only if the server did not say

    def top(self, k: int = 3) -> list[tuple[int, float]]:
        """The `k` most likely digits with their probabilities, most likely first."""
        ranked = sorted(enumerate(self.probabilities), key=lambda item: -item[1])
        return ranked[: max(0, k)]

    def is_uncertain(self, min_confidence: float = MIN_CONFIDENCE) -> bool:
        """Whether the model was too unsure for the answer to be trusted as it is.

        A picture that is not a clear digit (a scribble, two digits, a smudge) still gets
        one of the ten answers; its confidence is what tells. Ask the user again, or
        have a person look, when this is True.
        """
        return self.confidence < min_confidence


@dataclass(frozen=True)
class ImageResult:
    """What became of one image given to predict_batches: its prediction, or why not.

    `error` is an ImageError naming the image when it cannot be used; any other
    exception there is a fault in the client while reading that one picture, reported
    rather than raised so that the other images still run.
    """

    index: int  # the image's position in the input
    name: str  # how messages name it: the name given, its path, or a description
    prediction: Prediction | None = None  # None exactly when `error` is set
    error: Exception | None = None
    digit: np.ndarray | None = None  # the (28, 28) float32 the model saw
    picture: Any = None  # what keep_picture made of the decoded picture, if anything


@dataclass(frozen=True)
class TensorSpec:
    name: str  # the graph tensor the alias is bound to
    dtype: str  # numpy-style name ("float32"), or the DataType name numpy lacks
    shape: tuple[int | None, ...] | None  # None dims are variable; None is unknown rank


@dataclass(frozen=True)
class SignatureSpec:
    """One of the model's signatures as GetModelMetadata describes it: the method and
    the tensors it takes and gives. (The server's own runnable signature, bound to a
    loaded graph, is serving.servable.Signature.)"""

    method_name: str
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]


@dataclass(frozen=True)
class ModelMetadata:
    model: str
    version: int | None
    signatures: Mapping[str, SignatureSpec]


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING or END (TF Serving's states)
    error_code: str  # "OK" unless loading or serving this version failed
    error_message: str


@dataclass(frozen=True)
class ModelStatus:
    model: str
    versions: tuple[VersionStatus, ...]  # highest version first

    @property
    def available(self) -> tuple[int, ...]:
        """The versions that can serve requests now."""
        return tuple(v.version for v in self.versions if v.state == State.AVAILABLE.name)
