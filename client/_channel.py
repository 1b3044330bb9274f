"""Building the gRPC channel: targets, load balancing, message limits, TLS, retries.

A single long-lived HTTP/2 connection is what gRPC keeps per address, so behind a plain
Kubernetes ClusterIP Service every request from one client lands on one replica. To
spread load, the client must see every replica's address and balance itself: a
`dns:///` name of a headless Service (re-resolved by gRPC) or a list of addresses, both
with the round_robin policy.
"""

from __future__ import annotations

import ipaddress
import json
import random
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from client.errors import ClientError, UsageError, UsageTypeError

DEFAULT_TARGET = "localhost:8500"
DEFAULT_PORT = 8500  # TF Serving's gRPC port
# gRPC refuses messages over 4 MB by default: about 1,300 MNIST images per Predict.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
RECONNECT_BACKOFF_MS = (100, 2000)  # first and longest wait before reconnecting
# How long one connection attempt may take (TCP, TLS, and the server's first HTTP/2
# frames), as gRPC core's "grpc.min_reconnect_backoff_ms": despite the name, it is the
# minimum connect timeout, not a backoff. Calls wait while a connection is being made,
# so their own timeouts are what bound connecting; this only has to be longer than any
# of them is likely to be. 20 s is gRPC's default. (At 100 ms, every attempt over a
# 400 ms round trip timed out, and calls failed UNAVAILABLE in a second.)
MIN_CONNECT_TIMEOUT_MS = 20_000
# Round robin over every address, skipping servers whose grpc.health.v1 status is not
# SERVING: a server that is shutting down says so first, and stops getting new calls
# before it closes (calls it would otherwise cancel). Servers without the health service
# count as healthy.
ROUND_ROBIN = json.dumps(
    {"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": ""}}
)


@dataclass(frozen=True)
class TLSConfig:
    """Files for a TLS channel: `ca` to verify the server (default: system roots),
    `cert` and `key` for mutual TLS, `server_name` when it differs from the target host.
    """

    ca: str | Path | None = None
    cert: str | Path | None = None
    key: str | Path | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.cert is None) != (self.key is None):
            raise UsageError("TLS client authentication needs both cert and key, or neither")
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca, "CA certificate"),
            private_key=_read(self.key, "private key"),
            certificate_chain=_read(self.cert, "certificate"),
        )


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of UNAVAILABLE calls, with capped exponential backoff and jitter.

    Only UNAVAILABLE is retried: it means the request did not reach a working server
    (connection refused, replica restarting), so sending it again is safe and likely to
    succeed. Any other failure would fail the same way again. Jitter keeps many clients
    that failed together from retrying in lockstep.
    """

    retries: int = 3  # attempts after the first
    initial_backoff: float = 0.1  # seconds
    max_backoff: float = 2.0
    multiplier: float = 2.0

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """Seconds to wait before each retry: between half and all of the capped backoff."""
        rng = rng or random.Random()
        for attempt in range(self.retries):
            ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier**attempt)
            yield ceiling * rng.uniform(0.5, 1.0)


ChannelOption = tuple[str, str | int]


@dataclass(frozen=True)
class ChannelSpec:
    """What to pass to grpc.*_channel: the resolved target, options, credentials and
    interceptors (grpc's for Client, grpc.aio's for AsyncClient)."""

    target: str
    options: tuple[ChannelOption, ...]
    credentials: grpc.ChannelCredentials | None
    interceptors: tuple[Any, ...] = ()


def channel_spec(
    target: str,
    *,
    tls: TLSConfig | bool | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    options: Sequence[ChannelOption] = (),
    interceptors: Sequence[Any] = (),
) -> ChannelSpec:
    """The channel for `target`; `options` are gRPC channel arguments that replace the
    client's own of the same name (one value per name, so which one wins is not left to
    gRPC core), or add to them."""
    resolved, balanced = resolve_target(target)
    ours: list[ChannelOption] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        # After a failed connection gRPC waits ~1 s, growing to 2 min, before trying again,
        # and fails calls fast meanwhile; a restarted server would outlast our retries.
        ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[0]),
        ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[1]),
        ("grpc.min_reconnect_backoff_ms", MIN_CONNECT_TIMEOUT_MS),
    ]
    if balanced:
        ours.append(("grpc.service_config", ROUND_ROBIN))
    credentials = None
    if tls:
        config = TLSConfig() if tls is True else tls
        credentials = config.credentials()
        if config.server_name:
            ours.append(("grpc.ssl_target_name_override", config.server_name))
    merged = dict(ours) | dict(_checked_options(options))
    return ChannelSpec(resolved, tuple(merged.items()), credentials, tuple(interceptors))


def _checked_options(options: Sequence[ChannelOption]) -> list[ChannelOption]:
    pairs = list(options) if isinstance(options, list | tuple) else [options]
    for pair in pairs:
        name, value = pair if isinstance(pair, tuple) and len(pair) == 2 else (None, None)
        if not (isinstance(name, str) and name) or not _option_value(value):
            raise UsageTypeError(
                "channel_options must be (name, str or int value) pairs such as "
                f"[('grpc.use_local_subchannel_pool', 1)], got {pair!r}"
            )
    return pairs


def _option_value(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def open_channel(spec: ChannelSpec) -> grpc.Channel:
    if spec.credentials is None:
        channel = grpc.insecure_channel(spec.target, options=spec.options)
    else:
        channel = grpc.secure_channel(spec.target, spec.credentials, options=spec.options)
    return grpc.intercept_channel(channel, *spec.interceptors) if spec.interceptors else channel


def open_aio_channel(spec: ChannelSpec) -> grpc.aio.Channel:
    interceptors = spec.interceptors or None
    if spec.credentials is None:
        return grpc.aio.insecure_channel(
            spec.target, options=spec.options, interceptors=interceptors
        )
    return grpc.aio.secure_channel(
        spec.target, spec.credentials, options=spec.options, interceptors=interceptors
    )


def resolve_target(target: str) -> tuple[str, bool]:
    """A gRPC target string for `target`, and whether to balance round-robin over it.

    Accepts "host:port" (port defaults to 8500), "dns:///name:port", any other gRPC URI
    ("ipv4:", "unix:", ...), or several "host:port" joined by commas. A list of names is
    resolved once, here, into one "ipv4:"/"ipv6:" target of all their addresses.
    """
    target = target.strip()
    if not target:
        raise UsageError("empty server target; expected host:port")
    if "://" in target or target.startswith(("ipv4:", "ipv6:", "unix:", "unix-abstract:")):
        return target, target.startswith("dns:") or "," in target
    parts = [p.strip() for p in target.split(",") if p.strip()]
    if len(parts) == 1:
        host, port = _split(parts[0])
        return _join(host, port), False
    v4, v6 = [], []
    for part in parts:
        host, port = _split(part)
        for family, address in _addresses(host, port):
            (v4 if family == socket.AF_INET else v6).append(_join(address, port))
    # One target URI holds one address family; IPv4 is what Kubernetes pods have.
    if v4:
        return "ipv4:" + ",".join(dict.fromkeys(v4)), True
    return "ipv6:" + ",".join(dict.fromkeys(v6)), True


def _split(address: str) -> tuple[str, int]:
    if address.startswith("["):  # [::1]:8500
        host, _, rest = address[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif address.count(":") == 1:
        host, port_text = address.split(":")
    elif address.count(":") > 1:  # a bare IPv6 address
        host, port_text = address, ""
    else:
        host, port_text = address, ""
    if not host:
        raise UsageError(f"bad server address {address!r}; expected host:port")
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise UsageError(f"bad port in server address {address!r}") from None
    if not 0 < port < 65536:
        raise UsageError(f"bad port {port} in server address {address!r}")
    return host, port


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _addresses(host: str, port: int) -> list[tuple[int, str]]:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [(socket.AF_INET if ip.version == 4 else socket.AF_INET6, str(ip))]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ClientError(f"cannot resolve server host {host!r}: {exc}") from exc
    return [(family, str(sockaddr[0])) for family, _, _, _, sockaddr in infos]


def _read(path: str | Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ClientError(f"cannot read TLS {what} {path}: {exc.strerror or exc}") from exc
