"""The error every API answers with, and the bound on what it may echo back.

Kept free of TensorFlow so the REST API's JSON parser can run in a small worker process
that does not import it.
"""

from __future__ import annotations

import grpc

# The longest error message sent back, in UTF-8 bytes. Messages quote what the request
# said (a model name, a signature name, a JSON key); a request can make those megabytes
# long, and gRPC sends the message in a trailer whose size clients cap (8 KiB by
# default): an echo that large reaches the client as RESOURCE_EXHAUSTED instead of the
# error. 1 KiB stays under that cap even when every byte is percent-encoded (3x).
MAX_MESSAGE_BYTES = 1024
# How much of an over-long message's end is kept: the tail often says what was expected.
_TAIL_BYTES = 256
_NOTE_BYTES = 48  # room for " ... [N bytes left out] ... "


class ServingError(Exception):
    """An error with the gRPC status TF Serving would answer with."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self):  # picklable, so a worker process can raise it
        return type(self), (self.code, self.message)


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def bounded(message: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """`message` if it fits in `limit` UTF-8 bytes, else its start and end around a note
    of how much was left out. Both APIs pass every error message through this just
    before sending it, so no raise site has to remember to."""
    if len(message) * 4 <= limit:  # the common case, without encoding anything
        return message
    data = message.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return message
    head = limit - _TAIL_BYTES - _NOTE_BYTES
    note = f" ... [{len(data) - head - _TAIL_BYTES} bytes left out] ... "
    start = data[:head].decode("utf-8", "ignore")  # "ignore": no half characters
    end = data[-_TAIL_BYTES:].decode("utf-8", "ignore")
    return start + note + end
