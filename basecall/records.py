"""The types that cross stage boundaries. All are owned (no views of open files) and picklable."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from datetime import datetime, timedelta

import numpy as np

from basecall.sequence import mean_qscore


@dataclass(frozen=True)
class Calibration:
    """ADC → picoamps: ``pA = (raw + offset) * scale``, with ``scale = range / digitisation``."""

    offset: float
    scale: float

    @classmethod
    def from_range(cls, offset: float, range_pa: float, digitisation: float) -> Calibration:
        scale = float(range_pa) / float(digitisation) if float(digitisation) else math.nan  # nan: checked later
        return cls(offset=float(offset), scale=scale)

    def to_pa(self, signal: np.ndarray) -> np.ndarray:
        """Raw int16 ADC samples → float32 picoamps. The one place this conversion is done."""
        with np.errstate(over="ignore", invalid="ignore"):  # a bad calibration shows as non-finite values, checked later
            return ((signal.astype(np.float32) + np.float32(self.offset)) * np.float32(self.scale)).astype(np.float32)


@dataclass(frozen=True)
class Read:
    """One read as it comes out of a file: raw signal plus the metadata we carry to the output."""

    read_id: str
    signal: np.ndarray  # (n_samples,) int16, raw ADC
    calibration: Calibration
    sample_rate_hz: float
    run_id: str
    channel: int
    start_sample: int  # samples since the start of the acquisition
    path: str  # the file the read came from
    read_number: int | None = None
    acquisition_start: datetime | None = None  # when the run started (UTC)
    flow_cell_id: str | None = None
    sequencing_kit: str | None = None
    flow_cell_product_code: str | None = None  # e.g. FLO-MIN106: the pore chemistry (basecall.chemistry)

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[0])

    @property
    def signal_pa(self) -> np.ndarray:
        return self.calibration.to_pa(self.signal)

    @property
    def start_time(self) -> datetime | None:
        """Wall-clock start of the read, when the file records when the run started."""
        if self.acquisition_start is None:
            return None
        return self.acquisition_start + timedelta(seconds=self.start_sample / self.sample_rate_hz)

    @property
    def start_time_iso(self) -> str:
        """`start_time` as ISO 8601 UTC ('...Z'), or '' when unknown."""
        start = self.start_time
        return start.isoformat().replace("+00:00", "Z") if start else ""

    def without_signal(self) -> Read:
        """A copy with the metadata only, to carry past the chunker without holding the signal."""
        return replace(self, signal=np.empty(0, np.int16))


@dataclass(frozen=True)
class Failure:
    """A file or read that could not be used. `read_id` is None when a whole file (or its rest) failed.

    `skipped` marks a file in a folder that is not a read file (e.g. a run's sequencing_summary.txt): reported and
    recorded, but not a failure of the run.
    """

    path: str
    reason: str
    read_id: str | None = None
    read: Read | None = None  # the read's metadata (signal dropped), when the read itself was loaded
    n_samples: int | None = None
    skipped: bool = False

    def message(self) -> str:
        read_id = self.read_id if self.read_id is None or self.read_id.isprintable() else repr(self.read_id)
        where = self.path if read_id is None else f"{self.path} read {read_id}"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ChunkedRead:
    """A normalised read and where its chunks start; `index` is its position in the run, used to regroup chunks.

    Chunks are cut from `signal` only as batches are filled, so a long read never exists as a copy per chunk.
    """

    index: int
    read: Read  # metadata only (signal dropped)
    n_samples: int
    starts: np.ndarray  # (n_chunks,) int64 first sample of each chunk
    signal: np.ndarray | None  # (≥ starts[-1] + chunksize,) float32 normalised, padded (chunker.pad_signal); None once batched

    @property
    def n_chunks(self) -> int:
        return int(self.starts.shape[0])

    def without_signal(self) -> ChunkedRead:
        return replace(self, signal=None)


@dataclass(frozen=True)
class Batch:
    """Chunks from one or more reads, to go through the model together."""

    signal: np.ndarray  # (batch, chunksize) float32
    keys: list[tuple[int, int]]  # (read index, chunk index) of each row


@dataclass(frozen=True)
class DecodedBatch:
    """Decoder output for a Batch: small per-timestep arrays, back on the CPU."""

    keys: list[tuple[int, int]]
    moves: np.ndarray  # (batch, chunk_timesteps) uint8, 1 where a base starts
    bases: np.ndarray  # (batch, chunk_timesteps) uint8, index into ALPHABET of the emitted label (0 = none)
    qualities: np.ndarray  # (batch, chunk_timesteps) uint8 Phred of the base starting there


@dataclass(frozen=True)
class CalledRead:
    """A read after stitching: bases, Phred qualities and the move table (one flag per model timestep)."""

    read: Read  # metadata only (signal dropped)
    n_samples: int
    sequence: str
    qualities: np.ndarray  # (n_bases,) uint8 Phred
    moves: np.ndarray = field(repr=False)  # (n_timesteps,) uint8, 1 where a base starts
    stride: int = 1

    @cached_property
    def mean_qscore(self) -> float:
        """Mean of per-base error probabilities, as a Phred score (how Dorado and Guppy report it)."""
        return mean_qscore(self.qualities)
