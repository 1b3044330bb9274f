"""Server-side batching with TF Serving's BatchingParameters and their semantics.

Concurrent Predict calls on the same version and signature are queued as tasks (a task
is one request's rows) and run together as one batch. A free batch thread takes the
oldest queue's tasks as soon as they fill `max_batch_size` rows, or once the oldest has
waited `batch_timeout_micros`; with a timeout of 0 a free thread never waits, so an idle
server adds no latency and a busy one batches whatever arrived while it was busy. The
queue is bounded: past `max_enqueued_batches` batches a request is refused UNAVAILABLE,
as TF Serving refuses it, instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass

import grpc
import numpy as np

from serving import metrics
from serving.batching_options import BatchingOptions
from serving.servable import Servable, ServingError, Signature, invalid

log = logging.getLogger("serving")


class _Task:
    """One request's rows; completes when all its pieces (if it was split) have run.

    A task submitted from an event loop also carries that loop's future: the batch
    thread settles those for a whole batch in one callback on the loop (one wake-up per
    batch, not one per request, which is what the loop's time goes to under load)."""

    __slots__ = ("arrays", "enqueued", "future", "loop", "loop_future", "pending", "pieces", "rows")

    def __init__(self, arrays: Mapping[str, np.ndarray], rows: int):
        self.arrays = arrays
        self.rows = rows
        self.enqueued = time.monotonic()
        self.future: Future = Future()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_future: asyncio.Future | None = None
        self.pending = rows
        self.pieces: dict[int, dict[str, np.ndarray]] = {}

    def claim(self) -> bool:
        """Before running: False if the caller gave up (cancelled) or the task failed.

        Moving the future to RUNNING also means it can no longer be cancelled, so the
        result can always be delivered."""
        if self.future.running():
            return True  # a later piece of a split task
        return not self.future.done() and self.future.set_running_or_notify_cancel()

    def deliver(self, start: int, outputs: dict[str, np.ndarray], rows: int) -> None:
        if self.future.done():
            return  # an earlier piece failed
        self.pieces[start] = outputs
        self.pending -= rows
        if self.pending == 0:
            ordered = [self.pieces[k] for k in sorted(self.pieces)]
            self.future.set_result(
                ordered[0]
                if len(ordered) == 1
                else {k: np.concatenate([p[k] for p in ordered]) for k in ordered[0]}
            )

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


@dataclass
class _Piece:
    task: _Task
    start: int
    rows: int


class _Queue:
    def __init__(self, key: tuple, servable: Servable, signature: Signature):
        self.key = key
        self.servable, self.signature = servable, signature
        self.pieces: deque[_Piece] = deque()
        self.rows = 0


def _queue_key(servable: Servable, signature: Signature, arrays: Mapping[str, np.ndarray]):
    """Tasks batch together only when their rows can be stacked: same version and
    signature, and per input the same dtype and the same shape past the batch axis
    (the graph, not the SignatureDef, decides which shapes a request may have)."""
    return (
        id(servable),
        signature.name,
        tuple((alias, a.dtype.str, a.shape[1:]) for alias, a in sorted(arrays.items())),
    )


class Batcher:
    def __init__(self, options: BatchingOptions):
        self.options = options.validate()
        self._cond = threading.Condition()
        self._queues: dict[tuple[int, str], _Queue] = {}
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    # Blocking form, for callers on their own thread.
    def __call__(
        self, servable: Servable, signature: Signature, arrays: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        return self.submit(servable, signature, arrays).result()

    def submit(
        self, servable: Servable, signature: Signature, arrays: Mapping[str, np.ndarray]
    ) -> Future:
        return self._enqueue(servable, signature, arrays).future

    def submit_async(
        self, servable: Servable, signature: Signature, arrays: Mapping[str, np.ndarray]
    ) -> asyncio.Future:
        """Like submit(), for a caller on a running event loop: the result arrives on
        that loop with the rest of its batch. Cancelling the returned future drops the
        task if it has not started."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        task = self._enqueue(servable, signature, arrays, loop=loop, loop_future=waiter)
        if task.future.done():  # e.g. zero rows: settled at once
            _settle([task])
        waiter.add_done_callback(lambda f: f.cancelled() and task.future.cancel())
        return waiter

    def _enqueue(
        self,
        servable: Servable,
        signature: Signature,
        arrays: Mapping[str, np.ndarray],
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        loop_future: asyncio.Future | None = None,
    ) -> _Task:
        rows = _batch_rows(arrays)
        limit = self.options.max_batch_size
        if rows > limit:
            raise invalid(f"Task size {rows} is larger than maximum input batch size {limit}")
        task = _Task(arrays, rows)
        task.loop, task.loop_future = loop, loop_future
        if rows == 0:
            try:
                task.future.set_result(servable.run(signature, arrays))
            except Exception as exc:
                task.future.set_exception(exc)
            return task
        capacity = self.options.max_enqueued_batches * self.options.execution_limit
        with self._cond:
            if self._stopping:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "The server is shutting down")
            key = _queue_key(servable, signature, arrays)
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(key, servable, signature)
            if queue.rows + rows > capacity:
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE,
                    "The batch scheduling queue to which this task was submitted is full",
                )
            queue.pieces.append(_Piece(task, 0, rows))
            queue.rows += rows
            self._cond.notify()
        return task

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    # ---- batch threads -----------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
                while batch is None:
                    if self._stopping and not any(q.pieces for q in self._queues.values()):
                        return
                    self._cond.wait(self._wait_time())
                    batch = self._next_batch()
            try:
                self._run(*batch)
            except Exception:  # never lose the thread: the queue would stall for good
                log.exception("batch failed unexpectedly")
                for piece in batch[1]:
                    piece.task.fail(ServingError(grpc.StatusCode.INTERNAL, "batch failed"))
            _settle([piece.task for piece in batch[1]])

    def _next_batch(self) -> tuple[_Queue, list[_Piece]] | None:
        """The ready queue whose oldest task waited longest, with up to a batch of rows."""
        limit = self.options.execution_limit
        timeout = self.options.batch_timeout_micros / 1e6
        now = time.monotonic()
        ready = [
            q
            for q in self._queues.values()
            if q.pieces
            and (q.rows >= limit or now - q.pieces[0].task.enqueued >= timeout or self._stopping)
        ]
        if not ready:
            return None
        queue = min(ready, key=lambda q: q.pieces[0].task.enqueued)
        taken, rows = [], 0
        while queue.pieces and rows < limit:
            piece = queue.pieces[0]
            room = limit - rows
            if piece.rows <= room:
                queue.pieces.popleft()
            elif self.options.enable_large_batch_splitting:
                queue.pieces[0] = _Piece(piece.task, piece.start + room, piece.rows - room)
                piece = _Piece(piece.task, piece.start, room)
            else:
                break  # the next task does not fit: it opens the next batch
            taken.append(piece)
            rows += piece.rows
        queue.rows -= rows
        if not queue.pieces:
            del self._queues[queue.key]
        return queue, taken

    def _wait_time(self) -> float | None:
        timeout = self.options.batch_timeout_micros / 1e6
        oldest = [q.pieces[0].task.enqueued for q in self._queues.values() if q.pieces]
        if not oldest:
            return None
        return max(min(oldest) + timeout - time.monotonic(), 0.0001)

    def _run(self, queue: _Queue, pieces: list[_Piece]) -> None:
        now = time.monotonic()
        queuing = metrics.QUEUING_LATENCY.labels(metrics.bounded(self.options.thread_pool_name))
        for piece in pieces:
            queuing.observe((now - piece.task.enqueued) * 1e6)
        pieces = [p for p in pieces if p.task.claim()]  # skip callers that gave up
        if not pieces:
            return
        rows = sum(p.rows for p in pieces)
        padded = self._padded_size(rows)
        try:
            inputs = {}
            for alias in queue.signature.inputs:
                parts = [p.task.arrays[alias][p.start : p.start + p.rows] for p in pieces]
                if padded > rows:  # pad with copies of the first row; their outputs are dropped
                    first = parts[0][:1]
                    parts.append(np.repeat(first, padded - rows, axis=0))
                inputs[alias] = parts[0] if len(parts) == 1 else np.concatenate(parts)
            outputs = queue.servable.run(queue.signature, inputs)
            for alias, value in outputs.items():
                if value.ndim == 0 or value.shape[0] != padded:
                    raise ServingError(
                        grpc.StatusCode.INTERNAL,
                        f"Batched output {alias} has shape {list(value.shape)}; batching needs "
                        f"outputs whose first dimension is the batch ({padded})",
                    )
        except Exception as exc:
            for piece in pieces:
                piece.task.fail(exc)
            return
        offset = 0
        for piece in pieces:
            piece.task.deliver(
                piece.start,
                {k: v[offset : offset + piece.rows] for k, v in outputs.items()},
                piece.rows,
            )
            offset += piece.rows

    def _padded_size(self, rows: int) -> int:
        sizes = self.options.allowed_batch_sizes
        if not sizes:
            return rows
        return sizes[bisect.bisect_left(sizes, rows)]


def _settle(tasks: list[_Task]) -> None:
    """Hand finished tasks to their event loops: one callback per loop per batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Task]] = {}
    for task in tasks:
        if task.loop is not None and task.future.done():
            by_loop.setdefault(task.loop, []).append(task)
    for loop, done in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_resolve, done)


def _resolve(tasks: list[_Task]) -> None:
    for task in tasks:
        waiter = task.loop_future
        if waiter is None or waiter.done():
            continue
        if task.future.cancelled():
            waiter.cancel()
        elif (error := task.future.exception()) is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(task.future.result())


def _batch_rows(arrays: Mapping[str, np.ndarray]) -> int:
    sizes = set()
    for array in arrays.values():
        if array.ndim == 0:
            raise invalid("Batching Run() input tensors must have at least one dimension")
        sizes.add(array.shape[0])
    if len(sizes) > 1:
        raise invalid("Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop() if sizes else 0
