"""The batcher against a fake model that records the batches it was given."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import grpc
import numpy as np
import pytest

from serving import batching, batching_options
from serving.config import ConfigError
from serving.servable import ServingError


class FakeModel:
    """Doubles its input; remembers batch sizes; can be slowed to let queues build."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.batches: list[int] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def run(self, signature, arrays):
        self.entered.set()
        self.release.wait(10)
        x = arrays["x"]
        self.batches.append(len(x))
        time.sleep(self.delay)
        return {"y": x * 2, "n": np.full(len(x), len(x))}


SIGNATURE = SimpleNamespace(name="serving_default", inputs={"x": None})


def make(**options) -> batching.Batcher:
    return batching.Batcher(batching_options.BatchingOptions(**options))


def rows(start: int, count: int) -> dict[str, np.ndarray]:
    return {"x": np.arange(start, start + count, dtype=np.float32)[:, None]}


def test_concurrent_requests_share_batches_and_keep_their_rows():
    model = FakeModel()
    batcher = make(max_batch_size=8, num_batch_threads=1)
    model.release.clear()  # hold the thread so a queue builds behind the first request
    first = batcher.submit(model, SIGNATURE, rows(0, 1))
    assert model.entered.wait(5)
    futures = [batcher.submit(model, SIGNATURE, rows(10 * i, 2)) for i in range(1, 5)]
    model.release.set()
    assert first.result(5)["y"].tolist() == [[0.0]]
    for i, future in enumerate(futures, start=1):
        result = future.result(5)
        assert result["y"][:, 0].tolist() == [20.0 * i, 20.0 * i + 2]  # its own rows, in order
    assert model.batches == [1, 8]  # the four 2-row requests queued meanwhile: one batch
    batcher.stop()


def test_idle_request_runs_at_once_with_no_timeout_wait():
    model = FakeModel()
    batcher = make(max_batch_size=64, batch_timeout_micros=0, num_batch_threads=1)
    started = time.perf_counter()
    batcher(model, SIGNATURE, rows(0, 1))
    assert time.perf_counter() - started < 0.5
    assert model.batches == [1]


def test_timeout_lets_a_batch_fill():
    model = FakeModel()
    batcher = make(max_batch_size=4, batch_timeout_micros=300_000, num_batch_threads=1)
    futures = [batcher.submit(model, SIGNATURE, rows(i, 1)) for i in range(4)]
    for f in futures:
        f.result(5)
    assert model.batches == [4]  # full before the timeout: run together


def test_padding_to_allowed_batch_sizes():
    model = FakeModel()
    batcher = make(max_batch_size=8, allowed_batch_sizes=(2, 4, 8), num_batch_threads=1)
    result = batcher(model, SIGNATURE, rows(0, 3))
    assert model.batches == [4]
    assert result["y"].shape == (3, 1)  # padding rows are dropped


def test_large_request_is_split_and_reassembled():
    model = FakeModel()
    batcher = make(
        max_batch_size=100,
        enable_large_batch_splitting=True,
        max_execution_batch_size=8,
        num_batch_threads=1,
    )
    result = batcher(model, SIGNATURE, rows(0, 20))
    assert model.batches == [8, 8, 4]
    assert result["y"][:, 0].tolist() == [2.0 * i for i in range(20)]


def test_too_large_request_is_invalid_argument():
    batcher = make(max_batch_size=4)
    with pytest.raises(ServingError) as info:
        batcher(FakeModel(), SIGNATURE, rows(0, 5))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.message == "Task size 5 is larger than maximum input batch size 4"


def test_full_queue_is_unavailable_not_unbounded():
    model = FakeModel()
    model.release.clear()
    batcher = make(max_batch_size=2, max_enqueued_batches=2, num_batch_threads=1)
    running = batcher.submit(model, SIGNATURE, rows(0, 2))
    assert model.entered.wait(5)  # the thread took it and is blocked in the model
    queued = [batcher.submit(model, SIGNATURE, rows(0, 2)) for _ in range(2)]  # 2 batches fit
    with pytest.raises(ServingError) as info:
        batcher.submit(model, SIGNATURE, rows(0, 1))
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert "batch scheduling queue to which this task was submitted is full" in info.value.message
    model.release.set()
    for f in [running, *queued]:
        assert f.result(5)["y"].shape == (2, 1)  # nothing queued was lost


def test_model_errors_reach_every_request_in_the_batch():
    class Broken(FakeModel):
        def run(self, signature, arrays):
            raise ServingError(grpc.StatusCode.INTERNAL, "boom")

    batcher = make(max_batch_size=8, num_batch_threads=1)
    with pytest.raises(ServingError, match="boom"):
        batcher(Broken(), SIGNATURE, rows(0, 2))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.float32(1.0), "z": np.zeros(2)}, "must have at least one dimension"),
        ({"x": np.zeros((2, 1)), "z": np.zeros((3, 1))}, "must have equal 0th-dimension size"),
    ],
)
def test_unbatchable_inputs(arrays, message):
    with pytest.raises(ServingError, match=message):
        make()(FakeModel(), SimpleNamespace(name="s", inputs={"x": 0, "z": 0}), arrays)


def test_parameters_file_in_tf_serving_format(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text(
        "# comment\nmax_batch_size { value: 128 }\nbatch_timeout_micros { value: 500 }\n"
        "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 4 }\n"
        "allowed_batch_sizes: 32\nallowed_batch_sizes: 128\n"
    )
    options = batching_options.read_batching_parameters(path)
    assert (options.max_batch_size, options.batch_timeout_micros, options.num_batch_threads) == (
        128,
        500,
        2,
    )
    assert options.allowed_batch_sizes == (32, 128)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_batch_size { value: 0 }", "max_batch_size must be >= 1"),
        ("max_batch_size { value: 64 }\nallowed_batch_sizes: 32", "must equal max_batch_size"),
        ("allowed_batch_sizes: 8\nallowed_batch_sizes: 4", "strictly increasing"),
        ("max_batch_size: 5", "Invalid protobuf file"),
        ("pad_variable_length_inputs: true", "not supported"),
    ],
)
def test_bad_parameters_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.config"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        batching_options.read_batching_parameters(path)
    assert str(path) in str(info.value)


def test_a_cancelled_caller_does_not_stall_the_others():
    model = FakeModel()
    model.release.clear()
    batcher = make(max_batch_size=8, num_batch_threads=1)
    blocker = batcher.submit(model, SIGNATURE, rows(0, 1))
    assert model.entered.wait(5)
    gave_up = batcher.submit(model, SIGNATURE, rows(10, 1))
    waiting = batcher.submit(model, SIGNATURE, rows(20, 1))
    assert gave_up.cancel()  # e.g. its gRPC deadline passed while queued
    model.release.set()
    assert blocker.result(5)["y"].tolist() == [[0.0]]
    assert waiting.result(5)["y"].tolist() == [[40.0]]
    assert model.batches == [1, 1]  # the cancelled row was not even run
    assert all(t.is_alive() for t in batcher._threads)


def test_async_callers_get_their_own_rows_and_mismatched_shapes_never_share_a_batch():
    # Rows of different trailing shapes cannot be stacked: they queue apart, and every
    # caller on the event loop gets its own rows back (settled once per batch).
    import asyncio

    model = FakeModel()
    batcher = make(max_batch_size=64, batch_timeout_micros=20_000, num_batch_threads=1)

    async def main():
        wide = {"x": np.arange(6, dtype=np.float32).reshape(2, 3)}
        narrow = [{"x": np.full((1, 2), i, np.float32)} for i in range(3)]
        futures = [batcher.submit_async(model, SIGNATURE, wide)]
        futures += [batcher.submit_async(model, SIGNATURE, a) for a in narrow]
        return await asyncio.gather(*futures)

    results = asyncio.run(main())
    batcher.stop()
    assert results[0]["y"].tolist() == (np.arange(6).reshape(2, 3) * 2).tolist()
    assert [r["y"].tolist() for r in results[1:]] == [[[0.0, 0.0]], [[2.0, 2.0]], [[4.0, 4.0]]]
    assert sorted(model.batches) == [2, 3]  # one batch per shape
