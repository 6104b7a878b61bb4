"""Wire the stages together: reading and chunking on threads of their own, joined by small bounded queues.

    reads ─thread─▶ chunk (normalise + cut) ─thread─▶ batch, model + decode, stitch ─▶ consumer (writers)

The model runs in the calling thread (with several GPUs, `--device cuda:all`, one thread per GPU), not on a thread of its own: on CPU, torch's OpenMP pool belongs to the
thread that made it, and a second thread running torch after the caller had (a training loop, a test, a notebook)
ran 8-10× slower on this 2-core machine (16.6 s instead of 1.6 s for the 50 lambda reads with a tiny model).
Stitching and writing are cheap next to the model and run there too. Each replica decodes its own batches right
after their forward pass: on a GPU next to the model; on the CPU (one replica per core) greedy is cheap, and beam
search (fast-ctc-decode and a numba-compiled alignment) releases the GIL, so one replica decodes while the others run
their forward pass, and no core waits on another.

Order is preserved: every read (or Failure) comes out in the order it went in. A stage that raises hands the
exception to its consumer, which re-raises it; every stage always ends its queue, so nothing ever hangs.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

from basecall.chunker import batch_chunks, pad_for_chunks
from basecall.config import BasecallerConfig
from basecall.decoder import Decoder, greedy
from basecall.errors import InputError
from basecall.model import forward_dtype
from basecall.records import Batch, CalledRead, ChunkedRead, DecodedBatch, Failure, Read
from basecall.sequence import decode
from basecall.signal import scaled_signal
from basecall.stitcher import stitch

log = logging.getLogger(__name__)

T = TypeVar("T")
QUEUE_SIZE = 4
_END = object()


class _Raised:
    def __init__(self, error: BaseException):
        self.error = error


def in_thread(items: Iterable[T], name: str, maxsize: int = QUEUE_SIZE) -> Iterator[T]:
    """Iterate `items` on a thread of its own, handing results over a bounded queue.

    An exception in the thread is re-raised in the consumer. If the consumer stops early, the thread stops at its
    next hand-over and closes `items`, so upstream stages stop too.
    """
    handover: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handover.put(item, timeout=0.05)
                return True
            except queue.Full:
                log.debug("queue %s full", name)
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    break
        except BaseException as e:  # noqa: BLE001 - forwarded to the consumer, which re-raises
            put(_Raised(e))
        finally:
            put(_END)
            close = getattr(items, "close", None)
            if close is not None:
                close()

    threading.Thread(target=work, name=f"basecall-{name}", daemon=True).start()
    try:
        while True:
            item = handover.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()


def chunk_reads(
    items: Iterable[Read | Failure], config: BasecallerConfig, stride: int, threads: int = 1
) -> Iterator[ChunkedRead | Failure]:
    """Normalise and chunk each read, `threads` reads at once (numpy releases the GIL), in order; a read that cannot
    be scaled becomes a Failure."""

    def prepare(indexed: tuple[int, Read | Failure]) -> ChunkedRead | Failure:
        index, item = indexed
        if isinstance(item, Failure):
            return item
        try:
            signal = scaled_signal(item)
        except InputError as e:
            return Failure(item.path, str(e), read_id=item.read_id, read=item.without_signal(), n_samples=item.n_samples)
        padded, starts = pad_for_chunks(signal, config.chunksize, config.overlap, stride)
        return ChunkedRead(index, item.without_signal(), item.n_samples, starts, padded)

    if threads == 1:
        yield from map(prepare, enumerate(items))
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="basecall-chunker") as pool:
        pending: deque[Future] = deque()
        for indexed in enumerate(items):
            pending.append(pool.submit(prepare, indexed))
            if len(pending) > 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@torch.inference_mode()
def decode_batch(
    model: torch.nn.Module, batch: Batch, device: torch.device, decode: Decoder, dtype: torch.dtype | None = None
) -> DecodedBatch:
    """Model forward (autocast to `dtype` unless None) and decoding, in fp32, on `device`; only the small
    per-timestep arrays come back."""
    x = torch.from_numpy(batch.signal).to(device, non_blocking=True).unsqueeze(1)  # (B, 1, chunksize)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        log_probs = model(x).float()  # (T', B, 5)
    moves, bases, qualities = (t.cpu().numpy() for t in decode(log_probs))  # each (B, T')
    return DecodedBatch(batch.keys, moves, bases, qualities)


def decode_batches(
    items: Iterable, model: torch.nn.Module, device: torch.device, decode: Decoder, dtype: torch.dtype | None
) -> Iterator:
    for item in items:
        yield decode_batch(model, item, device, decode, dtype) if isinstance(item, Batch) else item


def decode_on_devices(
    items: Iterable, replicas: list[tuple[torch.nn.Module, torch.device]], decode: Decoder, dtype: torch.dtype | None
) -> Iterator:
    """`decode_batches` with batches dealt round-robin to several devices (a model replica and a thread each),
    results in input order; at most two batches per device in flight."""
    workers = [ThreadPoolExecutor(1, thread_name_prefix=f"basecall-{device}") for _, device in replicas]
    pending: deque = deque()  # Futures of decoded batches, and items passed through, in input order
    n_batches = 0
    try:
        for item in items:
            if isinstance(item, Batch):
                turn = n_batches % len(replicas)
                model, device = replicas[turn]
                pending.append(workers[turn].submit(decode_batch, model, item, device, decode, dtype))
                n_batches += 1
            else:
                pending.append(item)
            while len(pending) > 2 * len(replicas):
                yield _done(pending.popleft())
        while pending:
            yield _done(pending.popleft())
    finally:
        for worker in workers:
            worker.shutdown(cancel_futures=True)


def _done(item: object) -> object:
    return item.result() if isinstance(item, Future) else item


class _Pending:
    def __init__(self, item: ChunkedRead | Failure, chunk_timesteps: int):
        self.item = item
        self.outputs = None
        self.remaining = 0
        if isinstance(item, ChunkedRead):
            self.outputs = np.zeros((item.n_chunks, chunk_timesteps, 3), np.uint8)  # moves, bases, qualities
            self.remaining = item.n_chunks


def stitch_reads(items: Iterable, chunksize: int, stride: int) -> Iterator[CalledRead | Failure]:
    """Regroup decoded chunks by read and stitch each read as soon as all its chunks are back, in input order."""
    pending: deque[_Pending] = deque()
    by_index: dict[int, _Pending] = {}
    for item in items:
        if isinstance(item, DecodedBatch):
            stacked = np.stack([item.moves, item.bases, item.qualities], axis=-1)  # (B, T', 3)
            for row, (read_index, chunk_index) in enumerate(item.keys):
                entry = by_index[read_index]
                entry.outputs[chunk_index] = stacked[row]
                entry.remaining -= 1
        else:
            entry = _Pending(item, chunksize // stride)
            pending.append(entry)
            if isinstance(item, ChunkedRead):
                by_index[item.index] = entry
        while pending and pending[0].remaining == 0:
            done = pending.popleft()
            if isinstance(done.item, Failure):
                yield done.item
            else:
                del by_index[done.item.index]
                yield _called_read(done.item, done.outputs, chunksize, stride)
    if pending:  # an upstream stage ended without sending every chunk: a bug, never silent
        raise RuntimeError(f"{len(pending)} read(s) still waiting for chunks at the end of the run")


def _called_read(chunked: ChunkedRead, outputs: np.ndarray, chunksize: int, stride: int) -> CalledRead:
    per_timestep = stitch(outputs, chunked.starts, chunksize, chunked.n_samples, stride)  # (n_timesteps, 3)
    moves = per_timestep[:, 0]
    starts = moves.astype(bool)
    sequence = decode(per_timestep[starts, 1])
    return CalledRead(chunked.read, chunked.n_samples, sequence, per_timestep[starts, 2].copy(), moves.copy(), stride)


def basecall_reads(
    model: torch.nn.Module,
    reads: Iterable[Read | Failure],
    config: BasecallerConfig,
    device: torch.device | str = "cpu",
    decode: Decoder = greedy,
    more_devices: Sequence[torch.device] = (),
    precision: str = "auto",
    chunk_threads: int = 1,
) -> Iterator[CalledRead | Failure]:
    """Basecall `reads` (Failures pass through) and yield a CalledRead or Failure per input item, in order.

    `model` is on `device`; with `more_devices` (e.g. every GPU), a copy of it runs on each of them too.
    `precision` is the forward pass's (`forward_dtype`): 'auto' (fp16 on CUDA, bf16 on CPUs that have it) or 'fp32'.
    `chunk_threads` reads are normalised and chunked at once (more than 1 pays where the model leaves cores free: GPUs).
    """
    device = torch.device(device)
    dtype = forward_dtype(device, precision, model)
    stride = model.stride
    reads = in_thread(reads, "reader")
    chunked = in_thread(chunk_reads(reads, config, stride, chunk_threads), "chunker")
    batches = batch_chunks(chunked, config.batch_size, config.chunksize)
    if more_devices:
        replicas = [(model, device)] + [(copy.deepcopy(model).to(extra), extra) for extra in more_devices]
        decoded = decode_on_devices(batches, replicas, decode, dtype)
    else:
        decoded = decode_batches(batches, model, device, decode, dtype)
    yield from stitch_reads(decoded, config.chunksize, stride)
