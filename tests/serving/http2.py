"""Just enough HTTP/2 to act as a gRPC client over a raw socket, frame by frame: what a
misbehaving client sends (a request message a byte at a time), which no gRPC library
lets a test do. Header blocks use HPACK literals only (no table, no Huffman), which
every decoder takes."""

from __future__ import annotations

import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x4, 0x6, 0x7
ACK, END_HEADERS = 0x1, 0x4


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream)
        + payload
    )


def request_headers(path: str, stream: int = 1) -> bytes:
    """The HEADERS frame opening a gRPC call to `path` on `stream`."""
    fields = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    block = b"".join(_literal(name, value) for name, value in fields)
    return frame(HEADERS, END_HEADERS, stream, block)


def message_prefix(length: int) -> bytes:
    """gRPC's 5-byte prefix of an uncompressed message of `length` bytes."""
    return b"\x00" + struct.pack(">I", length)


def _literal(name: str, value: str) -> bytes:
    # "Literal Header Field without Indexing -- New Name", 7-bit lengths (< 127 bytes).
    raw_name, raw_value = name.encode(), value.encode()
    assert len(raw_name) < 127 and len(raw_value) < 127
    return b"\x00" + bytes([len(raw_name)]) + raw_name + bytes([len(raw_value)]) + raw_value


class FrameReader:
    """Frames out of a byte stream that arrives in arbitrary pieces."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """The (type, flags, payload) of every frame now complete."""
        self._buffer += data
        frames = []
        while len(self._buffer) >= 9:
            length = int.from_bytes(self._buffer[:3], "big")
            if len(self._buffer) < 9 + length:
                break
            kind, flags = self._buffer[3], self._buffer[4]
            frames.append((kind, flags, self._buffer[9 : 9 + length]))
            self._buffer = self._buffer[9 + length :]
        return frames
