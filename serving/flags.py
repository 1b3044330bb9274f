"""tensorflow_model_server's command line: same names, defaults, meanings and failures.

A deployment's flag list must run here unchanged, so every flag TF Serving has is
known: the ones this server implements, and the ones that have no meaning without a
GPU or TF Serving's C++ internals (accepted, logged as ignored).

Failures follow TensorFlow's flag parser, which TF Serving uses: a value that does not
parse is reported on stderr ("Couldn't interpret value ..."), the usage goes to stdout
and the process exits with status 255; an unknown argument is reported with the usage
on stdout and the server carries on without it.
"""

from __future__ import annotations

import argparse
import os
import sys

# main() returns -1 when the flags or the server's start fail: exit status 255.
EXIT_FAILURE = 255


class _FlagValueError(argparse.ArgumentTypeError):
    pass


def parse_bool(text: str) -> bool:
    """TensorFlow's bool flags: true/false (any case), 1/0."""
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise _FlagValueError(text)


def parse_int(text: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise _FlagValueError(text) from None


def parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _FlagValueError(text) from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # "argument --port: abc" -> TensorFlow's wording for a value it cannot parse.
        head, _, value = message.partition(": ")
        if head.startswith("argument --"):
            name = head.removeprefix("argument --").split("/")[0]
            if value.startswith("expected one argument"):
                value = ""
            message = f"Couldn't interpret value {value} for flag {name}."
        print(message, file=sys.stderr)
        self.print_usage(sys.stdout)
        sys.exit(EXIT_FAILURE)


# name -> (type, default, help). Booleans take `--flag`, `--flag=true|false`.
IMPLEMENTED: dict[str, tuple[type, object, str]] = {
    "port": (int, 8500, "TCP port for the gRPC API (0 disables it)"),
    # This server's own flags (TF Serving has none of these): bounds that keep one
    # request or one client from taking the server's memory or its connections.
    "listen_address": (
        str,
        "0.0.0.0",
        "address the gRPC and REST APIs listen on (TF Serving: every interface)",
    ),
    "max_request_bytes": (
        int,
        64 << 20,
        "largest gRPC request message and REST request body, in bytes (0: gRPC's 2 GiB, "
        "no REST limit)",
    ),
    "max_request_rows": (
        int,
        1024,
        "most rows (dimension 0) an input may have when requests are not batched (0: no limit)",
    ),
    "rest_api_idle_timeout_in_ms": (
        int,
        60000,
        "close a REST connection that has sent no complete request for this long "
        "(idle keep-alive, or headers still arriving; 0: never)",
    ),
    "rest_api_body_timeout_in_ms": (
        int,
        30000,
        "limit on receiving one REST request's body (0: none)",
    ),
    "model_name": (str, "default", "name of the model (ignored with --model_config_file)"),
    "model_base_path": (str, "", "absolute path holding numeric version directories"),
    "model_config_file": (str, "", "ModelServerConfig in protobuf text format"),
    "model_config_file_poll_wait_seconds": (
        int,
        0,
        "re-read --model_config_file this often (0: read once)",
    ),
    "file_system_poll_wait_seconds": (int, 1, "look for new versions this often (0: once)"),
    "enable_model_warmup": (bool, True, "replay assets.extra/tf_serving_warmup_requests"),
    "allow_version_labels_for_unavailable_models": (
        bool,
        False,
        "allow a new label to name a version that is not loaded yet",
    ),
    "max_num_load_retries": (int, 5, "retries after a failed load"),
    "load_retry_interval_micros": (int, 60_000_000, "wait between load retries"),
    "grpc_channel_arguments": (
        str,
        "",
        "comma-separated key=value gRPC server arguments; they win over this server's "
        "connection limits: grpc.server_handshake_timeout_ms=20000, "
        "grpc.max_connection_idle_ms=60000, grpc.keepalive_time_ms=60000, "
        "grpc.keepalive_timeout_ms=20000, and grpc.max_connection_age_ms=300000 with "
        "grpc.max_connection_age_grace_ms=60000, which close any connection within 6.5 "
        "minutes, even one trickling a request in (a call still running then fails with "
        "UNAVAILABLE)",
    ),
    "grpc_max_threads": (int, 0, "threads running unbatched requests (0: 4 x CPUs)"),
    "tensorflow_intra_op_parallelism": (int, 0, "threads inside one op (0: auto)"),
    "tensorflow_inter_op_parallelism": (int, 0, "ops run at once (0: auto)"),
    "tensorflow_session_parallelism": (
        int,
        0,
        "threads for both when neither of the two above is set",
    ),
    "tensorflow_session_config_file": (str, "", "ConfigProto in protobuf text format"),
    "num_request_iterations_for_warmup": (int, 0, "replays of each warm-up record (0: 1)"),
    "enable_grpc_healthcheck_service": (bool, False, "serve grpc.health.v1.Health"),
    "enable_serialization_as_tensor_content": (
        bool,
        False,
        "answer with tensor_content instead of typed value fields",
    ),
    "saved_model_tags": (str, "serve", "comma-separated MetaGraph tags to load"),
    "grpc_socket_path": (str, "", "also serve gRPC on this UNIX domain socket"),
    "enable_signature_method_name_check": (
        bool,
        False,
        "Classify/Regress accept only signatures with their own method_name",
    ),
    "ssl_config_file": (str, "", "SSLConfig in protobuf text format: serve gRPC over TLS"),
    "rest_api_port": (int, 0, "TCP port for the HTTP/REST API (0: none); not --port's"),
    "rest_api_timeout_in_ms": (int, 30000, "limit on one REST request (0: none)"),
    "rest_api_enable_cors_support": (bool, False, "add CORS headers to REST responses"),
    "monitoring_config_file": (
        str,
        "",
        "MonitoringConfig in protobuf text format: Prometheus on the REST port",
    ),
    "enable_batching": (bool, False, "batch concurrent requests server-side"),
    "batching_parameters_file": (
        str,
        "",
        "BatchingParameters in protobuf text format (needs --enable_batching)",
    ),
    "version": (bool, False, "print the version and exit"),
}

# Meaningful only for TF Serving's C++ runtime or a GPU; accepted so deployment flag
# lists run unchanged, and logged as ignored.
IGNORED: dict[str, type] = {
    "per_process_gpu_memory_fraction": float,
    "flush_filesystem_caches": bool,
    "num_load_threads": int,
    "num_unload_threads": int,
    "rest_api_num_threads": int,
    "enable_profiler": bool,
    "xla_cpu_compilation_enabled": bool,
    "remove_unused_fields_from_bundle_metagraph": bool,
    "thread_pool_factory_config_file": str,
    "mixed_precision": str,
    "skip_initialize_tpu": bool,
    "use_alts_credentials": bool,
    "prefer_tflite_model": bool,
    "num_tflite_pools": int,
    "num_tflite_interpreters_per_pool": int,
    "enable_per_model_batching_parameters": bool,
    "platform_config_file": str,
    "xla_gpu_compilation_enabled": bool,
}
_TYPES = {int: parse_int, float: parse_float, str: str}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m serving",
        description="A local stand-in for tensorflow_model_server: same flags, config "
        "files and gRPC API, for machines without Docker or the TF Serving binary.",
        allow_abbrev=False,
    )
    for name, (kind, default, help_text) in IMPLEMENTED.items():
        _add(parser, name, kind, default, f"{help_text} (default: {default!r})")
    for name, kind in IGNORED.items():
        _add(parser, name, kind, None, "accepted for compatibility; no effect here")
    return parser


def _add(parser: argparse.ArgumentParser, name: str, kind: type, default, help_text: str) -> None:
    if kind is bool:
        parser.add_argument(
            f"--{name}",
            type=parse_bool,
            nargs="?",
            const=True,
            default=default,
            metavar="true|false",
            help=help_text,
        )
    else:
        parser.add_argument(f"--{name}", type=_TYPES[kind], default=default, help=help_text)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not args.version:  # TF Serving says so, and starts without them
        print(f"unknown argument: {unknown[0]}")
        parser.print_usage(sys.stdout)
    args.tags = [t.strip() for t in args.saved_model_tags.split(",") if t.strip()]
    args.ignored = [n for n in IGNORED if getattr(args, n) is not None]
    if args.grpc_max_threads <= 0:
        args.grpc_max_threads = 4 * (os.cpu_count() or 1)
    return args


def startup_error(args: argparse.Namespace) -> str | None:
    """What TF Serving's Server::BuildAndStart refuses before loading anything, in its
    words (reported as "Failed to start server. Error: INVALID_ARGUMENT: ...")."""
    if args.port == 0 and not args.grpc_socket_path:
        return (
            "At least one of server_options.grpc_port or "
            "server_options.grpc_socket_path must be set."
        )
    if not args.model_base_path and not args.model_config_file:
        return "Both server_options.model_base_path and server_options.model_config_file are empty!"
    if args.batching_parameters_file and not args.enable_batching:
        return (
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true."
        )
    for name in ("port", "rest_api_port"):
        if not 0 <= getattr(args, name) <= 65535:
            return f"--{name} must be in 0..65535, got {getattr(args, name)}"
    for name in ("max_request_bytes", "max_request_rows"):
        if getattr(args, name) < 0:
            return f"--{name} must be 0 or more, got {getattr(args, name)}"
    if not args.listen_address.strip():
        return "--listen_address is empty (0.0.0.0: every IPv4 interface, :: every one)"
    threads = (
        args.tensorflow_intra_op_parallelism,
        args.tensorflow_inter_op_parallelism,
        args.tensorflow_session_parallelism,
    )
    if all(n > 0 for n in threads):
        return (
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, "
            "server_options.tensorflow_inter_op_parallelism) separately. "
            "You cannot configure all."
        )
    try:
        args.channel_arguments = parse_channel_arguments(args.grpc_channel_arguments)
    except ValueError as exc:
        return f"--grpc_channel_arguments: {exc}"
    return None


def parse_channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """'a=1,b=x' -> [('a', 1), ('b', 'x')]: 32-bit integers as ints, the rest as
    strings (TF Serving's rule). An item without '=' is an error (TF Serving crashes)."""
    result: list[tuple[str, int | str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {item!r}")
        try:
            number = int(value)
        except ValueError:
            result.append((key, value))
            continue
        result.append((key, number) if -(2**31) <= number < 2**31 else (key, value))
    return result
