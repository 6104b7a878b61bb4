"""Put per-chunk model outputs back together per read, in timestep space (pure numpy).

Chunk i covers global timesteps [start_i / stride, start_i / stride + chunksize / stride). Neighbouring chunks
split their overlap at its middle (rounded down to the timestep grid): each keeps the half nearest its own centre.
Because every start is a multiple of the stride, the kept ranges tile [0, ceil(n_samples / stride)) exactly.
"""

from __future__ import annotations

import numpy as np


def keep_ranges(starts: np.ndarray, chunksize: int, n_samples: int, stride: int) -> list[tuple[int, int]]:
    """For each chunk, the local timestep range [lo, hi) it contributes to the read."""
    n_timesteps = -(-n_samples // stride)
    first = starts // stride  # (n_chunks,) first global timestep of each chunk
    # boundary between chunk i and i + 1: middle of their overlap, on the timestep grid
    middles = (starts[:-1] + chunksize + starts[1:]) // 2 // stride
    lo = np.concatenate([[0], middles])
    hi = np.concatenate([middles, [n_timesteps]])
    return [(int(a - f), int(b - f)) for a, b, f in zip(lo, hi, first)]


def stitch(outputs: np.ndarray, starts: np.ndarray, chunksize: int, n_samples: int, stride: int) -> np.ndarray:
    """(n_chunks, chunk_timesteps, ...) per-chunk outputs → (ceil(n_samples / stride), ...) for the read."""
    ranges = keep_ranges(starts, chunksize, n_samples, stride)
    return np.concatenate([outputs[i, lo:hi] for i, (lo, hi) in enumerate(ranges)])
