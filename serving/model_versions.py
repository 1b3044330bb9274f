"""A model's versions as the manager tracks them, and what its base path offers.

The manager (serving.manager) decides under its lock when to load and unload; what it
decides from lives here: the record of each version and model, what a base path holds
now (TF Serving's FileSystemStoragePathSource: scanned at each poll, each problem
logged once rather than at every poll), which of those versions the model's version
policy wants, whether a version that failed to load has been published again, and
how a failed load is reported, in TF Serving's words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import message as pb_message
from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

from contract.states import State
from serving.errors import ServingError
from serving.servable import Servable, status_error
from serving.version_dirs import version_dirs

log = logging.getLogger("serving")

VersionPolicy = (
    file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy
)


@dataclass
class Version:
    number: int
    path: Path
    state: State = State.START
    servable: Servable | None = None
    error: ServingError | None = None
    failed_attempts: int = 0
    retry_at: float = 0.0
    # The directory loaded (inode, mtime): another one means the version was republished.
    identity: tuple[int, int] | None = None


@dataclass
class Model:
    config: model_server_config_pb2.ModelConfig
    versions: dict[int, Version] = field(default_factory=dict)
    missing_base_path_logged: bool = False
    no_versions_logged: bool = False

    @property
    def name(self) -> str:
        return self.config.name

    def labels(self) -> dict[str, int]:
        return dict(self.config.version_labels)


def scan(model: Model) -> dict[int, Path] | None:
    """The version directories under the model's base path, or None when it cannot be
    read; either problem (unreadable, no versions) is logged once until it changes."""
    base = Path(model.config.base_path)
    try:
        found = version_dirs(base)
    except OSError as exc:
        if not model.missing_base_path_logged:
            log.warning("Model %s: cannot read base path %s: %s", model.name, base, exc)
            model.missing_base_path_logged = True
        return None
    model.missing_base_path_logged = False
    if not found and not model.no_versions_logged:
        log.warning(
            "No versions of servable %s found under base path %s. Did you forget to "
            "name your leaf directory as a number (eg. '/1/')?",
            model.name,
            base,
        )
    model.no_versions_logged = not found
    return found


def aspired(policy: VersionPolicy, on_disk: dict[int, Path] | None) -> set[int]:
    """The versions on disk that the policy wants served (TF Serving's default: latest 1)."""
    if not on_disk:
        return set()
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return set(on_disk)
    if kind == "specific":
        return set(policy.specific.versions) & set(on_disk)
    count = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
    return set(sorted(on_disk)[-count:])


def identity(path: Path) -> tuple[int, int] | None:
    """What tells one copy of a version directory from another: a directory deleted
    and copied again has a new inode or, if the inode is reused, a new mtime."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def renew_republished(model: Model, on_disk: dict[int, Path] | None) -> None:
    """Give a failed version a fresh start once it is republished.

    TF Serving forgets a version whose load failed when the file system stops showing
    it, so a version deleted and copied again is loaded afresh, its retries renewed.
    A copy replaced between two polls counts too (its directory is another one);
    otherwise a version whose retries ran out is not loaded again.
    """
    if on_disk is None:
        return  # base path unreadable: nothing is known to be gone
    for version in model.versions.values():
        if version.state != State.END or version.error is None:
            continue
        path = on_disk.get(version.number)
        if path is None or identity(path) != version.identity:
            version.failed_attempts = 0
            version.retry_at = 0.0


def load_error(exc: Exception, path: Path) -> ServingError:
    """Why loading `path` failed, as the status TF Serving reports for the version."""
    import tensorflow as tf

    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, tf.errors.OpError):
        return status_error(exc)
    if isinstance(exc, FileNotFoundError):
        return ServingError(grpc.StatusCode.NOT_FOUND, str(exc))
    if isinstance(exc, pb_message.DecodeError):
        return ServingError(grpc.StatusCode.DATA_LOSS, f"Can't parse {path}/saved_model.pb: {exc}")
    return ServingError(grpc.StatusCode.UNKNOWN, f"{type(exc).__name__}: {exc}")


def unavailable(models: list[Model]) -> ServingError:
    """TF Serving's start-up/reload failure, listing each model's newest version and
    the error it failed with: {{name: m version: 3} due to error: NOT_FOUND: ...}."""
    details = ""
    for model in models:
        versions = sorted(model.versions.values(), key=lambda v: v.number)
        if not versions:
            details += f"{{{{name: {model.name}}} (no versions under {model.config.base_path})}}, "
            continue
        version = next((v for v in reversed(versions) if v.error is not None), versions[-1])
        reason = (
            f" due to error: {version.error.code.name}: {version.error.message}"
            if version.error is not None
            else ""
        )
        details += f"{{{{name: {model.name} version: {version.number}}}{reason}}}, "
    return ServingError(
        grpc.StatusCode.UNKNOWN, f"{len(models)} model(s) did not become available: {{{details}}}"
    )
