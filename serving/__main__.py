"""`python -m serving`: run the local TF-Serving-compatible model server.

Start-up follows tensorflow_model_server's main(): flags, then the checks
Server::BuildAndStart makes, the config files, the models (waited for, with their load
retries, before anything listens), then gRPC (TCP port and/or UNIX socket) and REST.
Whatever stops the start is printed as "Failed to start server. Error: CODE: message"
on stdout and the process exits with status 255, as TF Serving's does.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import sys
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from training import tflog

with tflog.quiet_import():  # TensorFlow's start-up log, unless TF_CPP_MIN_LOG_LEVEL is set
    from tensorflow.core.protobuf import config_pb2

    from serving import batching, batching_options, flags, metrics, rest, warmup
    from serving import config as config_lib
    from serving import servable as servable_lib
    from serving.manager import Manager, Options
    from serving.servable import ServingError
    from serving.server import SHUTDOWN_GRACE_SECONDS, ModelServer
    from serving.services import PredictionService

log = logging.getLogger("serving")


class StartupError(Exception):
    """Why the server cannot start, as TF Serving words it: a status code and text."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")


def main(argv: list[str] | None = None) -> int:
    args = flags.parse(argv)
    configure_logging()
    if args.version:
        return print_version()
    try:
        return asyncio.run(serve(args, prepare(args)))
    except StartupError as exc:
        print(f"Failed to start server. Error: {exc}", flush=True)
        return flags.EXIT_FAILURE


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s.%(msecs)03d %(levelname).1s serving] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    # TensorFlow's Python logger repeats the loader's progress ("Restoring parameters")
    # at INFO; this server logs each load itself.
    logging.getLogger("tensorflow").setLevel(logging.WARNING)


def print_version() -> int:
    """--version, worded as tensorflow_model_server words it."""
    import tensorflow as tf

    from serving import __version__

    print(
        f"TensorFlow ModelServer (local, Python): {__version__}\n"
        f"TensorFlow Library: {tf.__version__}"
    )
    return 0


class Configs:
    """What the flags' config files and TensorFlow options say, read before anything
    loads or listens, so that a bad file stops the start-up at once."""

    def __init__(self, args):
        self.model_config = (
            config_lib.read_model_config(args.model_config_file)
            if args.model_config_file
            else config_lib.single_model(args.model_name, args.model_base_path)
        )
        self.ssl = (
            config_lib.read_ssl_config(args.ssl_config_file) if args.ssl_config_file else None
        )
        self.monitoring = (
            config_lib.read_monitoring_config(args.monitoring_config_file)
            if args.monitoring_config_file
            else None
        )
        self.session_config = session_config(args)
        self.batching = None
        if args.enable_batching:
            self.batching = (
                batching_options.read_batching_parameters(args.batching_parameters_file)
                if args.batching_parameters_file
                else batching_options.BatchingOptions()
            )


def session_config(args) -> config_pb2.ConfigProto:
    """TF Serving's SessionConfig: the file's, then the thread flags over it (both
    intra/inter when either is set, else --tensorflow_session_parallelism for both)."""
    config = config_pb2.ConfigProto(allow_soft_placement=True)
    if args.tensorflow_session_config_file:
        config_lib.read_text_proto(args.tensorflow_session_config_file, config)
    intra, inter = args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism
    if intra <= 0 and inter <= 0:
        intra = inter = args.tensorflow_session_parallelism
    # Passed on as given, like TF Serving: a negative inter-op value is TensorFlow's
    # "run every op in the caller's thread" (no hand-off to an inter-op pool per run).
    config.intra_op_parallelism_threads = intra
    config.inter_op_parallelism_threads = inter
    return config


def prepare(args) -> tuple[Configs, Manager]:
    """Flags checked, config files read, every model loaded: or StartupError."""
    problem = flags.startup_error(args)
    if problem:
        raise StartupError("INVALID_ARGUMENT", problem)
    for name in args.ignored:
        log.warning("--%s is accepted for compatibility and has no effect here", name)
    try:
        configs = Configs(args)
    except config_lib.ConfigError as exc:
        raise StartupError(exc.code.name, str(exc)) from None
    servable_lib.configure(
        configs.session_config, method_name_check=args.enable_signature_method_name_check
    )
    manager = build_manager(args)
    try:
        manager.apply_config(configs.model_config, require_available=False)
        manager.await_available(max(args.file_system_poll_wait_seconds, 1))
    except ServingError as exc:
        raise StartupError(exc.code.name, exc.message) from None
    if configs.batching is not None:
        log.info("Batching enabled: %s", configs.batching)
    return configs, manager


def build_manager(args) -> Manager:
    """The model manager with the loading flags: warm-up, retries, tags, labels."""
    return Manager(
        Options(
            enable_warmup=args.enable_model_warmup,
            allow_version_labels_for_unavailable_models=(
                args.allow_version_labels_for_unavailable_models
            ),
            max_num_load_retries=args.max_num_load_retries,
            load_retry_interval_s=max(args.load_retry_interval_micros, 0) / 1e6,
            saved_model_tags=tuple(args.tags),
        ),
        warmup=functools.partial(
            warmup.replay, iterations=max(args.num_request_iterations_for_warmup, 1)
        ),
    )


# Collections of the youngest generation, every this many new container objects (Python's
# default is 700). Each request allocates a few dozen (its task, futures, coroutine frames).
GC_YOUNG_THRESHOLD = 20_000


def settle_garbage_collector() -> None:
    """Keep Python's garbage collector from pausing the event loop under load.

    TensorFlow and the loaded models leave about a million Python objects behind, and
    every full collection walked them all: 150 to 250 ms with the loop stopped, which
    was the p99 of a loaded server (make bench, concurrency 64: p99 249 ms, 72 to 87 ms
    without those pauses). Freezing what exists once the server is up takes it out of
    every later collection (it lives as long as the process anyway), and a larger
    young-generation threshold makes collections rarer without letting garbage grow:
    reference counting still frees almost everything at once. The cost: cycles among the
    frozen objects are never collected, so the Python side of the versions loaded at
    start-up stays in memory after they are unloaded (once per process, not per update).
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


async def serve(args, ready: tuple[Configs, Manager]) -> int:
    """Listen (gRPC, then REST), poll for new versions, and run until a signal stops it."""
    configs, manager = ready
    batcher = batching.Batcher(configs.batching) if configs.batching is not None else None
    executor = ThreadPoolExecutor(args.grpc_max_threads, thread_name_prefix="predict")
    prediction = PredictionService(
        manager,
        executor,
        batcher,
        as_content=args.enable_serialization_as_tensor_content,
        max_rows=args.max_request_rows,
    )
    server = await start_grpc(args, configs, manager, prediction)
    if args.rest_api_port:
        await start_rest(args, configs, manager, server, prediction)
    elif configs.monitoring is not None:
        log.warning(
            "--monitoring_config_file: metrics are served on the REST port, "
            "and --rest_api_port is not set"
        )
    server.stop_on_signals()
    settle_garbage_collector()
    start_polling(args, manager)
    await server.wait()
    if batcher is not None:
        batcher.stop()
    executor.shutdown(wait=False)
    return 0


async def start_grpc(
    args, configs: Configs, manager: Manager, prediction: PredictionService
) -> ModelServer:
    server = ModelServer(
        manager,
        prediction,
        channel_arguments=args.channel_arguments,
        enable_health=args.enable_grpc_healthcheck_service,
        ssl=configs.ssl,
        max_request_bytes=args.max_request_bytes,
        address=args.listen_address,
    )
    manager.listeners.append(server.refresh_health)
    try:
        await server.start(args.port, socket_path=args.grpc_socket_path)
    except OSError as exc:
        raise StartupError("UNAVAILABLE", str(exc)) from None
    return server


def start_polling(args, manager: Manager) -> None:
    """Base paths, and the config file when there is one, on the flags' intervals."""
    config_file = args.model_config_file
    manager.start_polling(
        args.file_system_poll_wait_seconds,
        args.model_config_file_poll_wait_seconds if config_file else 0,
        (lambda: config_lib.read_model_config(config_file)) if config_file else None,
    )


async def start_rest(
    args, configs: Configs, manager: Manager, server: ModelServer, prediction: PredictionService
) -> None:
    if args.rest_api_port == args.port:  # TF Serving's wording; it carries on
        log.error(
            "server_options.http_port cannot be same as grpc_port. Please use a "
            "different port for HTTP/REST API. Skipped exporting HTTP/REST API."
        )
        return
    app = rest.build_app(
        manager,
        prediction.run_model,
        timeout_s=args.rest_api_timeout_in_ms / 1000,
        max_body_bytes=args.max_request_bytes,
        body_timeout_s=args.rest_api_body_timeout_in_ms / 1000,
        enable_cors=args.rest_api_enable_cors_support,
        on_request=lambda model, api, code, seconds: metrics.observe_request(
            model, api, "REST", code, seconds
        ),
    )
    add_metrics_route(app, configs, args.rest_api_port)
    try:
        runner = await rest.start(
            app,
            args.rest_api_port,
            shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
            host=args.listen_address.strip(),
            idle_timeout_s=args.rest_api_idle_timeout_in_ms / 1000,
        )
    except OSError as exc:
        log.error("Failed to start HTTP Server at localhost:%d: %s", args.rest_api_port, exc)
        return
    if configs.ssl is not None:  # as in TF Serving, whose HTTP server has no TLS
        log.warning(
            "--ssl_config_file secures gRPC only: the REST API on port %d is plaintext "
            "HTTP (put a TLS-terminating proxy in front of it, or bind it to a private "
            "address with --listen_address)",
            args.rest_api_port,
        )
    server.also_stop.append(lambda: rest.stop(runner))


def add_metrics_route(app: web.Application, configs: Configs, port: int) -> None:
    """Prometheus's scrape path on the REST port, when the monitoring config enables it."""
    prometheus = configs.monitoring.prometheus_config if configs.monitoring else None
    if prometheus is None or not prometheus.enable:
        return
    path = prometheus.path or metrics.DEFAULT_PATH

    async def expose(request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": metrics.CONTENT_TYPE}
        )

    app.router.add_get(path, expose)
    log.info("Prometheus metrics at http://localhost:%d%s", port, path)


if __name__ == "__main__":
    sys.exit(main())
