"""The TF Serving compatibility gate: does an export load in the server that will serve it?

TensorFlow promises backward compatibility only: a SavedModel written by TensorFlow 2.21
may use ops or attributes that the TensorFlow inside an older `tensorflow/serving` image
does not know (`Op type not registered ...`, `NodeDef mentions attribute ...`), and
nothing in the export or the deploy files says so until the pods fail to load the
version. The gate loads every export with the TensorFlow release of the pinned TF
Serving version (serving/tfserving.env) before anything is deployed: it runs the serving
signature on a sample and replays the warm-up records (see compat_check.py, which runs
inside that environment and imports nothing from here).

TF Serving X.Y.Z is built on TensorFlow X.Y.Z (its RELEASE.md says so for each release),
so the environment is `tensorflow==X.Y.Z` with `tensorflow-serving-api==X.Y.Z`, created
once per version under .cache/serving-compat/tf-X.Y.Z (SERVING_COMPAT_CACHE overrides the
directory; the container image ships it ready under /opt/serving-compat) and reused.

    python -m training.compat                     # every version under models/mnist
    python -m training.compat models/mnist/3 --serving-version 2.19.1 --serving-version 2.20.0
    python -m training.compat --prepare           # only create the environment

This module imports no TensorFlow, so the CLI starts at once; `training.export` calls
`gate_export` for each new version (SERVING_COMPAT=off skips it).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from serving.version_dirs import version_dirs

ROOT = Path(__file__).resolve().parents[1]
VERSION_FILE = ROOT / "serving" / "tfserving.env"
IMAGE_KEY = "TF_SERVING_IMAGE"
CHECK_SCRIPT = Path(__file__).with_name("compat_check.py")
DEFAULT_CACHE = ROOT / ".cache" / "serving-compat"
COMPLETE = ".complete"  # written last: an environment without it is half-made
INSTALL_TIMEOUT = 1800  # seconds; a TensorFlow wheel is ~600 MB
CHECK_TIMEOUT = 900

Log = Callable[[str], None]


class CompatError(RuntimeError):
    """The gate could not run (no environment, checker crashed); says nothing of the model."""


class GateFailed(RuntimeError):
    """An export does not load or run in the pinned TF Serving's TensorFlow."""


@dataclass(frozen=True)
class Result:
    export: str
    serving_version: str
    tensorflow: str
    passed: bool
    error: str | None = None
    warmup_records: int = 0
    warmup_batch_sizes: list[int] = field(default_factory=list)
    max_abs_diff: float | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def read_env_file(path: Path = VERSION_FILE) -> dict[str, str]:
    """KEY=VALUE lines, as both Compose (.env) and kustomize (envs:) read them."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip()
    return values


def pinned_image(path: Path = VERSION_FILE) -> str:
    try:
        return read_env_file(path)[IMAGE_KEY]
    except KeyError:
        raise CompatError(f"{path} does not set {IMAGE_KEY}") from None


def pinned_version(path: Path = VERSION_FILE) -> str:
    """The X.Y.Z tag of the pinned tensorflow/serving image."""
    image = pinned_image(path)
    tag = image.rpartition(":")[2]
    if not re.fullmatch(r"\d+\.\d+\.\d+", tag):
        raise CompatError(f"{path}: {IMAGE_KEY}={image} does not end in an X.Y.Z tag")
    return tag


def requirements(serving_version: str) -> list[str]:
    """TF Serving X.Y.Z runs TensorFlow X.Y.Z; its Python API package carries PredictionLog."""
    return [f"tensorflow=={serving_version}", f"tensorflow-serving-api=={serving_version}"]


def cache_root() -> Path:
    return Path(os.environ.get("SERVING_COMPAT_CACHE") or DEFAULT_CACHE)


def environment(serving_version: str, *, log: Log = _stderr) -> Path:
    """The Python of the cached environment for `serving_version`, created if missing."""
    if not re.fullmatch(r"\d+\.\d+\.\d+", serving_version):
        raise CompatError(f"TF Serving version {serving_version!r}: expected X.Y.Z")
    env_dir = cache_root() / f"tf-{serving_version}"
    try:
        return cached_environment(
            env_dir,
            requirements(serving_version),
            log=lambda message: log(f"serving compat: {message}"),
            cost="once per version: about 1-2 minutes and 2 GB",
        )
    except OSError as exc:  # e.g. a read-only cache directory in an image built without it
        raise CompatError(f"cannot create {env_dir}: {exc}") from exc


def installed_with(env_dir: Path) -> dict | None:
    """What a cached environment records (its requirements, install time, `pip freeze`),
    or None for a missing or half-made one."""
    try:
        return json.loads((env_dir / COMPLETE).read_text())
    except (OSError, ValueError):
        return None


def cached_environment(env_dir: Path, wanted: list[str], *, log: Log, cost: str) -> Path:
    """The Python of a virtual environment at `env_dir` holding exactly `wanted`, made
    with this project's Python if it is missing, half-made or made for other pins.

    A lock makes concurrent callers (two test sessions, `make -j`) wait for one creator;
    the COMPLETE marker, written last with the requirements, makes an interrupted or
    outdated creation start over. Used by the TF Serving gate and the peer benchmarks.
    """
    python = env_dir / "bin" / "python"
    if (installed_with(env_dir) or {}).get("requirements") == wanted:
        return python
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(env_dir.parent / f".{env_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (installed_with(env_dir) or {}).get("requirements") == wanted:
            return python
        if env_dir.exists():
            shutil.rmtree(env_dir)
        log(f"creating {env_dir} with {' '.join(wanted)} ({cost})")
        started = time.monotonic()
        _run([sys.executable, "-m", "venv", str(env_dir)])
        pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
        _run([*pip, "install", "--quiet", "--no-input", *wanted], timeout=INSTALL_TIMEOUT)
        frozen = _run([*pip, "freeze"])
        seconds = round(time.monotonic() - started, 1)
        (env_dir / COMPLETE).write_text(
            json.dumps(
                {"requirements": wanted, "seconds": seconds, "installed": frozen.split()},
                indent=2,
            )
        )
        log(f"{env_dir} ready in {seconds:.0f} s")
    return python


def _run(argv: list[str], timeout: float = 600) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CompatError(f"`{' '.join(argv[:4])} ...` failed: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise CompatError(f"`{' '.join(argv[:6])} ...` exited {done.returncode}:\n{tail}")
    return done.stdout


def check(exports: Iterable[Path], serving_version: str, *, log: Log = _stderr) -> list[Result]:
    """Every export loaded, sampled and warmed up in one process of that TensorFlow."""
    exports = [Path(e) for e in exports]
    python = environment(serving_version, log=log)
    with tempfile.TemporaryDirectory(prefix="serving-compat-") as tmp:
        out = Path(tmp) / "results.json"
        env = dict(os.environ)
        # CPU only: on a GPU training node the checker must not claim the GPU's memory.
        env.update({"CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"})
        # -I: neither PYTHONPATH nor the checker's own directory (this package) is
        # importable there, so only that environment's TensorFlow is.
        argv = [str(python), "-I", str(CHECK_SCRIPT), str(out), *map(str, exports)]
        try:
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=CHECK_TIMEOUT
            )
        except subprocess.TimeoutExpired as exc:
            raise CompatError(f"the checker ran over {CHECK_TIMEOUT} s") from exc
        except OSError as exc:  # the environment's Python is gone: delete it to recreate
            raise CompatError(f"cannot run {python}: {exc}") from exc
        if done.returncode != 0 or not out.is_file():
            tail = "\n".join(done.stderr.strip().splitlines()[-20:])
            raise CompatError(f"the checker exited {done.returncode}:\n{tail}")
        report = json.loads(out.read_text())
    return [
        Result(serving_version=serving_version, tensorflow=report["tensorflow"], **item)
        for item in report["results"]
    ]


def find_exports(paths: Iterable[Path]) -> list[Path]:
    """SavedModel directories: each path itself, or the numeric versions under a base path."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / "saved_model.pb").is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(p for _, p in sorted(version_dirs(path).items()))
    return found


def versions_to_check() -> list[str]:
    """The pinned version, plus any older ones SERVING_COMPAT_VERSIONS lists (oldest first)."""
    extra = list(filter(None, re.split(r"[,\s]+", os.environ.get("SERVING_COMPAT_VERSIONS", ""))))
    for version in extra:
        if not re.fullmatch(r"\d+\.\d+\.\d+", version):
            raise CompatError(f"SERVING_COMPAT_VERSIONS: {version!r} is not X.Y.Z")
    return sorted({pinned_version(), *extra}, key=version_key)


def gate_export(export_dir: Path, *, name: str | None = None, log: Log = print) -> dict:
    """The gate for one new export, as metrics.json records it.

    Raises GateFailed when the export does not load in the pinned TF Serving version.
    When the gate cannot run at all (no network for the first environment), the export
    goes ahead and the returned record says why it was not checked.
    """
    if os.environ.get("SERVING_COMPAT", "").strip().lower() in ("0", "off", "false", "no"):
        log("serving compat: skipped (SERVING_COMPAT=off)")
        return {"oldest_tf_serving_passed": None, "serving_compat": {"skipped": True}}
    pinned = pinned_version()
    results: dict[str, dict] = {}
    try:
        for version in versions_to_check():
            (result,) = check([export_dir], version, log=_stderr)
            if name:  # the checked directory is still the unpublished temporary one
                result = replace(result, export=name)
            results[version] = {
                k: v for k, v in asdict(result).items() if k not in ("export", "serving_version")
            }
            log(describe(result))
    except CompatError as exc:
        _stderr(f"warning: the TF Serving compatibility gate did not run: {exc}")
        return {
            "oldest_tf_serving_passed": None,
            "serving_compat": {"pinned": pinned, "results": results, "error": str(exc)},
        }
    if not results[pinned]["passed"]:
        raise GateFailed(
            f"the export does not load in TF Serving {pinned} (serving/tfserving.env): "
            f"{results[pinned]['error']}\nSERVING_COMPAT=off exports without this check."
        )
    passed = [v for v in results if results[v]["passed"]]
    return {
        "oldest_tf_serving_passed": min(passed, key=version_key),
        "serving_compat": {"pinned": pinned, "results": results},
    }


def describe(result: Result) -> str:
    head = f"TF Serving {result.serving_version} (tensorflow {result.tensorflow}): "
    notes = "".join(f"\n    warning: {w}" for w in result.warnings)
    if not result.passed:
        return f"{head}FAIL {result.export}\n    {result.error}{notes}"
    sizes = sorted(set(result.warmup_batch_sizes))
    diff = "" if result.max_abs_diff is None else f", max |diff| {result.max_abs_diff:.2g}"
    return (
        f"{head}PASS {result.export}: loads, signature runs, "
        f"{result.warmup_records} warm-up records replayed (batch sizes "
        f"{', '.join(map(str, sizes)) or 'none'}{diff}) in {result.seconds:.1f} s{notes}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.compat", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[ROOT / "models" / "mnist"],
        help="SavedModel version directories or base paths (default: models/mnist)",
    )
    parser.add_argument(
        "--serving-version",
        action="append",
        dest="versions",
        help="TF Serving X.Y.Z to check against (repeatable; default: serving/tfserving.env)",
    )
    parser.add_argument(
        "--prepare", action="store_true", help="only create the cached environment(s)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    try:
        versions = sorted(set(args.versions or [pinned_version()]), key=version_key)
        for version in versions:
            if not re.fullmatch(r"\d+\.\d+\.\d+", version):
                parser.error(f"--serving-version {version}: expected X.Y.Z")
        if args.prepare:
            for version in versions:
                print(environment(version))
            return 0
        exports = find_exports(args.paths)
        if not exports:
            parser.error(
                f"no SavedModel under {' '.join(map(str, args.paths))} "
                "(train one first: make train, or python -m training)"
            )
        results = [r for version in versions for r in check(exports, version)]
    except CompatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for result in results:
        print(describe(result))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    failed = [r for r in results if not r.passed]
    print(
        f"{len(results) - len(failed)} passed, {len(failed)} failed "
        f"({len(exports)} export(s) x TF Serving {', '.join(versions)})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
