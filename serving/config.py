"""TF Serving's config files, read with TF Serving's own protos and text format, and
what a model config may say."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import grpc
from google.protobuf import message, text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.errors import ServingError, invalid
from serving.protos import server_configs_pb2

log = logging.getLogger("serving")


class ConfigError(ValueError):
    """A config file that cannot be read or parsed; the message names the file, and
    `code` is the status TF Serving reports it with."""

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT):
        super().__init__(message)
        self.code = code


def read_text_proto(path: str | Path, proto: message.Message) -> message.Message:
    """TF Serving's ParseProtoTextFile: the parser's own complaint goes to the log
    ("Error parsing text-format <message type>: line:column: ..."), the status names
    only the file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        code = (
            grpc.StatusCode.NOT_FOUND
            if isinstance(exc, FileNotFoundError)
            else grpc.StatusCode.FAILED_PRECONDITION
        )
        raise ConfigError(f"{path}; {exc.strerror or os.strerror(exc.errno or 0)}", code) from exc
    except UnicodeDecodeError as exc:
        log.error("Error parsing text-format %s: %s", proto.DESCRIPTOR.full_name, exc)
        raise ConfigError(f"Invalid protobuf file: '{path}'") from exc
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        log.error("Error parsing text-format %s: %s", proto.DESCRIPTOR.full_name, exc)
        raise ConfigError(f"Invalid protobuf file: '{path}'") from exc
    return proto


def read_model_config(path: str | Path) -> model_server_config_pb2.ModelServerConfig:
    return read_text_proto(path, model_server_config_pb2.ModelServerConfig())


def single_model(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
    """What --model_name/--model_base_path mean: a one-model list, latest version."""
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name=name, base_path=base_path, model_platform="tensorflow")
    return config


def model_configs(
    config: model_server_config_pb2.ModelServerConfig,
) -> dict[str, model_server_config_pb2.ModelConfig]:
    """The models a config lists, by name, once it is known to be one TF Serving accepts
    (a model list, each model named once, on the tensorflow platform, at an absolute
    base path); the first thing wrong is raised with TF Serving's status and words."""
    kind = config.WhichOneof("config")
    if kind == "custom_model_config":
        raise ServingError(
            grpc.StatusCode.FAILED_PRECONDITION,
            "Cannot transition to requested config. It is only legal to transition "
            "from one ModelConfigList to another.",
        )
    configs: dict[str, model_server_config_pb2.ModelConfig] = {}
    for model_config in config.model_config_list.config:
        name = model_config.name
        if name in configs:
            raise invalid(f"Illegal to list model {name} multiple times in config list")
        if not model_config.model_platform:
            raise invalid(
                "Illegal setting neither ModelServerConfig::model_type (deprecated) "
                "nor ModelServerConfig::model_platform."
            )
        if model_config.model_platform != "tensorflow":
            raise invalid(
                f"Model {name} requests unsupported platform {model_config.model_platform}"
            )
        if not Path(model_config.base_path).is_absolute():
            raise invalid(
                f"Expected model {name} to have an absolute path or URI; "
                f"got base_path()={model_config.base_path}"
            )
        configs[name] = model_config
    return configs


def read_ssl_config(path: str | Path) -> server_configs_pb2.SSLConfig:
    """TF Serving's SSLConfig: the PEM texts themselves, not paths to them."""
    ssl = read_text_proto(path, server_configs_pb2.SSLConfig())
    if not ssl.server_key or not ssl.server_cert:
        raise ConfigError(f"'{path}': server_key and server_cert (PEM text) are both required")
    for field in ("server_key", "server_cert", "custom_ca"):
        value = getattr(ssl, field)
        if value and "-----BEGIN" not in value:
            raise ConfigError(
                f"'{path}': {field} must hold the PEM text itself (-----BEGIN ...), "
                "as in TF Serving, not a file name"
            )
    if ssl.client_verify and not ssl.custom_ca:
        raise ConfigError(f"'{path}': client_verify needs custom_ca to verify clients against")
    return ssl


def read_monitoring_config(path: str | Path) -> server_configs_pb2.MonitoringConfig:
    return read_text_proto(path, server_configs_pb2.MonitoringConfig())
