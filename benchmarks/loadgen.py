"""A lean gRPC load generator for benchmarks: its own process, almost no per-call work.

Requests are serialized once and sent as raw bytes over a few grpc.aio channels from N
concurrent loops; responses are checked for status only. The method path is a
parameter, so the same closed loops drive another server's API (`make bench-peers`:
MLServer's `/inference.GRPCInferenceService/ModelInfer`). What it prints (one JSON
line) includes its own CPU use, so a benchmark can show it was not the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time

import grpc
import numpy as np

PREDICT = "/tensorflow.serving.PredictionService/Predict"


async def run(
    target: str,
    payload: bytes,
    concurrency: int,
    duration: float,
    warmup: float,
    connections: int,
    method: str = PREDICT,
):
    # Several HTTP/2 connections (a local subchannel pool each: channels with equal
    # arguments would otherwise share one), so one connection's ordering does not
    # become the bottleneck at high concurrency.
    channels = [
        grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", -1),
                ("grpc.max_send_message_length", -1),
                ("grpc.use_local_subchannel_pool", 1),
            ],
        )
        for _ in range(min(connections, concurrency))
    ]
    try:
        calls = [c.unary_unary(method) for c in channels]  # bytes in and out: no protobuf work
        for call in calls:
            await call(payload, timeout=30)  # connect, and fail fast if the server is wrong
        latencies: list[float] = []
        errors: dict[str, int] = {}
        start = time.perf_counter()
        measure_from = start + warmup
        stop_at = measure_from + duration

        async def loop(call):
            while True:
                sent = time.perf_counter()
                if sent >= stop_at:
                    return
                try:
                    await call(payload, timeout=30)
                    ok = True
                except grpc.aio.AioRpcError as exc:
                    ok = False
                    errors[exc.code().name] = errors.get(exc.code().name, 0) + 1
                done = time.perf_counter()
                if ok and sent >= measure_from:
                    latencies.append(done - sent)

        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.gather(*(loop(calls[i % len(calls)]) for i in range(concurrency)))
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        for channel in channels:
            await channel.close()
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    lat = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / duration,
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
        "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
        "loadgen_cpu_percent": 100 * cpu / (duration + warmup),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    parser.add_argument("--target", required=True)
    parser.add_argument(
        "--request", required=True, help="file holding the serialized request (a PredictRequest)"
    )
    parser.add_argument("--method", default=PREDICT, help=f"gRPC method path (default {PREDICT})")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args(argv)
    with open(args.request, "rb") as f:
        payload = f.read()
    result = asyncio.run(
        run(
            args.target,
            payload,
            args.concurrency,
            args.duration,
            args.warmup,
            args.connections,
            args.method,
        )
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
