"""The life cycle of a model version, as GetModelStatus reports it.

TF Serving's ModelVersionStatus.State numbers (tensorflow_serving/apis/
get_model_status.proto). The server keeps its versions in these states, and the client,
the smoke check and the tools read them back by number or by name; one definition keeps
"ready" meaning AVAILABLE everywhere.
"""

from __future__ import annotations

import enum


class State(enum.IntEnum):
    """ModelVersionStatus.State numbers, as GetModelStatus reports them."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50
