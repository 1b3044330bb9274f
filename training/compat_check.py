"""Load SavedModels as TensorFlow Serving does, with whichever TensorFlow is installed.

`training.compat` runs this file inside an isolated environment that holds the
TensorFlow release a TF Serving version is built on (tensorflow==X.Y.Z and
tensorflow-serving-api==X.Y.Z), never the project's own TensorFlow. It therefore imports
nothing from the project, only the standard library, numpy, tensorflow and
tensorflow_serving.apis, and uses only APIs that every TensorFlow 2.x release has
(`tf.compat.v1`), so the same file checks any version.

For each export it does what the model server does before a version becomes AVAILABLE:

1. load the MetaGraph tagged `serve` into a session (TF Serving's LoadSavedModel). This
   is where a graph written by a newer TensorFlow fails with `Op type not registered`.
   An attribute the older TensorFlow does not know is not fatal there: it logs
   `NodeDef mentions attribute ... Unknown attributes will be ignored` and runs the op
   as it knows it. Such attributes are listed as warnings (found by reading the graph and
   its functions against this TensorFlow's op registry, since the log is rate-limited),
   and step 3 shows whether ignoring them changes the results;
2. run the `serving_default` signature on a zero batch built from its own input specs;
3. replay `assets.extra/tf_serving_warmup_requests` with TF Serving's rules for Predict
   (at most 1000 records, inputs exactly the signature's, matching dtypes) and compare
   each float output with the response the exporter recorded beside the request, so a
   version that loads but computes something else fails too.

usage: python compat_check.py RESULT.json EXPORT_DIR [EXPORT_DIR ...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

TAGS = ["serve"]
DEFAULT_SIGNATURE = "serving_default"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving's WarmupConsts::kMaxNumRecords
SAMPLE_BATCH = 2  # stands in for every unknown (-1) dimension of the sample input
# Float outputs must agree with the exporter's within this: the same graph on another
# TensorFlow (and on CPU here, where the exporter may have used a GPU) differs only in
# rounding, while a changed kernel or attribute meaning differs by far more.
RTOL, ATOL = 1e-3, 1e-4


class CheckError(Exception):
    """The export does not behave in this TensorFlow as TF Serving would need."""


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.rsplit("usage: ", 1)[1], file=sys.stderr)
        return 2
    out, exports = Path(argv[0]), [Path(a) for a in argv[1:]]
    import tensorflow as tf

    results = [check(tf, export) for export in exports]
    out.write_text(json.dumps({"tensorflow": tf.__version__, "results": results}, indent=2))
    return 0


def check(tf, export: Path) -> dict:
    """One export's result: `passed`, and the `error` TF Serving would have logged."""
    started = time.monotonic()
    result: dict = {"export": str(export), "passed": False, "error": None}
    try:
        graph = tf.Graph()
        with tf.compat.v1.Session(graph=graph) as session:
            meta_graph = tf.compat.v1.saved_model.loader.load(session, TAGS, str(export))
            signatures = dict(meta_graph.signature_def)
            if DEFAULT_SIGNATURE not in signatures:
                raise CheckError(f"no {DEFAULT_SIGNATURE!r} signature (has {sorted(signatures)})")
            result["warnings"] = unknown_attributes(tf, meta_graph)
            run_sample(tf, session, signatures[DEFAULT_SIGNATURE])
            result.update(replay_warmup(tf, session, signatures, export / WARMUP_FILE))
        result["passed"] = True
    except Exception as exc:  # any failure is the answer; report it, check the next export
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        result["error"] = f"{type(exc).__name__}: {message}"[:4000]
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def unknown_attributes(tf, meta_graph) -> list[str]:
    """Attributes of the graph's and its functions' nodes that this TensorFlow ignores."""
    from tensorflow.python.framework import op_def_registry

    graph_def = meta_graph.graph_def
    nodes = [("graph", node) for node in graph_def.node]
    for function in graph_def.library.function:
        nodes.extend((function.signature.name, node) for node in function.node_def)
    found: list[str] = []
    for where, node in nodes:
        op_def = op_def_registry.get(node.op)
        if op_def is None:  # not an op: a call of a library function by name
            continue
        known = {attr.name for attr in op_def.attr}
        for name in sorted(node.attr):
            if not name.startswith("_") and name not in known:
                found.append(
                    f"{node.op} node {node.name!r} ({where}): attribute {name!r} is unknown "
                    f"to TensorFlow {tf.__version__} and is ignored there"
                )
    return found


def run_sample(tf, session, signature) -> None:
    feed = {}
    for name, info in signature.inputs.items():
        if info.tensor_shape.unknown_rank:
            raise CheckError(f"input {name!r} has an unknown rank; cannot build a sample")
        shape = [d.size if d.size >= 0 else SAMPLE_BATCH for d in info.tensor_shape.dim]
        dtype = tf.dtypes.as_dtype(info.dtype)
        if dtype == tf.string:
            feed[info.name] = _zeros(shape, object, fill=b"")
        else:
            feed[info.name] = _zeros(shape, dtype.as_numpy_dtype)
    outputs = session.run({k: v.name for k, v in signature.outputs.items()}, feed)
    for name, info in signature.outputs.items():
        dims = info.tensor_shape.dim
        if dims and dims[0].size == -1 and outputs[name].shape[:1] != (SAMPLE_BATCH,):
            raise CheckError(
                f"sample of {SAMPLE_BATCH}: output {name!r} has shape {outputs[name].shape}"
            )


def replay_warmup(tf, session, signatures: dict, path: Path) -> dict:
    """Replay the warm-up file as TF Serving's RunSavedModelWarmup would (Predict only)."""
    import numpy as np
    from tensorflow_serving.apis import prediction_log_pb2

    if not path.is_file():
        return {"warmup_records": 0, "warmup_batch_sizes": [], "max_abs_diff": None}
    sizes: list[int] = []
    worst: float | None = None
    count = 0
    for count, raw in enumerate(tf.compat.v1.io.tf_record_iterator(str(path)), start=1):
        if count > MAX_WARMUP_RECORDS:
            raise CheckError(f"more than {MAX_WARMUP_RECORDS} warm-up records (TF Serving's cap)")
        log = prediction_log_pb2.PredictionLog.FromString(raw)
        kind = log.WhichOneof("log_type")
        if kind != "predict_log":
            raise CheckError(f"warm-up record {count}: {kind} (this gate replays predict_log)")
        request = log.predict_log.request
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if name not in signatures:
            raise CheckError(f"warm-up record {count}: signature {name!r} not found")
        signature = signatures[name]
        if set(request.inputs) != set(signature.inputs):
            raise CheckError(
                f"warm-up record {count}: inputs {sorted(request.inputs)}, "
                f"signature {name!r} takes {sorted(signature.inputs)}"
            )
        feed = {}
        for key, proto in request.inputs.items():
            expected = tf.dtypes.as_dtype(signature.inputs[key].dtype)
            if proto.dtype != expected.as_datatype_enum:
                raise CheckError(
                    f"warm-up record {count}: input {key!r} is "
                    f"{tf.dtypes.as_dtype(proto.dtype).name}, the signature expects "
                    f"{expected.name}"
                )
            feed[signature.inputs[key].name] = tf.make_ndarray(proto)
        wanted = list(request.output_filter) or list(signature.outputs)
        unknown = [o for o in wanted if o not in signature.outputs]
        if unknown:
            raise CheckError(f"warm-up record {count}: unknown outputs {unknown}")
        outputs = session.run({k: signature.outputs[k].name for k in wanted}, feed)
        batch = next(iter(feed.values())).shape[:1]
        sizes.extend(batch)
        for key, expected_proto in log.predict_log.response.outputs.items():
            expected_array = tf.make_ndarray(expected_proto)
            if key not in outputs or not np.issubdtype(expected_array.dtype, np.floating):
                continue  # integer outputs (argmax) follow from the floats compared here
            got = outputs[key]
            if got.shape != expected_array.shape:
                raise CheckError(
                    f"warm-up record {count}: output {key!r} has shape {got.shape}, "
                    f"the exporter's had {expected_array.shape}"
                )
            diff = float(np.max(np.abs(got - expected_array))) if got.size else 0.0
            worst = diff if worst is None else max(worst, diff)
            if not np.allclose(got, expected_array, rtol=RTOL, atol=ATOL):
                raise CheckError(
                    f"warm-up record {count}: output {key!r} differs from the exporter's "
                    f"by up to {diff:.3g}"
                )
    return {"warmup_records": count, "warmup_batch_sizes": sizes, "max_abs_diff": worst}


def _zeros(shape: list[int], dtype, fill=0):
    import numpy as np

    return np.full(shape, fill, dtype=dtype)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
