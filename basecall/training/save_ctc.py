"""Training chunks from our own calls of reads of a known genome ("growing labels", as bonito's ``--save-ctc``).

While the basecaller runs, each called read is aligned to the reference (`basecall.evaluate.Evaluator`, primary
alignment). A read whose alignment covers at least `min_coverage` of its called bases and has at least `min_accuracy`
matches per alignment column is cut into non-overlapping chunks of its normalised signal (exactly what the model saw),
from the first aligned called base on. A chunk's label is the reference bases that the called bases starting inside
the chunk (by the call's move table) are aligned to, in the read's signal direction (reverse-complemented for reads on
the minus strand); a reference base deleted in the call goes with the called base after it on the reference strand.
So consecutive chunks of a read have consecutive, non-overlapping slices of the reference as labels.

Chunks whose label is empty, holds a base other than ACGT, or needs more timesteps than the chunk has for CTC are
dropped. The result is a prepared chunk folder (`basecall.training.data.ChunkSet`), which `basecall train` reads.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from basecall.errors import InputError
from basecall.evaluate import Evaluator, ReadAccuracy
from basecall.records import CalledRead, Failure, Read
from basecall.sequence import encode, reverse_complement_codes
from basecall.signal import scaled_signal
from basecall.training.data import ChunkSet, ctc_steps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlignedCall:
    """Where a called read's bases land on the reference, from its primary alignment."""

    query_start: int  # first aligned called base, in read (signal) order
    query_end: int  # one past the last aligned called base
    reverse: bool  # aligned to the minus strand
    reference: np.ndarray  # (n_ref,) uint8 the aligned reference segment, forward strand, 1-4 = ACGT, 0 = other
    query_before: np.ndarray  # (n_ref,) int64 per reference base: aligned called bases before its column, counted
    # on the reference strand from the alignment's start (the CIGAR walk's `query_before`, non-decreasing)

    @classmethod
    def from_alignment(cls, accuracy: ReadAccuracy, ref_segment: str, query_before: np.ndarray) -> AlignedCall:
        """From `Evaluator.evaluate_columns` of a mapped read."""
        return cls(
            query_start=accuracy.query_start,
            query_end=accuracy.query_end,
            reverse=accuracy.strand == "-",
            reference=encode(ref_segment),
            query_before=np.asarray(query_before, np.int64),
        )

    def labels(self, first: int, last: int) -> np.ndarray:
        """(n,) uint8 the reference bases that called bases [first, last) (read order, inside the alignment) are
        aligned to, in signal order; a deleted reference base goes with the called base after it (reference strand)."""
        if self.reverse:  # read base j is base query_end - 1 - j of the alignment counted on the reference strand
            lo, hi = self.query_end - last, self.query_end - first
        else:
            lo, hi = first - self.query_start, last - self.query_start
        begin, end = np.searchsorted(self.query_before, [lo, hi])  # reference bases whose column is in [lo, hi)
        segment = self.reference[begin:end]
        return reverse_complement_codes(segment) if self.reverse else segment.copy()


def chunk_labels(
    moves: np.ndarray, stride: int, n_samples: int, chunksize: int, aligned: AlignedCall
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Non-overlapping chunks over a read's aligned part and their labels (before any are dropped).

    moves: (n_timesteps,) 1 where a called base starts. Returns (n_chunks,) int64 the first sample of each chunk, the
    first at the first aligned called base, each chunk ending by the end of the last aligned one; and each chunk's
    label, `aligned.labels` of the called bases that start inside it.
    """
    base_starts = np.flatnonzero(moves).astype(np.int64) * stride  # (n_bases,) first sample of each called base
    begin = int(base_starts[aligned.query_start])
    end = int(base_starts[aligned.query_end]) if aligned.query_end < len(base_starts) else n_samples
    starts = np.arange(begin, end - chunksize + 1, chunksize, dtype=np.int64)  # (n_chunks,)
    first = np.searchsorted(base_starts, starts)  # (n_chunks,) first called base starting inside each chunk
    last = np.searchsorted(base_starts, starts + chunksize)  # (n_chunks,) one past the last
    return starts, [aligned.labels(int(a), int(b)) for a, b in zip(first, last)]


def drop_reason(label: np.ndarray, n_timesteps: int) -> str | None:
    """Why a chunk's label is unusable for CTC training, or None to keep it."""
    if label.size == 0:
        return "no reference bases"
    if not label.all():
        return "reference N"
    if ctc_steps(label) > n_timesteps:
        return "too many bases for CTC"
    return None


class ChunkCollector:
    """Collects training chunks from a basecalling run.

    Wrap the run's input with `keep_signals` and hand `add` every result of the run, in order (the pipeline gives one
    result per input item, in input order): each read's raw signal is held only until its call comes back.
    """

    def __init__(
        self,
        directory: str | Path,
        reference: str | Path,
        chunksize: int,
        min_coverage: float = 0.90,
        min_accuracy: float = 0.90,
    ) -> None:
        self.directory = Path(directory)
        try:  # now, not after hours of basecalling
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"{directory}: cannot create the --save-ctc folder: {e.strerror or e}") from e
        self.evaluator = Evaluator(reference)
        self.chunksize = chunksize
        self.min_coverage = min_coverage
        self.min_accuracy = min_accuracy
        self.n_called = 0  # reads offered to `add` as called
        self.n_passed = 0  # of those, reads that passed both thresholds
        self.dropped: Counter[str] = Counter()  # chunks dropped, by reason
        self._waiting: deque[Read | None] = deque()  # inputs whose result has not come back yet
        self._chunks: list[np.ndarray] = []  # per passing read, (n, chunksize) float32
        self._labels: list[np.ndarray] = []  # per chunk, (n_bases,) uint8

    def keep_signals(self, items: Iterable[Read | Failure]) -> Iterator[Read | Failure]:
        """Pass the run's input through unchanged, remembering each read until `add` takes its result."""
        for item in items:
            self._waiting.append(item if isinstance(item, Read) else None)
            yield item

    def add(self, result: CalledRead | Failure, use: bool = True) -> None:
        """Take the run's next result; with `use`, cut a called read that aligns well into chunks."""
        read = self._waiting.popleft()
        if not (use and isinstance(result, CalledRead)):
            return
        if read is None or read.read_id != result.read.read_id:
            raise RuntimeError(f"save-ctc: result for read {result.read.read_id} came back out of order")
        self.n_called += 1
        accuracy, ref_segment, query_before = self.evaluator.evaluate_columns(read.read_id, result.sequence)
        if not (
            accuracy.mapped and accuracy.query_coverage >= self.min_coverage and accuracy.identity >= self.min_accuracy
        ):
            return
        self.n_passed += 1
        aligned = AlignedCall.from_alignment(accuracy, ref_segment, query_before)
        starts, labels = chunk_labels(result.moves, result.stride, result.n_samples, self.chunksize, aligned)
        n_timesteps = self.chunksize // result.stride
        keep = []
        for start, label in zip(starts, labels):
            reason = drop_reason(label, n_timesteps)
            if reason is None:
                keep.append(start)
                self._labels.append(label)
            else:
                self.dropped[reason] += 1
        if keep:
            signal = scaled_signal(read)  # (n_samples,) float32, normalised as the model saw it
            self._chunks.append(np.stack([signal[start : start + self.chunksize] for start in keep]))

    def chunk_set(self) -> ChunkSet:
        """The chunks so far: (N, chunksize) float32, (N, max_len) uint8 labels 0-padded, (N,) int64 lengths."""
        lengths = np.array([len(label) for label in self._labels], np.int64)  # (N,)
        references = np.zeros((len(lengths), int(lengths.max(initial=0))), np.uint8)  # (N, max_len)
        for row, label in enumerate(self._labels):
            references[row, : len(label)] = label
        chunks = np.concatenate(self._chunks) if self._chunks else np.zeros((0, self.chunksize), np.float32)
        return ChunkSet(chunks, references, lengths)

    def save(self) -> ChunkSet:
        """Write the chunk folder (each file atomically) and log what was saved."""
        chunk_set = self.chunk_set()
        directory = chunk_set.save(self.directory)
        dropped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.dropped.items()))
        log.info(
            "save-ctc: %d of %d called reads passed (coverage >= %g, accuracy >= %g); %d chunks saved to %s%s",
            self.n_passed, self.n_called, self.min_coverage, self.min_accuracy, len(chunk_set), directory,
            f" (dropped: {dropped})" if dropped else "",
        )  # fmt: skip
        if not len(chunk_set):
            log.warning("save-ctc: no chunks saved: no read passed the thresholds, or none was a chunk long")
        return chunk_set
