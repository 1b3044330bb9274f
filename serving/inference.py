"""Classify, Regress and MultiInference on one servable, by TF Serving's rules.

A request first becomes a `Plan`: its signatures checked as TF Serving's classifier and
regressor check them, and its examples serialized once, so every error a request can
cause is found before the model runs. Running the plan is the caller's choice: the
warm-up runs it here, synchronously; the gRPC and REST APIs through their `run_model`
(the batcher or the executor), so these requests batch with Predict's. The outputs are
then checked against TF Serving's result shapes and turned into its result messages.

Which signatures qualify follows TF Serving, not the method name: unless the method-name
check is on (`--enable_signature_method_name_check`, off by default), any signature with
one DT_STRING input `inputs` and the right outputs is classifiable or regressable, so a
TF2 SavedModel, whose signatures all carry the predict method name, serves both APIs.

It stays one module past 400 lines: the plan, the signature checks and the result
shapes are one rule set (TF Serving's classifier and regressor), each half of which
only makes sense beside the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import message, text_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    model_pb2,
    regression_pb2,
)

from serving import servable as servable_lib
from serving.examples import serialized_examples
from serving.servable import DEFAULT_SIGNATURE, Servable, ServingError, Signature, invalid

# TF Serving's method names and signature aliases (signature_constants).
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
INPUTS = "inputs"
CLASSES = "classes"
SCORES = "scores"
OUTPUTS = "outputs"

Result = classification_pb2.ClassificationResult | regression_pb2.RegressionResult
RunModel = Callable[[Servable, Signature, Mapping[str, np.ndarray]], Awaitable[dict]]


@dataclass(frozen=True)
class Task:
    """One checked signature and what to make of its outputs."""

    method: str  # CLASSIFY_METHOD or REGRESS_METHOD
    signature: Signature
    model_name: str  # as the request named it, reported back in its result

    def result(self, outputs: Mapping[str, np.ndarray], num_examples: int) -> Result:
        if self.method == CLASSIFY_METHOD:
            return classification_result(self.signature, outputs, num_examples)
        return regression_result(outputs, num_examples)


@dataclass(frozen=True)
class Plan:
    """A request checked and ready to run: each task's signature runs on `feeds`."""

    servable: Servable
    tasks: tuple[Task, ...]
    examples: np.ndarray  # 1-D serialized tf.Examples
    respond: Callable[[Plan, list[Result]], message.Message]

    @property
    def feeds(self) -> dict[str, np.ndarray]:
        return {INPUTS: self.examples}

    def finish(self, outputs: Sequence[Mapping[str, np.ndarray]]) -> message.Message:
        """The response, from each task's outputs (in task order)."""
        results = [
            task.result(task_outputs, len(self.examples))
            for task, task_outputs in zip(self.tasks, outputs, strict=True)
        ]
        return self.respond(self, results)


# ---- requests -> plans ------------------------------------------------------------------


def plan_classify(servable: Servable, request: classification_pb2.ClassificationRequest) -> Plan:
    return _plan_single(servable, request, CLASSIFY_METHOD)


def plan_regress(servable: Servable, request: regression_pb2.RegressionRequest) -> Plan:
    return _plan_single(servable, request, REGRESS_METHOD)


def plan_rows(servable: Servable, method: str, signature_name: str, rows: np.ndarray) -> Plan:
    """Classify (`method` CLASSIFY_METHOD) or Regress on examples already serialized:
    the REST API's, which its JSON parser makes without building a gRPC request."""
    task, respond = _single_task(servable, method, signature_name)
    return Plan(servable, (task,), rows, respond)


def _plan_single(servable: Servable, request, method: str) -> Plan:
    task, respond = _single_task(servable, method, request.model_spec.signature_name)
    return Plan(servable, (task,), serialized_examples(request.input), respond)


def _single_task(
    servable: Servable, method: str, signature_name: str
) -> tuple[Task, Callable[[Plan, list[Result]], message.Message]]:
    """Classify and Regress: one signature, checked by its API's rules (before the
    input is looked at, as TF Serving orders its errors)."""
    signature = _signature(servable, signature_name, "No signature was found with the name: ")
    check, respond = _SINGLE[method]
    check(signature)
    return Task(method, signature, servable.name), respond


def plan_multi_inference(servable: Servable, request: inference_pb2.MultiInferenceRequest) -> Plan:
    """Every task checked in order, then the shared input. `servable` is the version
    the first task's ModelSpec names; the other tasks must name the same model."""
    model_name = ""
    seen: set[str] = set()
    tasks = []
    for task in request.tasks:
        name = task.model_spec.name
        if not name:
            raise invalid("Found ModelSpec with an empty model name.")
        if not model_name:
            model_name = name
        elif name != model_name:
            raise invalid(
                "All ModelSpecs in a MultiInferenceRequest must access the same model name."
            )
        signature_name = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature_name in seen:
            raise invalid(f"Duplicate evaluation of signature: {signature_name}")
        seen.add(signature_name)
        signature = _signature(
            servable, signature_name, "Requested signature not found in model graph: "
        )
        if task.method_name == CLASSIFY_METHOD:
            check_classify(signature)
        elif task.method_name == REGRESS_METHOD:
            check_regress(signature)
        else:
            raise ServingError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"Unsupported signature method_name: {task.method_name}",
            )
        tasks.append(Task(task.method_name, signature, name))
    examples = serialized_examples(request.input)
    return Plan(servable, tuple(tasks), examples, _multi_inference_response)


def multi_inference_spec(request: inference_pb2.MultiInferenceRequest) -> model_pb2.ModelSpec:
    """The ModelSpec that picks the servable: the first task's (empty when none)."""
    return request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()


def _signature(servable: Servable, name: str, missing: str) -> Signature:
    """The signature by name (empty: serving_default); INVALID_ARGUMENT when absent,
    as TF Serving answers these APIs (Predict says FAILED_PRECONDITION)."""
    try:
        return servable.signature(name)
    except ServingError:
        raise invalid(missing + (name or DEFAULT_SIGNATURE)) from None


# ---- signature checks -------------------------------------------------------------------


def check_classify(signature: Signature) -> None:
    """One input `inputs`; one or two outputs, among them `classes` and/or `scores`."""
    definition = signature.definition
    _check_method_name(definition, CLASSIFY_METHOD, "classification")
    if len(definition.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if len(definition.outputs) not in (1, 2):
        raise invalid(f"Expected one or two output Tensors, found {len(definition.outputs)}")
    if INPUTS not in definition.inputs:
        raise invalid(f"No classification inputs found in SignatureDef: {_text(definition)}")
    if CLASSES not in definition.outputs and SCORES not in definition.outputs:
        raise invalid(
            f'Expected classification signature outputs to contain at least one of "{CLASSES}" '
            f'or "{SCORES}". Signature was: {_text(definition)}'
        )
    _check_input_dtype(signature)


def check_regress(signature: Signature) -> None:
    """One input `inputs`; one output `outputs`."""
    definition = signature.definition
    _check_method_name(definition, REGRESS_METHOD, "regression")
    if len(definition.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if len(definition.outputs) != 1:
        raise invalid("Expected one output Tensor.")
    if INPUTS not in definition.inputs:
        raise invalid(f"No regression inputs found in SignatureDef: {_text(definition)}")
    if OUTPUTS not in definition.outputs:
        raise invalid(f"No regression outputs found in SignatureDef: {_text(definition)}")
    _check_input_dtype(signature)


def _check_method_name(definition: meta_graph_pb2.SignatureDef, method: str, kind: str) -> None:
    # Read at call time: the flag is set once the server has parsed its command line.
    if servable_lib.SIGNATURE_METHOD_NAME_CHECK and (definition.method_name != method):
        raise invalid(
            f"Expected {kind} signature method_name to be {method}. Was: {definition.method_name}"
        )


def _check_input_dtype(signature: Signature) -> None:
    """Refused here with a message that says why, where TF Serving would feed the
    strings to the model and pass on whatever TensorFlow says about the mismatch."""
    dtype = signature.definition.inputs[INPUTS].dtype
    if dtype != types_pb2.DT_STRING:
        raise invalid(
            f"Expected input '{INPUTS}' of signature '{signature.name}' to take serialized "
            f"tf.Examples (DT_STRING), but it is {types_pb2.DataType.Name(dtype)}"
        )


def _text(definition: meta_graph_pb2.SignatureDef) -> str:
    return text_format.MessageToString(definition)


# ---- outputs -> results -----------------------------------------------------------------


def classification_result(
    signature: Signature, outputs: Mapping[str, np.ndarray], num_examples: int
) -> classification_pb2.ClassificationResult:
    """[batch, num_classes] labels (DT_STRING) and/or scores (DT_FLOAT): one
    Classifications per example, one Class per column."""
    wanted = [alias for alias in (CLASSES, SCORES) if alias in signature.definition.outputs]
    present = [alias for alias in wanted if alias in outputs]
    if len(present) != len(wanted):
        raise invalid(f"Expected {len(wanted)} output tensor(s).  Got: {len(present)}")
    classes = np.asarray(outputs[CLASSES]) if CLASSES in present else None
    scores = np.asarray(outputs[SCORES]) if SCORES in present else None
    for alias, array, dtype in ((CLASSES, classes, "DT_STRING"), (SCORES, scores, "DT_FLOAT")):
        if array is None:
            continue
        if array.ndim != 2:
            raise invalid(
                f"Expected Tensor shape: [batch_size num_classes] but got {_shape(array)}"
            )
        if _dtype_name(array) != dtype:
            raise invalid(f"Expected {alias} Tensor of {dtype}. Got: {_dtype_name(array)}")
        if array.shape[0] != num_examples:
            raise invalid(
                f"Expected {alias} output batch size of {num_examples}. Got: {array.shape[0]}"
            )
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid(
            "Tensors class and score should match in dim_size(1). "
            f"Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    labels = [[_label(v) for v in row] for row in classes.tolist()] if classes is not None else None
    values = scores.tolist() if scores is not None else None
    num_classes = (classes if classes is not None else scores).shape[1] if present else 0
    result = classification_pb2.ClassificationResult()
    for row in range(num_examples):
        entries = result.classifications.add().classes
        for column in range(num_classes):
            entry = entries.add()
            if labels is not None:
                entry.label = labels[row][column]
            if values is not None:
                entry.score = values[row][column]
    return result


def regression_result(
    outputs: Mapping[str, np.ndarray], num_examples: int
) -> regression_pb2.RegressionResult:
    """A DT_FLOAT [batch] or [batch, 1] tensor: one Regression per example."""
    if OUTPUTS not in outputs:
        raise invalid(f"Could not find output tensor '{OUTPUTS}'")
    array = np.asarray(outputs[OUTPUTS])
    if not (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)):
        raise invalid(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] "
            f"but got {_shape(array)}"
        )
    if array.shape[0] != num_examples:
        raise invalid(
            f"Input batch size did not match output batch size: {num_examples} vs. {array.shape[0]}"
        )
    if _dtype_name(array) != "DT_FLOAT":
        raise invalid(f"Expected output Tensor of DT_FLOAT.  Got: {_dtype_name(array)}")
    result = regression_pb2.RegressionResult()
    for value in array.ravel().tolist():
        result.regressions.add(value=value)
    return result


def _label(value: object) -> str:
    """A class label for the proto's string field; bytes that are not UTF-8 come
    through with replacement characters rather than failing the whole request."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _shape(array: np.ndarray) -> str:
    return "[" + ",".join(str(d) for d in array.shape) + "]"


def _dtype_name(array: np.ndarray) -> str:
    if array.dtype.kind in "OSU":
        return "DT_STRING"
    try:
        return types_pb2.DataType.Name(tf.dtypes.as_dtype(array.dtype).as_datatype_enum)
    except TypeError:
        return str(array.dtype)


# ---- results -> responses ---------------------------------------------------------------


def _model_spec(name: str, version: int, signature_name: str) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=name, signature_name=signature_name)
    spec.version.value = version
    return spec


def _classification_response(
    plan: Plan, results: list[Result]
) -> classification_pb2.ClassificationResponse:
    (task,), (result,) = plan.tasks, results
    return classification_pb2.ClassificationResponse(
        model_spec=_model_spec(task.model_name, plan.servable.version, task.signature.name),
        result=result,
    )


def _regression_response(plan: Plan, results: list[Result]) -> regression_pb2.RegressionResponse:
    (task,), (result,) = plan.tasks, results
    return regression_pb2.RegressionResponse(
        model_spec=_model_spec(task.model_name, plan.servable.version, task.signature.name),
        result=result,
    )


def _multi_inference_response(
    plan: Plan, results: list[Result]
) -> inference_pb2.MultiInferenceResponse:
    response = inference_pb2.MultiInferenceResponse()
    for task, result in zip(plan.tasks, results, strict=True):
        entry = response.results.add()
        entry.model_spec.CopyFrom(
            _model_spec(task.model_name, plan.servable.version, task.signature.name)
        )
        if task.method == CLASSIFY_METHOD:
            entry.classification_result.CopyFrom(result)
        else:
            entry.regression_result.CopyFrom(result)
    return response


# method -> (signature check, response builder) for the one-signature APIs.
_SINGLE = {
    CLASSIFY_METHOD: (check_classify, _classification_response),
    REGRESS_METHOD: (check_regress, _regression_response),
}


# ---- running ----------------------------------------------------------------------------


def run(plan: Plan) -> message.Message:
    """Synchronously, in this thread (the warm-up replay)."""
    return plan.finish([plan.servable.run(task.signature, plan.feeds) for task in plan.tasks])


async def run_async(plan: Plan, run_model: RunModel) -> message.Message:
    """Through `run_model`, every task's signature at once. The first failure in task
    order is the answer, whichever finished first, so a request always fails alike."""
    outcomes = await asyncio.gather(
        *(run_model(plan.servable, task.signature, plan.feeds) for task in plan.tasks),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return plan.finish(outcomes)


def classify(
    servable: Servable, request: classification_pb2.ClassificationRequest
) -> classification_pb2.ClassificationResponse:
    return run(plan_classify(servable, request))


def regress(
    servable: Servable, request: regression_pb2.RegressionRequest
) -> regression_pb2.RegressionResponse:
    return run(plan_regress(servable, request))


def multi_inference(
    servable: Servable, request: inference_pb2.MultiInferenceRequest
) -> inference_pb2.MultiInferenceResponse:
    return run(plan_multi_inference(servable, request))
