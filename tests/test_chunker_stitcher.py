"""Chunking and stitching: exact for every valid chunksize / overlap / stride (property tests)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from basecall.chunker import batch_chunks, chunk_starts, pad_for_chunks
from basecall.config import BasecallerConfig, Config, ModelConfig, config_from_dict
from basecall.errors import ConfigError
from basecall.records import Batch, Calibration, ChunkedRead, Failure, Read
from basecall.stitcher import keep_ranges, stitch


@st.composite
def settings_and_length(draw: st.DrawFn) -> tuple[int, int, int, int]:
    stride = draw(st.integers(1, 12))
    chunk_steps = draw(st.integers(3, 60))
    overlap_steps = draw(st.integers(2, chunk_steps - 1))
    n_samples = draw(st.integers(1, 40 * chunk_steps * stride))
    return chunk_steps * stride, overlap_steps * stride, stride, n_samples


@settings(max_examples=3000, deadline=None)
@given(settings_and_length())
def test_stitching_keeps_every_timestep_exactly_once(case: tuple[int, int, int, int]) -> None:
    chunksize, overlap, stride, n_samples = case
    starts = chunk_starts(n_samples, chunksize, overlap, stride)
    assert np.all(starts % stride == 0)
    assert np.all(np.diff(starts) > 0)
    assert np.all(np.diff(starts) <= chunksize - overlap)  # neighbours overlap by at least `overlap`
    assert starts[-1] + chunksize >= n_samples  # the read is covered
    chunk_timesteps = chunksize // stride
    # each chunk's output is the global timestep index of each of its timesteps
    outputs = starts[:, None] // stride + np.arange(chunk_timesteps)[None, :]
    stitched = stitch(outputs, starts, chunksize, n_samples, stride)
    assert np.array_equal(stitched, np.arange(-(-n_samples // stride)))
    for lo, hi in keep_ranges(starts, chunksize, n_samples, stride):
        assert 0 <= lo <= hi <= chunk_timesteps


@settings(max_examples=3000, deadline=None)
@given(settings_and_length())
def test_neighbouring_chunks_split_their_overlap_at_its_middle(case: tuple[int, int, int, int]) -> None:
    """Where chunk i hands over to chunk i + 1 is the middle of the timesteps both cover (rounded down to the grid):
    each gives up half the overlap, so neither contributes the timesteps next to its edge, where a network lacks
    context on that side. (Tiling alone holds for any boundary inside the overlap; this pins it.)"""
    chunksize, overlap, stride, n_samples = case
    starts = chunk_starts(n_samples, chunksize, overlap, stride)
    ranges = keep_ranges(starts, chunksize, n_samples, stride)
    first = starts // stride  # (n_chunks,) first global timestep of each chunk
    chunk_timesteps = chunksize // stride
    for i in range(len(starts) - 1):
        boundary = first[i] + ranges[i][1]  # global timestep where chunk i stops and chunk i + 1 takes over
        assert boundary == first[i + 1] + ranges[i + 1][0]
        shared_from, shared_to = first[i + 1], first[i] + chunk_timesteps  # timesteps both chunks cover
        n_shared = shared_to - shared_from
        assert n_shared >= 2
        assert shared_from + n_shared // 2 <= boundary <= shared_from + (n_shared + 1) // 2, (i, boundary)


@settings(max_examples=300, deadline=None)
@given(settings_and_length())
def test_chunks_are_windows_of_the_signal(case: tuple[int, int, int, int]) -> None:
    chunksize, overlap, stride, n_samples = case
    signal = np.arange(1, n_samples + 1, dtype=np.float32)
    padded, starts = pad_for_chunks(signal, chunksize, overlap, stride)
    read = ChunkedRead(0, _read(0), n_samples, starts, padded)
    batches = [b for b in batch_chunks([read], batch_size=7, chunksize=chunksize) if isinstance(b, Batch)]
    chunks = np.concatenate([b.signal for b in batches])
    assert [k for b in batches for k in b.keys] == [(0, i) for i in range(len(starts))]
    assert chunks.shape == (len(starts), chunksize) and chunks.dtype == np.float32
    for chunk, start in zip(chunks, starts):
        inside = signal[start : start + chunksize]
        assert np.array_equal(chunk[: len(inside)], inside)
        past_end = np.arange(start + len(inside), start + chunksize) % (2 * n_samples)  # mirrored, period 2n
        assert np.array_equal(chunk[len(inside) :], signal[np.minimum(past_end, 2 * n_samples - 1 - past_end)])


def test_padding_is_less_than_one_stride_for_reads_longer_than_a_chunk() -> None:
    starts = chunk_starts(10_001, 4000, 500, 5)
    assert starts[-1] + 4000 == 10_005


@given(
    st.integers(1, 50), st.integers(0, 49), st.integers(1, 10),
)
@settings(max_examples=500, deadline=None)
def test_config_rejects_settings_that_cannot_stitch(chunk: int, overlap: int, stride: int) -> None:
    data = {"version": 1, "model": {"stride": stride}, "basecaller": {"chunksize": chunk, "overlap": overlap}}
    valid = chunk % stride == 0 and overlap % stride == 0 and 2 * stride <= overlap < chunk
    if valid:
        assert config_from_dict(data).basecaller.chunksize == chunk
    else:
        with pytest.raises(ConfigError):
            config_from_dict(data)


def test_command_line_overrides_are_checked_too() -> None:
    config = Config(model=ModelConfig(stride=5)).check()
    assert config.with_basecaller(chunksize=2000, overlap=None).basecaller == BasecallerConfig(chunksize=2000)
    with pytest.raises(ConfigError, match="multiples of the model stride"):
        config.with_basecaller(chunksize=2001)


def _read(index: int) -> Read:
    return Read(f"r{index}", np.empty(0, np.int16), Calibration(0, 1), 4000.0, "run", 1, 0, "f.pod5")


def _chunked(index: int, n_chunks: int, chunksize: int = 4) -> ChunkedRead:
    signal = np.full(n_chunks * chunksize, index, np.float32)
    return ChunkedRead(index, _read(index), n_chunks * chunksize, np.arange(n_chunks) * chunksize, signal)


def test_batches_cut_across_reads_and_keep_order() -> None:
    failure = Failure("bad.fast5", "broken")
    items = [_chunked(0, 3), failure, _chunked(1, 1), _chunked(2, 4)]
    out = list(batch_chunks(items, batch_size=3, chunksize=4))
    batches = [o for o in out if isinstance(o, Batch)]
    assert [b.signal.shape[0] for b in batches] == [3, 3, 2]
    keys = [k for b in batches for k in b.keys]
    assert keys == [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (2, 1), (2, 2), (2, 3)]
    for b in batches:  # each row holds its own read's signal
        assert all(b.signal[row, 0] == read for row, (read, _) in enumerate(b.keys))
    passed = [o for o in out if not isinstance(o, Batch)]
    assert [getattr(o, "index", o) for o in passed] == [0, failure, 1, 2]
    assert all(o.signal is None for o in passed if isinstance(o, ChunkedRead))
    # every item is announced before any batch holding its chunks
    first_batch_of: dict[int, int] = {}
    for i, o in enumerate(out):
        for read, _ in o.keys if isinstance(o, Batch) else []:
            first_batch_of.setdefault(read, i)
    announced = {o.index: i for i, o in enumerate(out) if isinstance(o, ChunkedRead)}
    assert all(announced[r] < first_batch_of[r] for r in announced)


def test_a_long_read_is_batched_without_a_copy_per_chunk() -> None:
    """A 2 M-sample read: batching holds one batch beside the read's signal, never all its chunks at once."""
    chunksize, overlap, stride, batch_size = 4000, 500, 5, 32
    signal = np.random.default_rng(0).standard_normal(2_000_000).astype(np.float32)
    padded, starts = pad_for_chunks(signal, chunksize, overlap, stride)
    read = ChunkedRead(0, _read(0), signal.shape[0], starts, padded)
    del signal, padded
    all_chunks_bytes = len(starts) * chunksize * 4  # 572 chunks: 9.2 MB if they were cut at once
    tracemalloc.start()
    n_rows = 0
    for item in batch_chunks([read], batch_size, chunksize):
        n_rows += item.signal.shape[0] if isinstance(item, Batch) else 0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n_rows == len(starts)
    assert peak < 3 * batch_size * chunksize * 4 < all_chunks_bytes / 5
