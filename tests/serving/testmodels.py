"""Small SavedModels built at test time, in the shapes TF Serving users bring.

- `half_plus_two_tf1`: a TF1 graph written with `tf.compat.v1.saved_model.Builder`:
  placeholders, serialized `tf.Example`s parsed inside the graph, and predict,
  classify and regress signatures with their proper method names.
- `half_plus_two_tf2`: the same arithmetic as native TF2 `tf.function`s saved with
  `tf.saved_model.save`, whose signatures all carry the predict method name (TF2 writes
  no other) yet are called through Classify and Regress as TF Serving allows.

y = 0.5 * x + 2 and y2 = 0.5 * x + 3, so x = 2.0 answers 3.0 and 4.0.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

PREDICT = "tensorflow/serving/predict"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"

_V1 = tf.compat.v1


def _features() -> dict:
    return {
        "x": _V1.io.FixedLenFeature([1], tf.float32, default_value=[0.0]),
        "x2": _V1.io.FixedLenFeature([1], tf.float32, default_value=[0.0]),
    }


def half_plus_two_tf1(base: Path, version: int = 123) -> Path:
    """A TF1 model under base/version; returns base."""
    export = base / str(version)
    graph = tf.Graph()
    with graph.as_default(), _V1.Session(graph=graph) as session:
        a = _V1.Variable(0.5, name="a")
        b = _V1.Variable(2.0, name="b")
        c = _V1.Variable(3.0, name="c")
        serialized = _V1.placeholder(tf.string, shape=[None], name="tf_example")
        parsed = _V1.io.parse_example(serialized, _features())
        x = tf.identity(parsed["x"], name="x")  # [-1, 1]
        x2 = tf.identity(parsed["x2"], name="x2")
        y = tf.identity(a * x + b, name="y")
        y2 = tf.identity(a * x + c, name="y2")
        y3 = tf.identity(a * x2 + c, name="y3")
        # Two classes per example: their labels, and scores that are y and y2.
        classes = tf.tile(tf.constant([["low", "high"]]), [tf.shape(x)[0], 1], name="classes")
        scores = tf.concat([y, y2], axis=1, name="scores")
        session.run(_V1.global_variables_initializer())

        info = _V1.saved_model.utils.build_tensor_info

        def signature(inputs: dict, outputs: dict, method: str):
            return _V1.saved_model.signature_def_utils.build_signature_def(
                {k: info(v) for k, v in inputs.items()},
                {k: info(v) for k, v in outputs.items()},
                method,
            )

        signatures = {
            "serving_default": signature({"x": x}, {"y": y}, PREDICT),
            "predict_x2": signature({"x": x, "x2": x2}, {"y": y, "y3": y3}, PREDICT),
            "classify_x_to_y": signature({"inputs": serialized}, {"scores": y}, CLASSIFY),
            "classify_two": signature(
                {"inputs": serialized}, {"classes": classes, "scores": scores}, CLASSIFY
            ),
            "classify_classes_only": signature(
                {"inputs": serialized}, {"classes": classes}, CLASSIFY
            ),
            "regress_x_to_y": signature({"inputs": serialized}, {"outputs": y}, REGRESS),
            "regress_x_to_y2": signature({"inputs": serialized}, {"outputs": y2}, REGRESS),
            "regress_x2_to_y3": signature({"inputs": x2}, {"outputs": y3}, REGRESS),
        }
        builder = _V1.saved_model.Builder(str(export))
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map=signatures)
        builder.save()
    return base


def half_plus_two_tf2(base: Path, version: int = 123) -> Path:
    """A native TF2 model under base/version; returns base."""
    module = tf.Module()
    module.a = tf.Variable(0.5)
    module.b = tf.Variable(2.0)
    module.c = tf.Variable(3.0)

    def parse(serialized):
        return tf.io.parse_example(serialized, _features())

    @tf.function(input_signature=[tf.TensorSpec([1], tf.float32, name="x")])
    def predict(x):
        return {"y": module.a * x + module.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify_x_to_y(serialized):
        return {"scores": module.a * parse(serialized)["x"] + module.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress_x_to_y(serialized):
        return {"outputs": module.a * parse(serialized)["x"] + module.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress_x_to_y2(serialized):
        return {"outputs": module.a * parse(serialized)["x"] + module.c}

    signatures = {
        "serving_default": predict,
        "classify_x_to_y": classify_x_to_y,
        "regress_x_to_y": regress_x_to_y,
        "regress_x_to_y2": regress_x_to_y2,
    }
    module.functions = list(signatures.values())
    tf.saved_model.save(module, str(base / str(version)), signatures=signatures)
    return base


def example(**features: float) -> tf.train.Example:
    """A tf.Example with one float per named feature."""
    result = tf.train.Example()
    for name, value in features.items():
        result.features.feature[name].float_list.value.append(value)
    return result
