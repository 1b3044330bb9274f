"""Targets, load balancing, message limits, TLS credentials and the retry schedule."""

from __future__ import annotations

import json
import random
import socket
import time

import grpc
import pytest

from client import _channel as channel
from client._channel import (
    MAX_MESSAGE_BYTES,
    RetryPolicy,
    TLSConfig,
    channel_spec,
    resolve_target,
)
from client._sync import Client
from client.errors import ClientError
from tests.client.fake_server import fake_server, slow_link


@pytest.mark.parametrize(
    ("target", "resolved", "balanced"),
    [
        ("localhost:8500", "localhost:8500", False),
        ("model-server", "model-server:8500", False),  # TF Serving's port by default
        ("10.0.0.7:9000", "10.0.0.7:9000", False),
        ("[::1]:8500", "[::1]:8500", False),
        ("dns:///mnist-headless.default.svc:8500", "dns:///mnist-headless.default.svc:8500", True),
        ("ipv4:10.0.0.1:8500,10.0.0.2:8500", "ipv4:10.0.0.1:8500,10.0.0.2:8500", True),
        ("unix:/tmp/tfs.sock", "unix:/tmp/tfs.sock", False),
        ("10.0.0.1:8500, 10.0.0.2:8501", "ipv4:10.0.0.1:8500,10.0.0.2:8501", True),
        ("10.0.0.1,10.0.0.1:8500", "ipv4:10.0.0.1:8500", True),  # duplicates once
        ("[::1]:8500,[::2]:8500", "ipv6:[::1]:8500,[::2]:8500", True),
    ],
)
def test_targets(target, resolved, balanced):
    assert resolve_target(target) == (resolved, balanced)


def test_host_names_in_a_list_are_resolved(monkeypatch):
    def fake_getaddrinfo(host, port, type=0):
        table = {"a.example": ["10.1.0.1", "10.1.0.2"], "b.example": ["10.1.0.3"]}
        return [(socket.AF_INET, type, 6, "", (ip, port)) for ip in table[host]]

    monkeypatch.setattr(channel.socket, "getaddrinfo", fake_getaddrinfo)
    assert resolve_target("a.example:8500,b.example:8500") == (
        "ipv4:10.1.0.1:8500,10.1.0.2:8500,10.1.0.3:8500",
        True,
    )


def test_unresolvable_host_in_a_list(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(channel.socket, "getaddrinfo", fail)
    with pytest.raises(ClientError, match="cannot resolve server host 'nowhere'"):
        resolve_target("nowhere:8500,10.0.0.1:8500")


@pytest.mark.parametrize("target", ["", "  ", "host:port", "host:0", "host:70000", ":8500"])
def test_bad_targets(target):
    with pytest.raises(ClientError):
        resolve_target(target)


def test_options_raise_message_limits_and_balance_lists():
    single = channel_spec("localhost:8500")
    options = dict(single.options)
    assert options["grpc.max_send_message_length"] == MAX_MESSAGE_BYTES > 4 * 1024 * 1024
    assert options["grpc.max_receive_message_length"] == MAX_MESSAGE_BYTES
    assert "grpc.service_config" not in options
    assert single.credentials is None
    several = dict(channel_spec("10.0.0.1:8500,10.0.0.2:8500").options)
    config = json.loads(several["grpc.service_config"])
    assert config == {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": ""},  # skip servers that announce shutdown
    }


def test_channel_options_replace_the_client_s_own_or_add_to_them():
    extra = [("grpc.max_receive_message_length", 1024), ("grpc.use_local_subchannel_pool", 1)]
    spec = channel_spec("localhost:8500", options=extra)
    names = [name for name, _ in spec.options]
    assert len(names) == len(set(names))  # one value per name: gRPC core picks none
    options = dict(spec.options)
    assert options["grpc.max_receive_message_length"] == 1024
    assert options["grpc.max_send_message_length"] == MAX_MESSAGE_BYTES
    assert options["grpc.use_local_subchannel_pool"] == 1


def test_tls_credentials_are_built_from_the_files(tmp_path, monkeypatch):
    (tmp_path / "ca.pem").write_bytes(b"CA")
    (tmp_path / "client.pem").write_bytes(b"CERT")
    (tmp_path / "client.key").write_bytes(b"KEY")
    seen = {}
    real = grpc.ssl_channel_credentials

    def fake(root_certificates=None, private_key=None, certificate_chain=None):
        seen.update(root=root_certificates, key=private_key, chain=certificate_chain)
        return real()  # something real to hand to the channel

    monkeypatch.setattr(channel.grpc, "ssl_channel_credentials", fake)
    tls = TLSConfig(
        ca=tmp_path / "ca.pem",
        cert=tmp_path / "client.pem",
        key=str(tmp_path / "client.key"),
        server_name="mnist.internal",
    )
    spec = channel_spec("10.0.0.1:8500", tls=tls)
    assert seen == {"root": b"CA", "key": b"KEY", "chain": b"CERT"}
    assert isinstance(spec.credentials, grpc.ChannelCredentials)
    assert dict(spec.options)["grpc.ssl_target_name_override"] == "mnist.internal"
    channel.open_channel(spec).close()  # a secure channel is created (no connection yet)


def test_tls_true_uses_system_roots(monkeypatch):
    seen = {}
    real = grpc.ssl_channel_credentials

    def fake(**kwargs):
        seen.update(kwargs)
        return real()

    monkeypatch.setattr(channel.grpc, "ssl_channel_credentials", fake)
    spec = channel_spec("example.com:443", tls=True)
    assert seen == {"root_certificates": None, "private_key": None, "certificate_chain": None}
    assert spec.credentials is not None


def test_tls_mistakes_are_clear(tmp_path):
    with pytest.raises(ClientError, match="needs both cert and key"):
        TLSConfig(cert=tmp_path / "c.pem").credentials()
    with pytest.raises(ClientError, match=r"cannot read TLS CA certificate .*missing\.pem"):
        TLSConfig(ca=tmp_path / "missing.pem").credentials()


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    policy = RetryPolicy(retries=6, initial_backoff=0.1, max_backoff=1.0, multiplier=2.0)
    delays = list(policy.delays(random.Random(0)))
    assert len(delays) == 6
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    other = list(policy.delays(random.Random(1)))
    assert other != delays  # jittered: two clients do not retry in lockstep
    assert list(RetryPolicy(retries=0).delays()) == []


def test_a_slow_link_connects_within_the_calls_timeout():
    """Connecting is bounded by the call's timeout, not by a short connect timeout of
    gRPC's: over a link where the server's handshake takes 0.5 s, a 10 s call succeeds.
    (grpc.min_reconnect_backoff_ms is gRPC core's minimum connect timeout; at 100 ms
    every attempt timed out and the call failed UNAVAILABLE after its retries, ~1 s.)"""
    with (
        fake_server() as (target, _),
        slow_link(target, delay=0.5) as slow,
        Client(slow, timeout=10) as client,
    ):
        started = time.monotonic()
        assert client.status().available == (1,)
        assert 0.5 <= time.monotonic() - started < 5
