"""Which model versions are loaded, and how they come and go without failing requests.

All loading, unloading and config changes happen under one lock, one at a time. Requests
never take that lock: they read an immutable snapshot of what is AVAILABLE, which is
replaced whole after each change. A request that resolved version N keeps a reference
to it, so N finishes that request even if it is unloaded meanwhile; and a version is
unloaded only once a version the policy wants is AVAILABLE (availability preserving).

This module holds the lock and the transitions; what they are decided from (what a
base path holds, what the version policy wants, how a failed load is worded) is
serving.model_versions, and the thread that polls on TF Serving's intervals is
serving.poller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import grpc
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.config import model_server_config_pb2

from contract.states import State
from serving import metrics, model_versions, poller
from serving.config import model_configs
from serving.model_versions import Model, Version
from serving.servable import Servable, ServingError, invalid

log = logging.getLogger("serving")


@dataclass(frozen=True)
class Options:
    enable_warmup: bool = True
    allow_version_labels_for_unavailable_models: bool = False
    max_num_load_retries: int = 5
    load_retry_interval_s: float = 60.0
    saved_model_tags: tuple[str, ...] = ("serve",)


@dataclass(frozen=True)
class _View:
    """What requests see of one model: AVAILABLE versions and the label map."""

    available: MappingProxyType  # version -> Servable
    labels: MappingProxyType  # label -> version


Warmup = Callable[[Servable], None]


class Manager:
    def __init__(self, options: Options, warmup: Warmup | None = None):
        self.options = options
        self._warmup = warmup
        self._lock = threading.RLock()
        self._models: dict[str, Model] = {}
        self._views: MappingProxyType = MappingProxyType({})
        self._applied_config: model_server_config_pb2.ModelServerConfig | None = None
        # Called after every change of what is served (the health service listens).
        self.listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()  # ends the background poll (start_polling)

    # ---- requests (lock-free) ------------------------------------------------------

    def resolve(self, spec: model_pb2.ModelSpec) -> Servable:
        """The servable a request's ModelSpec names, with TF Serving's errors."""
        if not spec.name:
            raise invalid("ModelSpec has no name specified.")
        view = self._views.get(spec.name)
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            version = view.labels.get(spec.version_label) if view else None
            if version is None:
                raise invalid(f"Unrecognized servable version label: {spec.version_label}")
        elif choice == "version":
            version = spec.version.value
        else:
            version = max(view.available) if view and view.available else None
            if version is None:
                raise _not_found(f"Latest({spec.name})")
        servable = view.available.get(version) if view else None
        if servable is None:
            raise _not_found(f"Specific({spec.name}, {version})")
        return servable

    def is_ready(self) -> bool:
        """Every configured model has at least one AVAILABLE version."""
        views = self._views
        with self._lock:
            names = list(self._models)
        return bool(names) and all(views.get(n) and views[n].available for n in names)

    # ---- status --------------------------------------------------------------------

    def status(
        self, name: str, version: int | None = None
    ) -> list[tuple[int, State, ServingError | None]]:
        """(version, state, error) newest first, or NOT_FOUND as TF Serving words it."""
        with self._lock:
            model = self._models.get(name)
            versions = dict(model.versions) if model else {}
        if version is not None:
            if version not in versions:
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {name}"
                )
            versions = {version: versions[version]}
        if not versions:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}"
            )
        return [(v.number, v.state, v.error) for _, v in sorted(versions.items(), reverse=True)]

    def model_names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    # ---- configuration -------------------------------------------------------------

    def apply_config(
        self, config: model_server_config_pb2.ModelServerConfig, *, require_available: bool = True
    ) -> bool:
        """Load added models, unload removed ones, update policies and labels.

        The whole config is validated first; a config that fails validation changes
        nothing. Like TF Serving, labels are checked against what is AVAILABLE now, and
        a reload fails when an added model does not become available. At start-up
        (`require_available=False`) a model that fails to load is reported, not fatal.

        An empty config (no model list at all) changes nothing and returns False, as in
        TF Serving: a config file being rewritten (`>`) reads empty for a moment, and
        taking that as "no models" would unload every model.
        """
        if config.WhichOneof("config") is None:
            log.warning(
                "Taking no action for empty config: the models served stay as they are "
                "(an empty model config file is ignored)"
            )
            return False
        with self._lock:
            configs = model_configs(config)
            self._check_labels(configs)
            for name in [n for n in self._models if n not in configs]:
                model = self._models.pop(name)
                for version in sorted(model.versions.values(), key=lambda v: v.number):
                    if version.state == State.AVAILABLE:
                        self._unload(model, version)
                log.info("Removed model %s", name)
                self._publish()
            new_models = []
            for name, model_config in configs.items():
                model = self._models.get(name)
                if model is None:
                    model = self._models[name] = Model(model_config)
                    new_models.append(model)
                    log.info("Adding model %s from %s", name, model_config.base_path)
                else:
                    model.config = model_config
                self._reconcile(model)
            self._publish()
            metrics.set_model_names(self._models)
            self._applied_config = model_server_config_pb2.ModelServerConfig()
            self._applied_config.CopyFrom(config)
            failed = [
                m
                for m in new_models
                if not any(v.state == State.AVAILABLE for v in m.versions.values())
            ]
            if failed and require_available:
                raise model_versions.unavailable(failed)
        return True

    def await_available(self, poll_interval_s: float = 1.0) -> None:
        """Start-up, as TF Serving does it before it listens: wait until every model
        serves a version. A failed load is retried (--max_num_load_retries, every
        --load_retry_interval_micros) before it counts; a model with no version on
        disk yet is waited for. Raises TF Serving's UNKNOWN "did not become available"
        error once a model's load has failed for good."""
        while True:
            with self._lock:
                failed, waiting = [], []
                for model in self._models.values():
                    states = [v.state for v in model.versions.values()]
                    if State.AVAILABLE in states:
                        continue
                    exhausted = [
                        v
                        for v in model.versions.values()
                        if v.state == State.END
                        and v.error is not None
                        and v.failed_attempts > self.options.max_num_load_retries
                    ]
                    (failed if exhausted else waiting).append(model)
                if failed:
                    raise model_versions.unavailable(failed)
                if not waiting:
                    return
                retries = [
                    v.retry_at
                    for m in waiting
                    for v in m.versions.values()
                    if v.state == State.END and v.error is not None
                ]
            pause = poll_interval_s
            if retries:
                pause = min(pause, max(min(retries) - time.monotonic(), 0.0))
            time.sleep(max(pause, 0.05))
            self.poll()

    def _check_labels(self, configs: dict[str, model_server_config_pb2.ModelConfig]) -> None:
        for name, model_config in configs.items():
            model = self._models.get(name)
            current = model.labels() if model else {}
            for label, version in model_config.version_labels.items():
                available = model is not None and any(
                    v.number == version and v.state == State.AVAILABLE
                    for v in model.versions.values()
                )
                allowed = (
                    self.options.allow_version_labels_for_unavailable_models
                    and current.get(label, version) == version
                )
                if not available and not allowed:
                    raise ServingError(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"Request to assign label to version {version} of model {name}, "
                        "which is not currently available for inference",
                    )

    # ---- polling -------------------------------------------------------------------

    def poll(self) -> None:
        """One look at every base path: load what the policy wants, unload the rest."""
        with self._lock:
            for model in list(self._models.values()):
                self._reconcile(model)
            self._publish()

    def _reconcile(self, model: Model) -> None:
        on_disk = model_versions.scan(model)
        model_versions.renew_republished(model, on_disk)
        aspired = model_versions.aspired(model.config.model_version_policy, on_disk)
        now = time.monotonic()
        for number in sorted(aspired, reverse=True):
            version = model.versions.get(number)
            if version is None or (version.state == State.END and self._should_retry(version, now)):
                self._load(model, number, on_disk[number], version)
        if not aspired and on_disk is not None:
            keep = set()
        elif any(
            model.versions.get(n) and model.versions[n].state == State.AVAILABLE for n in aspired
        ):
            keep = set(aspired)
        else:
            return  # nothing the policy wants is serving yet: keep what serves now
        unload = [
            v
            for v in sorted(model.versions.values(), key=lambda v: v.number)
            if v.state == State.AVAILABLE and v.number not in keep
        ]
        for version in unload:
            self._unload(model, version)
        if unload and not keep:
            log.warning(
                "Model %s is now unavailable: no version its policy serves is left under %s",
                model.name,
                model.config.base_path,
            )

    def _should_retry(self, version: Version, now: float) -> bool:
        if version.error is None:
            return True  # unloaded earlier, wanted again
        return (
            version.failed_attempts <= self.options.max_num_load_retries and now >= version.retry_at
        )

    def _load(self, model: Model, number: int, path: Path, previous: Version | None) -> None:
        version = Version(number, path, State.LOADING, identity=model_versions.identity(path))
        if previous is not None:
            version.failed_attempts = previous.failed_attempts
        model.versions[number] = version
        log.info(
            "Loading servable version {name: %s version: %d} from %s", model.name, number, path
        )
        started = time.monotonic()
        try:
            try:
                servable = Servable(model.name, number, path, self.options.saved_model_tags)
            except Exception:
                metrics.observe_load(str(path), "ERROR")
                raise
            metrics.observe_load(str(path), "OK", time.monotonic() - started)
            if self.options.enable_warmup and self._warmup is not None:
                with metrics.timed_warmup(str(path)):
                    self._warmup(servable)
        except Exception as exc:  # a bad SavedModel must never take the server down
            version.state = State.END
            version.error = model_versions.load_error(exc, path)
            version.failed_attempts += 1
            version.retry_at = time.monotonic() + self.options.load_retry_interval_s
            log.error(
                "Loading servable version {name: %s version: %d} failed: %s",
                model.name,
                number,
                version.error.message,
            )
            return
        version.servable = servable
        version.state = State.AVAILABLE
        log.info(
            "Successfully loaded servable version {name: %s version: %d} in %.2f s",
            model.name,
            number,
            time.monotonic() - started,
        )
        self._publish()  # serve it at once; unloading the old one comes after

    def _unload(self, model: Model, version: Version) -> None:
        version.state = State.UNLOADING
        self._publish()  # new requests stop resolving to it; in-flight ones keep their reference
        version.servable = None
        version.state = State.END
        log.info("Unloaded servable version {name: %s version: %d}", model.name, version.number)
        self._publish()

    def _publish(self) -> None:
        views = {}
        for name, model in self._models.items():
            available = {
                v.number: v.servable
                for v in model.versions.values()
                if v.state == State.AVAILABLE and v.servable is not None
            }
            views[name] = _View(MappingProxyType(available), MappingProxyType(model.labels()))
        self._views = MappingProxyType(views)
        for listener in self.listeners:
            listener()

    # ---- background ----------------------------------------------------------------

    def start_polling(
        self,
        file_system_poll_wait_seconds: int,
        config_poll_wait_seconds: int = 0,
        read_config: Callable[[], model_server_config_pb2.ModelServerConfig] | None = None,
    ) -> threading.Thread | None:
        """Poll base paths (and the config file) until stop(); TF Serving's intervals."""
        return poller.start(
            self._stop,
            self.poll,
            file_system_poll_wait_seconds,
            (lambda: self.reload_config(read_config)) if read_config else None,
            config_poll_wait_seconds,
        )

    def reload_config(
        self, read_config: Callable[[], model_server_config_pb2.ModelServerConfig]
    ) -> None:
        """One config poll: apply the file if it differs from the config last applied.

        A rejected config is not remembered, so every poll tries it again, as TF Serving
        reloads its config file at each poll: a label naming a version that is still
        loading is accepted once that version is AVAILABLE. An unreadable or empty file
        changes nothing.
        """
        try:
            config = read_config()
        except Exception as exc:
            log.error("Cannot re-read the model config file: %s", exc)
            return
        with self._lock:
            if config == self._applied_config:
                return
        try:
            if self.apply_config(config):
                log.info("Applied the changed model config file")
        except ServingError as exc:
            log.error(
                "Rejected the changed model config file (tried again at the next poll): %s",
                exc.message,
            )

    def stop(self) -> None:
        """End the background poll, if one runs; a manager stopped stays stopped."""
        self._stop.set()


def _not_found(request: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request}")
