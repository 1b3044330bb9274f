"""MNIST loading: the project's offline copy by default, other sources on request.

The machines this project runs on cannot download MNIST, so the default is the
checked-in `data/mnist.npz`, verified by hash so a corrupted checkout fails loudly
instead of silently training on garbage.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract.mnist import scale as scale  # re-exported: tests and tools call data.scale

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "mnist.npz"
DEFAULT_SHA256 = "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"
KERAS = "keras"  # `--data keras`: Keras' own download, only when asked for explicitly

_KEYS = ("x_train", "y_train", "x_test", "y_test")
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DataError(ValueError):
    """The data source is missing or is not MNIST-shaped; the message names the path."""


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray  # (n, 28, 28) uint8
    y_train: np.ndarray  # (n,) uint8
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    sha256: str  # of the file read; for an IDX directory, of its four files in order


def load(path: str | Path | None = None) -> Mnist:
    """Load MNIST from `path` (default: the offline copy), checking shapes and labels."""
    if path is None:
        path = DEFAULT_PATH
    if str(path) == KERAS:
        return _load_keras()
    path = Path(path)
    if path.is_dir():
        arrays, digest = _load_idx_dir(path)
    elif path.is_file():
        arrays, digest = _load_npz(path)
        if path.resolve() == DEFAULT_PATH and digest != DEFAULT_SHA256:
            raise DataError(
                f"{path}: sha256 is {digest}, expected {DEFAULT_SHA256}; "
                "the offline copy is corrupted (restore it from ../shared/data/mnist.npz)"
            )
    else:
        raise DataError(
            f"{path}: no such file or directory; expected a Keras-layout .npz "
            f"({', '.join(_KEYS)}) or a directory with the four MNIST IDX files"
        )
    _check(arrays, path)
    return Mnist(**arrays, source=str(path), sha256=digest)


def _load_npz(path: Path) -> tuple[dict[str, np.ndarray], str]:
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _KEYS if k not in npz.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing}; expected {list(_KEYS)}")
            arrays = {k: npz[k] for k in _KEYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path}: not a readable .npz file ({exc}); expected a Keras-layout MNIST archive"
        ) from exc
    return arrays, digest


def _load_idx_dir(path: Path) -> tuple[dict[str, np.ndarray], str]:
    arrays, hasher = {}, hashlib.sha256()
    for key, stem in _IDX_FILES.items():
        candidates = [path / stem, path / f"{stem}.gz"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(f"{path}: missing {stem}[.gz]; expected the four MNIST IDX files")
        raw = found.read_bytes()
        hasher.update(raw)
        if found.suffix == ".gz":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError) as exc:
                raise DataError(f"{found}: corrupt gzip data ({exc})") from exc
        arrays[key] = parse_idx(raw, found)
    return arrays, hasher.hexdigest()


def parse_idx(raw: bytes, name: Path | str = "<bytes>") -> np.ndarray:
    """Decode one IDX file (the format MNIST is distributed in)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{name}: not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{name}: truncated or oversized IDX data: header declares shape {shape} "
            f"({expected} bytes), file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(np.uint8)


def _check(arrays: dict[str, np.ndarray], path: Path) -> None:
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{path}: x_{split} has shape {x.shape}, expected (n, 28, 28)")
        if y.shape != (x.shape[0],):
            raise DataError(f"{path}: y_{split} has shape {y.shape}, expected ({x.shape[0]},)")
        if x.shape[0] == 0:
            raise DataError(f"{path}: x_{split} is empty")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{path}: y_{split} has labels outside 0..9")
        arrays[f"x_{split}"] = x.astype(np.uint8, copy=False)
        arrays[f"y_{split}"] = y.astype(np.uint8, copy=False)


def _load_keras() -> Mnist:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:  # network errors come in many types
        raise DataError(f"keras download of MNIST failed: {exc}") from exc
    # load_data() caches the archive under KERAS_HOME; hash that copy for the record.
    cache = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "datasets" / "mnist.npz"
    digest = hashlib.sha256(cache.read_bytes()).hexdigest() if cache.is_file() else "unknown"
    return Mnist(x_train, y_train, x_test, y_test, source="keras", sha256=digest)
