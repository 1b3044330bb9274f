"""Server-side batching's parameters: TF Serving's BatchingParameters file, its
defaults, and the combinations it refuses.

Apart from the batcher (serving.batching) because they are read at start-up, with the
other config files, before anything is loaded: a bad file stops the server there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from serving.config import ConfigError, read_text_proto
from serving.protos import server_configs_pb2


@dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's defaults (BasicBatchScheduler::Options) where the file is silent."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = os.cpu_count() or 1
    allowed_batch_sizes: tuple[int, ...] = ()
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int = 0  # 0: same as max_batch_size
    thread_pool_name: str = "model_server_batch_threads"  # TF Serving's default

    @property
    def execution_limit(self) -> int:
        """Rows in one executed batch (a split task may be larger on input)."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size:
            return self.max_execution_batch_size
        return self.max_batch_size

    def validate(self) -> BatchingOptions:
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"batching parameter {name} must be >= 1, got {getattr(self, name)}"
                )
        if self.batch_timeout_micros < 0:
            raise ConfigError("batching parameter batch_timeout_micros must be >= 0")
        if self.max_execution_batch_size < 0:
            raise ConfigError("batching parameter max_execution_batch_size must be >= 0")
        sizes = self.allowed_batch_sizes
        if sizes:
            if list(sizes) != sorted(set(sizes)) or sizes[0] < 1:
                raise ConfigError(
                    "allowed_batch_sizes must be positive and strictly increasing, "
                    f"got {list(sizes)}"
                )
            if sizes[-1] != self.execution_limit:
                limit_name = (
                    "max_execution_batch_size"
                    if self.enable_large_batch_splitting and self.max_execution_batch_size
                    else "max_batch_size"
                )
                raise ConfigError(
                    f"the last allowed_batch_sizes entry ({sizes[-1]}) must equal "
                    f"{limit_name} ({self.execution_limit})"
                )
        return self


def read_batching_parameters(path: str | Path) -> BatchingOptions:
    proto = read_text_proto(path, server_configs_pb2.BatchingParameters())
    if proto.pad_variable_length_inputs:
        raise ConfigError(
            f"'{path}': pad_variable_length_inputs is not supported by the local server"
        )
    defaults = BatchingOptions()
    values = {
        name: getattr(proto, name).value if proto.HasField(name) else getattr(defaults, name)
        for name in (
            "max_batch_size",
            "batch_timeout_micros",
            "max_enqueued_batches",
            "num_batch_threads",
            "enable_large_batch_splitting",
            "max_execution_batch_size",
        )
    }
    try:
        return BatchingOptions(
            **values, allowed_batch_sizes=tuple(proto.allowed_batch_sizes)
        ).validate()
    except ConfigError as exc:
        raise ConfigError(f"'{path}': {exc}") from exc
