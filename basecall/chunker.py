"""Cut a read into overlapping fixed-size chunks, and batch chunks across reads (pure numpy).

Every chunk starts on a multiple of the model stride and has exactly `chunksize` samples; the last chunk is placed
to end at the read's end rounded up to the stride (padding at most stride - 1 zeros), a read shorter than a chunk is
zero-padded. This keeps every chunk on the same timestep grid, which makes stitching exact (see `basecall.stitcher`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from basecall.records import Batch, ChunkedRead, Failure


def chunk_starts(n_samples: int, chunksize: int, overlap: int, stride: int) -> np.ndarray:
    """(n_chunks,) int64 start sample of each chunk. Needs chunksize and overlap to be multiples of stride."""
    padded = -(-n_samples // stride) * stride  # n_samples rounded up to the stride
    if padded <= chunksize:
        return np.zeros(1, np.int64)
    last = padded - chunksize
    return np.append(np.arange(0, last, chunksize - overlap, dtype=np.int64), last)


def chunk_signal(signal: np.ndarray, chunksize: int, overlap: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_samples,) float32 → chunks (n_chunks, chunksize) float32 and their starts (n_chunks,)."""
    starts = chunk_starts(signal.shape[0], chunksize, overlap, stride)
    padded = np.zeros(max(int(starts[-1]) + chunksize, signal.shape[0]), np.float32)
    padded[: signal.shape[0]] = signal
    windows = np.lib.stride_tricks.sliding_window_view(padded, chunksize)  # (n - chunksize + 1, chunksize) view
    return np.ascontiguousarray(windows[starts]), starts


def batch_chunks(
    items: Iterable[ChunkedRead | Failure], batch_size: int
) -> Iterator[ChunkedRead | Failure | Batch]:
    """Batch chunks across reads, in order.

    Each item is passed on first (a ChunkedRead without its chunks), so a consumer learns of a read before any of
    its chunks come back; then full batches of `batch_size` chunks, and a last partial batch at the end.
    """
    signals: list[np.ndarray] = []  # pending (n, chunksize) blocks
    keys: list[tuple[int, int]] = []  # (read index, chunk index) of each pending row
    for item in items:
        if isinstance(item, Failure):
            yield item
            continue
        yield item.without_chunks()
        signals.append(item.chunks)
        keys.extend((item.index, i) for i in range(item.chunks.shape[0]))
        while len(keys) >= batch_size:
            block = np.concatenate(signals)
            yield Batch(signal=block[:batch_size], keys=keys[:batch_size])
            signals, keys = [block[batch_size:]], keys[batch_size:]
    if keys:
        yield Batch(signal=np.concatenate(signals), keys=keys)
