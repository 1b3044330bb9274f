"""Versioned, atomic SavedModel export in the shape TensorFlow Serving loads.

TF Serving polls the base path and loads any numeric directory it sees, even one that
is still being written. So a version is assembled in a hidden temporary directory
beside its target and renamed into place only once complete: the rename is atomic on
one file system, and the server either sees the whole version or nothing. An export that
is killed leaves its temporary directory behind; the next export in that base path
removes it (a lock tells an abandoned one from one still being written).

Before the rename, the version must pass the TF Serving compatibility gate
(training.compat): it is loaded with the TensorFlow of the pinned TF Serving release,
its signature run and its warm-up replayed there. A version that would not load in
production is never published; metrics.json records what passed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from contract.mnist import CLASSES, IMAGE_SHAPE, INPUT, PROBABILITIES
from serving.protos import server_configs_pb2
from serving.version_dirs import version_dirs
from training import compat

SIGNATURE = "serving_default"
WARMUP_FILE = "tf_serving_warmup_requests"
# The batching files the deployments run (docker-compose.yml, k8s/): the warm-up is
# derived from them, see warmup_batch_sizes().
SERVING_CONFIG_DIR = Path(__file__).resolve().parents[1] / "serving"
BATCHING_FILES = "batching_*.config"
TMP_PREFIX = ".tmp-"  # the temporary directories exports assemble versions in

log = logging.getLogger(__name__)


class ExportError(RuntimeError):
    """The export could not be written; nothing was left in the base path."""


def versions(base: str | Path) -> list[int]:
    """The version directories under `base`, ascending (anything else is ignored)."""
    base = Path(base)
    if not base.is_dir():
        return []
    return sorted(version_dirs(base))


def next_version(base: str | Path) -> int:
    existing = versions(base)
    return existing[-1] + 1 if existing else 1


def export(
    model: keras.Model,
    base: str | Path,
    version: int | None = None,
    *,
    warmup_images: np.ndarray,
    extra_files: Callable[[Path], None] | None = None,
) -> Path:
    """Write `model` as `<base>/<version>/` and return that path.

    `warmup_images` are float32 (n, 28, 28, 1) digits for the warm-up records.
    `extra_files(assets_extra)` may add files (metrics, plots) before the version appears.
    """
    base = Path(base)
    version = next_version(base) if version is None else version
    if version < 1:
        raise ExportError(f"version must be a positive integer, got {version}")
    target = base / str(version)
    if target.exists():
        raise ExportError(f"{target} already exists; versions are never overwritten")
    base.mkdir(parents=True, exist_ok=True)
    with _staging_dir(base, version) as tmp:
        _write_saved_model(model, tmp)
        assets_extra = tmp / "assets.extra"
        assets_extra.mkdir()
        # The written SavedModel computes the responses stored beside the warm-up
        # requests, so the gate compares TF Serving's TensorFlow with this exact graph.
        signature = tf.saved_model.load(str(tmp)).signatures[SIGNATURE]
        write_warmup(assets_extra / WARMUP_FILE, warmup_images, signature=signature)
        if extra_files is not None:
            extra_files(assets_extra)
        _serving_compat_gate(tmp, assets_extra / "metrics.json", name=str(target))
        # mkdtemp makes the directory private (0700); a server running as another user
        # (the TF Serving container) must be able to read the version.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        try:
            # rename() onto an existing non-empty directory fails, so two concurrent
            # exports of one version cannot overwrite each other.
            os.rename(tmp, target)
        except OSError as exc:
            raise ExportError(f"{target} appeared during the export: {exc}") from exc
    return target


@contextlib.contextmanager
def _staging_dir(base: Path, version: int) -> Iterator[Path]:
    """A new temporary directory in `base`, locked while this export uses it.

    A lock (flock) ends with the process holding it, so a temporary directory nobody
    holds was left by an export that was killed: those are removed first. The base
    path's lock makes "clean up, then create and lock" one step, so an export never
    takes a concurrent export's new directory for an abandoned one.
    """
    with contextlib.ExitStack() as stack:
        with _flocked(base):
            _remove_abandoned(base)
            tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{version}-", dir=base))
            stack.enter_context(_flocked(tmp))
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone already once renamed


@contextlib.contextmanager
def _flocked(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive flock on directory `path`; yields False when `wait` is False
    and another process holds it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def _remove_abandoned(base: Path) -> None:
    """Remove the temporary directories of exports that died before their rename."""
    for path in base.glob(f"{TMP_PREFIX}*"):
        if path.is_symlink() or not path.is_dir():
            continue
        try:
            with _flocked(path, wait=False) as abandoned:
                if abandoned:
                    shutil.rmtree(path, ignore_errors=True)
                    log.warning("Removed %s, left by an export that did not finish", path)
        except OSError:
            continue  # gone meanwhile, or not ours to open


def _write_saved_model(model: keras.Model, path: Path) -> None:
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(images):  # the argument's name is INPUT's, the signature's input key
        probabilities = model(images, training=False)
        return {PROBABILITIES: probabilities, CLASSES: tf.argmax(probabilities, axis=-1)}

    archive.add_endpoint(
        name=SIGNATURE,
        fn=serve,
        input_signature=[tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32, name=INPUT)],
    )
    archive.write_out(str(path), verbose=False)


def _serving_compat_gate(version_dir: Path, metrics_path: Path, name: str) -> None:
    """Run the gate on the unpublished version; record the versions in metrics.json."""
    try:
        record = compat.gate_export(version_dir, name=name)
    except compat.GateFailed as exc:
        raise ExportError(str(exc)) from exc
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    metrics["exported_with_tensorflow"] = tf.__version__
    metrics.update(record)
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def warmup_batch_sizes(config_dir: Path = SERVING_CONFIG_DIR) -> tuple[int, ...]:
    """Every batch shape the servers execute, by the rules of the batching files.

    TF Serving replays the warm-up records through the batching session, one at a time.
    With `allowed_batch_sizes`, every batch is padded up to the next allowed size, so
    those sizes are the only shapes the model ever runs: one record of each warms them
    all (a record of 128 is not split, 128 being max_execution_batch_size). Without
    them, a batch runs at its own size, up to max_execution_batch_size (max_batch_size
    without splitting): that largest shape is warmed, and 1, the lone request of an idle
    server. A shape missing here meets its first user cold (kernel selection and, on a
    GPU, cuDNN autotuning and memory allocation): a latency spike long after startup.
    """
    files = sorted(config_dir.glob(BATCHING_FILES))
    if not files:
        raise ExportError(f"no {BATCHING_FILES} in {config_dir}: cannot derive the warm-up")
    sizes = {1}
    for path in files:
        params = text_format.Parse(path.read_text(), server_configs_pb2.BatchingParameters())
        sizes.update(params.allowed_batch_sizes)
        splitting = params.enable_large_batch_splitting.value
        if splitting and params.HasField("max_execution_batch_size"):
            sizes.add(params.max_execution_batch_size.value)
        elif params.HasField("max_batch_size"):
            sizes.add(params.max_batch_size.value)
    return tuple(sorted(sizes))


def write_warmup(
    path: Path,
    images: np.ndarray,
    *,
    signature: Callable[..., dict[str, tf.Tensor]] | None = None,
    sizes: tuple[int, ...] | None = None,
) -> None:
    """Predict requests in the signature's format, as TF Serving replays them at load.

    With `signature`, each record also carries the response it computed: TF Serving
    ignores it, the compatibility gate compares against it.
    """
    with tf.io.TFRecordWriter(str(path)) as writer:
        for size in sizes or warmup_batch_sizes():
            batch = np.resize(images, (size, 28, 28, 1)).astype(np.float32)
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(signature_name=SIGNATURE),
                inputs={INPUT: tf.make_tensor_proto(batch)},
            )
            log = prediction_log_pb2.PredictLog(request=request)
            if signature is not None:
                outputs = signature(**{INPUT: tf.constant(batch)})
                log.response.model_spec.signature_name = SIGNATURE
                for name, value in outputs.items():
                    log.response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
            writer.write(prediction_log_pb2.PredictionLog(predict_log=log).SerializeToString())
