"""Labelled reads for training, from every source we read, turned into the same training chunks.

Sources (dispatch in `open_labelled`):
- Tombo-resquiggled fast5 (``Analyses/RawGenomeCorrected_000/BaseCalled_template/Events``: start, length, base)
- Taiyaki mapped-signal v8 HDF5 (``Reads/<id>`` or ``Batches/<n>`` layout: Dacs, Reference, Ref_to_signal); the
  simulator (`basecall simulate`) writes its labels in this format too
- a prepared chunk folder: ``chunks.npy`` (N, chunksize) float32, ``references.npy`` (N, max_len) uint8 (1-4 = ACGT,
  0 = padding), ``reference_lengths.npy`` (N,) (the layout bonito uses)

Chunks are normalised exactly as at basecalling time (`basecall.signal.normalise` over the whole read).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import vbz_h5py_plugin  # noqa: F401  (registers the VBZ HDF5 filter)

from basecall.errors import InputError, one_line
from basecall.records import Calibration
from basecall.signal import normalise

log = logging.getLogger(__name__)

SAMPLES_PER_BASE = 9.0  # R9.4.1 at 4 kHz, ≈ 450 bases/s; used to drop chunks of stalled or skipped signal


@dataclass(frozen=True)
class LabelledRead:
    """A read's raw signal with the reference bases it was mapped to and where each base starts."""

    read_id: str
    signal: np.ndarray  # (n_samples,) int16 raw ADC
    calibration: Calibration
    reference: np.ndarray  # (n_bases,) uint8, 1-4 = ACGT (0 is the CTC blank, never a base)
    ref_to_signal: np.ndarray  # (n_bases + 1,) int64: first sample of each base, then the end of the last base

    @property
    def sequence(self) -> str:
        return np.frombuffer(b"NACGT", np.uint8)[self.reference].tobytes().decode()


@dataclass
class ChunkSet:
    """Training chunks: normalised signal windows and their reference bases."""

    chunks: np.ndarray  # (N, chunksize) float32
    references: np.ndarray  # (N, max_len) uint8, 1-4 = ACGT, 0-padded
    lengths: np.ndarray  # (N,) int64 number of bases of each chunk

    def __len__(self) -> int:
        return int(self.chunks.shape[0])

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "chunks.npy", self.chunks)
        np.save(directory / "references.npy", self.references)
        np.save(directory / "reference_lengths.npy", self.lengths)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ChunkSet:
        directory = Path(directory)
        try:
            chunks = np.load(directory / "chunks.npy").astype(np.float32, copy=False)
            references = np.load(directory / "references.npy").astype(np.uint8, copy=False)
            lengths = np.load(directory / "reference_lengths.npy").astype(np.int64, copy=False)
        except (OSError, ValueError) as e:
            raise InputError(f"{directory}: not a chunk folder (chunks.npy, references.npy, reference_lengths.npy): {one_line(e)}") from e
        if not (len(chunks) == len(references) == len(lengths)):
            raise InputError(f"{directory}: chunks, references and lengths have different counts")
        return cls(chunks, references, lengths)

    @classmethod
    def concatenate(cls, sets: Iterable[ChunkSet]) -> ChunkSet:
        sets = [s for s in sets if len(s)]
        if not sets:
            raise InputError("no training chunks")
        width = max(s.references.shape[1] for s in sets)
        refs = [np.pad(s.references, ((0, 0), (0, width - s.references.shape[1]))) for s in sets]
        return cls(
            np.concatenate([s.chunks for s in sets]), np.concatenate(refs), np.concatenate([s.lengths for s in sets])
        )

    def subset(self, index: np.ndarray) -> ChunkSet:
        return ChunkSet(self.chunks[index], self.references[index], self.lengths[index])


def read_tombo(path: Path) -> Iterator[LabelledRead]:
    """Tombo 1.5 resquiggled single-read fast5: events hold each base's start and length in the raw signal."""
    from basecall.readers.fast5 import read_fast5
    from basecall.records import Failure

    reads = [r for r in read_fast5(path) if not isinstance(r, Failure)]
    with h5py.File(path, "r") as handle:
        group = handle.get("Analyses/RawGenomeCorrected_000/BaseCalled_template")
        if group is None or "Events" not in group or len(reads) != 1:
            raise InputError(f"{path}: not a Tombo-resquiggled single-read fast5")
        events = group["Events"][()]
        offset = int(group["Events"].attrs["read_start_rel_to_raw"])
    starts = offset + events["start"].astype(np.int64)
    ref_to_signal = np.append(starts, starts[-1] + int(events["length"][-1]))
    read = reads[0]
    yield LabelledRead(read.read_id, read.signal, read.calibration, _encode(events["base"]), ref_to_signal)


def read_taiyaki(path: Path) -> Iterator[LabelledRead]:
    """Taiyaki mapped-signal v8, per-read (``Reads/<id>``) or batched (``Batches/<n>``) layout."""
    with h5py.File(path, "r") as handle:
        if "Reads" in handle:
            for read_id, group in handle["Reads"].items():
                a = group.attrs
                yield _taiyaki_read(
                    str(a.get("read_id", read_id)), group["Dacs"][()], group["Reference"][()],
                    group["Ref_to_signal"][()], a["offset"], a["range"], a["digitisation"],
                )  # fmt: skip
        elif "Batches" in handle:
            for batch in handle["Batches"].values():
                bounds = {
                    name: np.concatenate([[0], np.cumsum(batch[f"{name}_lengths"][()])])
                    for name in ("Dacs", "Reference", "Ref_to_signal")
                }
                for i, read_id in enumerate(batch["read_id"][()]):
                    part = {name: batch[name][b[i] : b[i + 1]] for name, b in bounds.items()}
                    yield _taiyaki_read(
                        _clean_id(read_id), part["Dacs"], part["Reference"], part["Ref_to_signal"],
                        batch["offset"][i], batch["range"][i], batch["digitisation"][i],
                    )  # fmt: skip
        else:
            raise InputError(f"{path}: not a Taiyaki mapped-signal file (no Reads or Batches group)")


def _taiyaki_read(read_id, dacs, reference, ref_to_signal, offset, range_pa, digitisation) -> LabelledRead:
    return LabelledRead(
        read_id=read_id,
        signal=np.asarray(dacs, np.int16),
        calibration=Calibration.from_range(offset, range_pa, digitisation),
        reference=(np.asarray(reference) + 1).astype(np.uint8),  # Taiyaki: 0-3 = ACGT
        ref_to_signal=np.asarray(ref_to_signal, np.int64),
    )


def _clean_id(value: object) -> str:
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text.removeprefix("b'").removesuffix("'")  # remora's file stores repr(bytes)


def _encode(bases: np.ndarray) -> np.ndarray:
    """Array of b'A'/b'C'/b'G'/b'T' → uint8 1-4."""
    table = np.zeros(256, np.uint8)
    table[np.frombuffer(b"ACGT", np.uint8)] = [1, 2, 3, 4]
    codes = table[np.frombuffer(b"".join(bases), np.uint8)]
    if not codes.all():
        raise InputError("reference has bases other than A, C, G, T")
    return codes


def open_labelled(paths: Iterable[str | Path]) -> Iterator[LabelledRead | ChunkSet]:
    """Labelled reads (or prepared chunk sets) from files and folders of any supported source."""
    for path in map(Path, paths):
        if path.is_dir() and (path / "chunks.npy").exists():
            yield ChunkSet.load(path)
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            suffix = file.suffix.lower()
            if suffix == ".fast5":
                yield from read_tombo(file)
            elif suffix in (".hdf5", ".h5"):
                yield from read_taiyaki(file)
            elif not path.is_dir():
                raise InputError(f"{file}: not a labelled-read file (.fast5 Tombo, .hdf5 Taiyaki, or a chunk folder)")


def read_chunks(
    read: LabelledRead, chunksize: int, stride: int, rng: np.random.Generator | None = None
) -> ChunkSet:
    """Cut the mapped part of a read into non-overlapping chunks labelled with the bases that start inside them.

    With `rng`, the first chunk starts at a random offset (different chunks each epoch). Chunks whose base count is
    implausible (fewer than a fifth or more than twice the expected rate, or too many for CTC at this stride) are
    dropped: those are stalls, skips or bad mappings.
    """
    signal = normalise(read.calibration.to_pa(read.signal))
    begin, end = int(read.ref_to_signal[0]), int(read.ref_to_signal[-1])
    if rng is not None:
        begin += int(rng.integers(0, chunksize))
    starts = np.arange(begin, end - chunksize + 1, chunksize)
    base_starts = read.ref_to_signal[:-1]
    first = np.searchsorted(base_starts, starts)  # (n_chunks,) first base starting inside each chunk
    lengths = np.searchsorted(base_starts, starts + chunksize) - first
    labels = [read.reference[a : a + n] for a, n in zip(first, lengths)]
    expected = chunksize / SAMPLES_PER_BASE
    keep = [
        expected / 5 <= len(bases) <= 2 * expected and _ctc_steps(bases) <= chunksize // stride
        for bases in labels
    ]
    rows = np.flatnonzero(keep)
    references = np.zeros((len(rows), int(lengths[rows].max()) if len(rows) else 0), np.uint8)
    for row, i in enumerate(rows):
        references[row, : lengths[i]] = labels[i]
    chunks = np.zeros((len(rows), chunksize), np.float32)
    for row, i in enumerate(rows):
        chunks[row] = signal[starts[i] : starts[i] + chunksize]
    return ChunkSet(chunks, references, lengths[rows].astype(np.int64))


def _ctc_steps(bases: np.ndarray) -> int:
    """Fewest timesteps CTC needs for this label: one per base plus a blank between equal neighbours."""
    return len(bases) + int(np.count_nonzero(bases[1:] == bases[:-1]))
