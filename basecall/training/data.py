"""Labelled reads for training, from every source we read, turned into the same training chunks.

Sources (dispatch in `open_labelled`):
- Tombo-resquiggled fast5 (``Analyses/RawGenomeCorrected_000/BaseCalled_template/Events``: start, length, base)
- Taiyaki mapped-signal v8 HDF5 (``Reads/<id>`` or ``Batches/<n>`` layout: Dacs, Reference, Ref_to_signal); the
  simulator (`basecall simulate`) writes its labels in this format too
- a prepared chunk folder: ``chunks.npy`` (N, chunksize) float32, ``references.npy`` (N, max_len) uint8 (1-4 = ACGT,
  0 = padding), ``reference_lengths.npy`` (N,) (the layout bonito uses)
- an aligned BAM (or SAM) from Dorado with move tables (``dorado basecaller --emit-moves --reference ...``: tags mv,
  ts, ns, and pi/sp for split reads), its reads' signal from the pod5 files and folders given beside it; the labels are
  the reference span each primary alignment covers, from a reference FASTA if given, else rebuilt from SEQ+CIGAR+MD

Chunks are normalised exactly as at basecalling time (`basecall.signal.normalise` over the whole read).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np
import vbz_h5py_plugin  # noqa: F401  (registers the VBZ HDF5 filter)

from basecall.atomic import atomic_path
from basecall.errors import InputError, one_line
from basecall.readers import SUFFIXES as READ_SUFFIXES
from basecall.readers import read_file
from basecall.readers.pod5 import read_pod5
from basecall.records import Calibration, Failure, Read
from basecall.sequence import decode, encode, read_fasta, reverse_complement_codes
from basecall.signal import normalise

if TYPE_CHECKING:
    import pysam

log = logging.getLogger(__name__)

SAMPLES_PER_BASE = 9.0  # R9.4.1 at 4 kHz, ≈ 450 bases/s; used to drop chunks of stalled or skipped signal
# R10.4.1 at 400 bases/s (10 samples per base at 4 kHz, 12.5 at 5 kHz: 400 or 320 bases per 4,000-sample chunk) is well
# inside the kept range (89-889 bases per chunk) too: of the 514 chunks of the 28 labelled R10.4.1 reads in
# ../shared/data one is dropped (36 bases: a stall).


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
        return decode(self.reference)


@dataclass
class ChunkSet:
    """Training chunks: normalised signal windows and their reference bases (and, from a teacher of the model's
    stride, its posteriors at each timestep)."""

    chunks: np.ndarray  # (N, chunksize) float32
    references: np.ndarray  # (N, max_len) uint8, 1-4 = ACGT, 0-padded
    lengths: np.ndarray  # (N,) int64 number of bases of each chunk
    posteriors: np.ndarray | None = None  # (N, chunksize / stride, 5) float16 teacher probabilities; rows of 0: none

    def __len__(self) -> int:
        return int(self.chunks.shape[0])

    def save(self, directory: str | Path) -> Path:
        """Write the chunk folder, each file under a temporary name then renamed (see `basecall.atomic`)."""
        directory = Path(directory)
        arrays = {
            "references.npy": self.references,  # (N, max_len) uint8
            "reference_lengths.npy": self.lengths,  # (N,) int64
            **({} if self.posteriors is None else {"posteriors.npy": self.posteriors}),  # (N, T', 5) float16
            "chunks.npy": self.chunks,  # (N, chunksize) float32
        }
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for name, array in arrays.items():
                with atomic_path(directory / name) as temporary, open(temporary, "wb") as handle:
                    np.save(handle, array)  # to a handle: given a name, np.save would add .npy to the temporary one
        except OSError as e:
            raise InputError(f"{directory}: cannot write the training chunks: {e.strerror or e}") from e
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ChunkSet:
        directory = Path(directory)
        try:
            chunks = np.load(directory / "chunks.npy").astype(np.float32, copy=False)
            references = np.load(directory / "references.npy").astype(np.uint8, copy=False)
            lengths = np.load(directory / "reference_lengths.npy").astype(np.int64, copy=False)
            posteriors = np.load(directory / "posteriors.npy") if (directory / "posteriors.npy").exists() else None
        except (OSError, ValueError) as e:
            raise InputError(f"{directory}: not a chunk folder (chunks.npy, references.npy, reference_lengths.npy): {one_line(e)}") from e
        if not (len(chunks) == len(references) == len(lengths) == len(chunks if posteriors is None else posteriors)):
            raise InputError(f"{directory}: chunks, references, lengths (and posteriors) have different counts")
        return cls(chunks, references, lengths, posteriors)

    @classmethod
    def concatenate(cls, sets: Iterable[ChunkSet]) -> ChunkSet:
        """One set of all the chunks; where only some sets have posteriors, the others' rows get zeros (none)."""
        sets = [s for s in sets if len(s)]
        if not sets:
            raise InputError("no training chunks")
        width = max(s.references.shape[1] for s in sets)
        refs = [np.pad(s.references, ((0, 0), (0, width - s.references.shape[1]))) for s in sets]
        shapes = {s.posteriors.shape[1:] for s in sets if s.posteriors is not None}
        if len(shapes) > 1:
            raise InputError(f"teacher posteriors of different shapes: {sorted(shapes)}")
        posteriors = None
        if shapes:
            shape = shapes.pop()
            posteriors = np.concatenate(
                [s.posteriors if s.posteriors is not None else np.zeros((len(s), *shape), np.float16) for s in sets]
            )
        return cls(
            np.concatenate([s.chunks for s in sets]), np.concatenate(refs), np.concatenate([s.lengths for s in sets]),
            posteriors,
        )  # fmt: skip

    def subset(self, index: np.ndarray) -> ChunkSet:
        posteriors = None if self.posteriors is None else self.posteriors[index]
        return ChunkSet(self.chunks[index], self.references[index], self.lengths[index], posteriors)


def read_tombo(path: Path) -> Iterator[LabelledRead]:
    """Tombo 1.5 resquiggled single-read fast5: events hold each base's start and length in the raw signal."""
    from basecall.readers.fast5 import read_fast5

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
    yield LabelledRead(read.read_id, read.signal, read.calibration, _encode(b"".join(events["base"])), ref_to_signal)


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


def _encode(bases: str | bytes) -> np.ndarray:
    """Bases → (n_bases,) uint8 1-4 (`basecall.sequence.encode`); InputError for any base other than ACGT."""
    codes = encode(bases)
    if not codes.all():
        raise InputError("reference has bases other than A, C, G, T")
    return codes


@dataclass(frozen=True)
class _Alignment:
    """A BAM record's labels, waiting for its signal from a pod5 file."""

    read_id: str
    offset: int  # first sample of this read in the pod5 read's signal (sp: nonzero for Dorado split reads)
    n_samples: int  # ns: samples of this read
    reference: np.ndarray  # (n_bases,) uint8 1-4, in signal order
    ref_to_signal: np.ndarray  # (n_bases + 1,) int64, relative to `offset`


_MATCH, _QUERY_ONLY, _REFERENCE_ONLY = (0, 7, 8), (1, 4, 5), (2, 3)  # CIGAR M = X; I S H; D N


def read_bam(path: Path, pod5_files: Sequence[Path], reference: Path | None = None) -> Iterator[LabelledRead]:
    """Dorado reads aligned with move tables (mv, ts, ns tags), labelled with the reference they align to.

    Only primary alignments are used. The reference bases come from `reference` (FASTA, plain or compressed,
    read into memory) if given, else from each record's SEQ, CIGAR and MD tag; they are put in signal order
    (reverse-complemented for reverse-strand alignments). The signal is looked up by read id (the parent id ``pi``
    for split reads) in `pod5_files`.
    """
    import pysam

    fasta = read_fasta(reference) if reference is not None else None
    pending: dict[str, list[_Alignment]] = {}  # pod5 read id → the alignments that take their signal from it
    skipped: Counter[str] = Counter()
    try:
        with pysam.AlignmentFile(str(path), check_sq=False) as bam:
            for record in bam:
                try:
                    aligned = _alignment(record, fasta, reference)
                except _Skip as e:
                    skipped[str(e)] += 1
                    continue
                parent = str(record.get_tag("pi")) if record.has_tag("pi") else aligned.read_id
                pending.setdefault(parent, []).append(aligned)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable BAM/SAM file: {one_line(e)}") from e
    except InputError as e:
        raise InputError(f"{path}: {e}") from e
    n_labelled = 0
    for pod5_file in pod5_files:
        for read in read_pod5(pod5_file, read_ids=list(pending)):
            if isinstance(read, Failure):
                if read.read_id is None:
                    raise InputError(read.message())
                log.warning("%s", read.message())
                continue
            for aligned in pending.pop(read.read_id, []):
                signal = read.signal[aligned.offset : aligned.offset + aligned.n_samples]
                if aligned.ref_to_signal[-1] > len(signal):
                    skipped["signal shorter than its move table"] += 1
                    continue
                n_labelled += 1
                yield LabelledRead(aligned.read_id, signal, read.calibration, aligned.reference, aligned.ref_to_signal)
    skipped["no signal in the pod5 files given"] += sum(map(len, pending.values()))
    reasons = ", ".join(f"{count} {reason}" for reason, count in skipped.items() if count)
    log.info("%s: %d labelled reads%s", path, n_labelled, f"; skipped {reasons}" if reasons else "")


class _Skip(Exception):
    """A BAM record that gives no labels (the message says why; counted, not fatal)."""


def _alignment(record: pysam.AlignedSegment, fasta: dict[str, str] | None, fasta_path: Path | None) -> _Alignment:
    """The reference bases a primary alignment covers and the signal position of each, both in signal order.
    `fasta`: the reference's sequences by contig (read from `fasta_path`), or None to use the MD tags."""
    if record.is_unmapped or record.is_secondary or record.is_supplementary:
        raise _Skip("unmapped, secondary or supplementary")
    if not record.has_tag("mv"):
        raise _Skip("without a move table (mv tag; basecall with --emit-moves)")
    mv = np.asarray(record.get_tag("mv"))  # (1 + n_timesteps,): the stride, then 1 where a base starts
    stride, moves = int(mv[0]), mv[1:]
    if int(moves.sum()) != record.infer_read_length():
        raise _Skip("whose move table does not match the read length")
    if fasta is not None:
        forward = _fetch(fasta, record, fasta_path)
    elif record.has_tag("MD"):
        forward = record.get_reference_sequence()
    else:
        raise InputError(f"read {record.query_name} has no MD tag: give the reference FASTA or run samtools calmd")
    try:
        reference = _encode(forward.upper())  # (n_bases,) in reference order
    except InputError as e:
        raise _Skip("whose reference has bases other than A, C, G, T") from e
    cigar = record.cigartuples
    if record.is_reverse:  # SEQ and CIGAR are stored along the reference; the signal reads the other strand
        reference, cigar = reverse_complement_codes(reference), cigar[::-1]
    query_to_signal = int(record.get_tag("ts")) + stride * np.append(np.flatnonzero(moves), len(moves))
    return _Alignment(
        read_id=record.query_name,
        offset=int(record.get_tag("sp")) if record.has_tag("sp") else 0,
        n_samples=int(record.get_tag("ns")),
        reference=np.ascontiguousarray(reference),
        ref_to_signal=_ref_to_signal(cigar, query_to_signal, len(reference)),
    )


def _fetch(fasta: dict[str, str], record: pysam.AlignedSegment, path: Path) -> str:
    """The reference span of an alignment, from the FASTA's sequences (`path` names the file in errors)."""
    if record.reference_name not in fasta:
        raise InputError(f"{path}: no contig {record.reference_name}")
    forward = fasta[record.reference_name][record.reference_start : record.reference_end]
    if len(forward) != record.reference_length:
        raise InputError(f"{path}: {record.reference_name} is shorter than the BAM's alignments")
    return forward


def _ref_to_signal(cigar: list[tuple[int, int]], query_to_signal: np.ndarray, n_bases: int) -> np.ndarray:
    """First sample of each reference base, then the end of the last one, from a CIGAR in signal order.

    query_to_signal: (n_query + 1,) first sample of each called base (clipped ones included), then the end of the
    last. A reference base starts where the called base aligned to it starts; inserted bases extend the reference base
    before them; deleted reference bases share, evenly, the span between their aligned neighbours (so where a deletion
    is longer than that span in samples, several bases start at the same sample). Clipped bases lie outside the span.
    Returns (n_bases + 1,) int64, non-decreasing.
    """
    starts = np.full(n_bases + 1, np.nan)  # NaN: a deleted base, interpolated below
    query = ref = 0
    for op, length in cigar:
        if op in _MATCH:
            starts[ref : ref + length] = query_to_signal[query : query + length]
            query, ref = query + length, ref + length
            end = query_to_signal[query]
        elif op in _QUERY_ONLY:
            query += length
        elif op in _REFERENCE_ONLY:
            ref += length
    starts[n_bases] = end
    deleted = np.isnan(starts)
    index = np.arange(n_bases + 1)
    starts[deleted] = np.interp(index[deleted], index[~deleted], starts[~deleted])
    return np.floor(starts).astype(np.int64)


def open_labelled(
    paths: Iterable[str | Path], reference: str | Path | None = None, unlabelled: bool = False
) -> Iterator[LabelledRead | ChunkSet | Read | Failure]:
    """Labelled reads (or prepared chunk sets) from files and folders of any supported source.

    A .bam (or .sam) of aligned Dorado calls takes its reads' signal from the .pod5 files given beside it in `paths`,
    directly or inside folders (as in ``remora dataset prepare reads.pod5 calls.bam``): ``["pod5_dir", "calls.bam"]``,
    or one folder holding both. `reference` is the FASTA the BAM was aligned to; without it the reference bases are
    rebuilt from the records' MD tags. With `unlabelled` (a teacher will label them), read files that carry no
    labels (.pod5 without a BAM, .blow5/.slow5, fast5 without a Tombo resquiggle) yield their `Read`s (and Failures)
    instead of being an error.
    """
    sources = [(path, _files(path)) for path in map(Path, paths)]
    listed = [file for _, files in sources for file in files or []]
    pod5_files = [file for file in listed if file.suffix.lower() == ".pod5"]
    alignments = [file for file in listed if file.suffix.lower() in (".bam", ".sam")]
    if pod5_files and not alignments and not unlabelled:
        raise InputError(f"{pod5_files[0]}: pod5 has no labels; give the aligned BAM with move tables beside it, or a --teacher")
    if alignments and not pod5_files:
        raise InputError(f"{alignments[0]}: give the pod5 files (or folders) with its reads' signal beside it")
    for path, files in sources:
        if files is None:
            yield ChunkSet.load(path)
        for file in files or []:
            suffix = file.suffix.lower()
            if suffix == ".fast5":
                yield from _tombo_or_unlabelled(file, unlabelled)
            elif suffix in (".hdf5", ".h5"):
                yield from read_taiyaki(file)
            elif suffix in (".bam", ".sam"):
                yield from read_bam(file, pod5_files, None if reference is None else Path(reference))
            elif unlabelled and suffix in READ_SUFFIXES and not (suffix == ".pod5" and alignments):
                yield from read_file(file)
            elif suffix != ".pod5" and not path.is_dir():
                raise InputError(
                    f"{file}: not a labelled-read file (Tombo .fast5, Taiyaki .hdf5, .bam with .pod5, chunk folder)"
                )


def _tombo_or_unlabelled(path: Path, unlabelled: bool) -> Iterator[LabelledRead | Read | Failure]:
    """A Tombo-resquiggled fast5's labelled read; with `unlabelled`, any other fast5's reads."""
    try:
        labelled = list(read_tombo(path))
    except InputError:
        if not unlabelled:
            raise
        yield from read_file(path)
        return
    yield from labelled


def _files(path: Path) -> list[Path] | None:
    """The files a DATA path stands for (a folder's, recursively, sorted); None for a prepared chunk folder."""
    if path.is_dir():
        return None if (path / "chunks.npy").exists() else sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


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
        expected / 5 <= len(bases) <= 2 * expected and ctc_steps(bases) <= chunksize // stride
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


def ctc_steps(bases: np.ndarray) -> int:
    """Fewest timesteps CTC needs for this label: one per base plus a blank between equal neighbours."""
    return len(bases) + int(np.count_nonzero(bases[1:] == bases[:-1]))
