"""Simulated nanopore reads with a known sequence: a pore-model signal simulator.

The simulator turns DNA sequences (sampled from a reference FASTA or a random genome) into raw signal with a k-mer
pore model (`load_pore_model`), a per-base dwell distribution, level and sample noise, per-read scale and shift, and
int16 digitisation. `simulate` writes pod5 and/or fast5 files (`basecall.rawfiles`), a truth FASTA and the
base-to-signal labels as a Taiyaki mapped-signal v8 file (`labels.hdf5`), so a model can be trained and evaluated on
reads whose truth is exact.

Bases are coded as everywhere else (`basecall.sequence`: A, C, G, T = 1-4); a k-mer's index (`kmer_index`) counts
A=0 ... T=3, first base most significant.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from basecall.errors import ConfigError, InputError, one_line
from basecall.rawfiles import DIGITISATION, digitise, int16_signal, write_fast5, write_pod5
from basecall.records import Calibration, Read
from basecall.sequence import BASES, decode, encode, reverse_complement


# --- pore models --------------------------------------------------------------------------------------------------

TSV_COLUMNS = ("kmer", "level_mean", "level_stdv", "sd_mean", "sd_stdv")


@dataclass(frozen=True)
class PoreModel:
    """The current each k-mer gives, in picoamps, with its spread.

    Arrays are indexed by `kmer_index` (A=0, C=1, G=2, T=3, first base most significant: k-mers in lexicographic
    order). In a sequence written in signal order (5'→3', as basecallers output it), the current while base ``i`` is
    in the pore is that of the k-mer ``sequence[i - shift : i - shift + k]``.
    """

    name: str
    k: int
    shift: int  # position in the k-mer of the base the current is attributed to (0-based)
    level_pa: np.ndarray = field(repr=False)  # (4**k,) mean current of each k-mer
    level_sd_pa: np.ndarray = field(repr=False)  # (4**k,) spread of that mean between events of one k-mer
    noise_sd_pa: np.ndarray = field(repr=False)  # (4**k,) mean standard deviation of the samples within an event
    noise_sd_sd_pa: np.ndarray = field(repr=False)  # (4**k,) spread of that standard deviation (inverse Gaussian)


def load_pore_model(path: str | Path, shift: int | None = None) -> PoreModel:
    """A k-mer model from a TSV table (ONT's legacy ``.model``) or an Uncalled4 ``.npz``.

    TSV: a header with at least ``kmer level_mean level_stdv sd_mean sd_stdv`` (pA), one row per k-mer; `shift`
    defaults to ``(k - 1) // 2`` (2 for 6-mers, measured on Tombo-resquiggled R9.4.1 reads). npz: normalised levels
    converted with ``_pa_mean`` / ``_pa_stdv``; `shift` defaults to the file's ``_shift``. Every one of the 4**k
    k-mers must be present exactly once. Raises InputError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such pore model file")
    try:
        kmers, columns, file_shift = _read_npz(path) if path.suffix == ".npz" else _read_tsv(path)
        return _pore_model(path.stem, kmers, columns, file_shift if shift is None else shift)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{path}: not a usable pore model: {one_line(e)}") from e


def _read_tsv(path: Path) -> tuple[list[str], dict[str, np.ndarray], int | None]:
    lines = [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    if not lines or any(name not in lines[0] for name in TSV_COLUMNS):
        raise ValueError(f"expected a tab-separated table with the columns {' '.join(TSV_COLUMNS)}")
    header, rows = lines[0], lines[1:]
    if any(len(row) != len(header) for row in rows):
        raise ValueError("rows have different numbers of fields")
    columns = {name: np.array([float(row[header.index(name)]) for row in rows]) for name in TSV_COLUMNS[1:]}
    return [row[header.index("kmer")] for row in rows], columns, None


def _read_npz(path: Path) -> tuple[list[str], dict[str, np.ndarray], int]:
    with np.load(path) as table:
        if bool(table.get("_reverse", False)) or bool(table.get("_complement", False)):
            raise ValueError("reversed or complemented k-mer tables are not supported")
        mean, stdv = float(table["_pa_mean"]), float(table["_pa_stdv"])
        columns = {
            "level_mean": table["current.mean"] * stdv + mean,
            "level_stdv": table["current.stdv"] * stdv,
            "sd_mean": table["current_sd.mean"] * stdv,
            "sd_stdv": table["current_sd.stdv"] * stdv,
        }
        return [str(kmer) for kmer in table["kmer"]], columns, int(table["_shift"])


def _pore_model(name: str, kmers: list[str], columns: dict[str, np.ndarray], shift: int | None) -> PoreModel:
    """Check that `kmers` are all 4**k k-mers once each and put the columns in `kmer_index` order."""
    k = len(kmers[0]) if kmers else 0
    if k == 0 or len(kmers) != 4**k or any(len(kmer) != k for kmer in kmers):
        raise ValueError(f"expected all 4**k k-mers once each, found {len(kmers)} rows")
    codes = encode("".join(kmers)).reshape(len(kmers), k)
    if not codes.all():
        raise ValueError(f"k-mers must use only {BASES}")
    index = kmer_index(codes, k)[:, 0]  # (4**k,)
    order = np.argsort(index)
    if not np.array_equal(index[order], np.arange(4**k)):
        raise ValueError("some k-mers are repeated")
    shift = (k - 1) // 2 if shift is None else shift
    if not 0 <= shift < k:
        raise ValueError(f"shift {shift} is outside the {k}-mer")
    level, level_sd, noise, noise_sd = (np.asarray(columns[c], np.float64)[order] for c in TSV_COLUMNS[1:])
    if (noise <= 0).any() or (noise_sd <= 0).any() or (level_sd < 0).any():
        raise ValueError("level_stdv must be >= 0, sd_mean and sd_stdv > 0")
    return PoreModel(name, k, shift, level, level_sd, noise, noise_sd)


def kmer_index(codes: np.ndarray, k: int) -> np.ndarray:
    """Index of every k-mer along the last axis of `codes` (..., n) 1-4 = ACGT (`basecall.sequence.encode`) →
    (..., n - k + 1) int64, in lexicographic order: A...A = 0, T...T = 4**k - 1."""
    n = codes.shape[-1] - k + 1
    digits = np.asarray(codes, np.int64) - 1  # (..., n) 0-3
    index = np.zeros(codes.shape[:-1] + (n,), dtype=np.int64)
    for j in range(k):
        index = index * 4 + digits[..., j : j + n]
    return index


# --- signal -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalModel:
    """How a read's signal is drawn from the pore model. Durations are in mean dwells, so they hold at any sample
    rate. `CHEMISTRIES` holds the values fitted to real reads (benchmarks/simulator_vs_real.py); the class
    defaults are the R9.4.1 ones.

    Dwell of a base, in mean dwells: ``dwell_min_fraction + Gamma(dwell_shape)`` plus, with probability
    `pause_probability`, an exponential pause of mean `pause_mean`; the gamma's mean makes the total mean 1. A read's
    mean dwell is ``sample_rate_hz / bases_per_s`` times a log-normal speed factor (sd of the log `read_speed_sd`).
    Current of a sample: ``shift + scale * (level + level_noise + sample_noise)``: level is the k-mer's `level_pa`;
    level_noise ~ N(0, (level_sd_factor * level_sd_pa)²), once per base; sample_noise ~ N(0, σ²), per sample, with σ
    drawn once per base from the model's inverse Gaussian (mean `noise_sd_pa`, sd `noise_sd_sd_pa`) times
    `noise_sd_factor` times a per-read log-normal factor (sd of the log `read_noise_sd`); per read,
    scale ~ N(scale_mean, scale_sd²) and shift ~ N(shift_mean_pa, shift_sd_pa²). The current is then low-pass
    filtered, as by the amplifier, with a symmetric kernel: weight 1 at the centre and `smoothing` at 1, 2, ...
    samples away (normalised to sum 1); this correlates neighbouring samples and rounds the steps between bases.
    The filter divides white noise by ≈1.45 (default kernel), which `noise_sd_factor` makes up for.
    """

    bases_per_s: float = 400.0  # mean translocation speed: 10 samples per base at 4 kHz, 12.5 at 5 kHz
    read_speed_sd: float = 0.12  # read-to-read speed spread (sd of the log)
    dwell_shape: float = 1.2  # gamma shape of a dwell's variable part (1 = exponential)
    dwell_min_fraction: float = 0.2  # fixed part of every dwell, in mean dwells
    pause_probability: float = 0.03  # chance that a base also pauses
    pause_mean: float = 2.0  # mean pause, in mean dwells
    level_sd_factor: float = 0.7  # × the model's level_stdv: base-to-base level noise
    noise_sd_factor: float = 2.3  # × the model's sd_mean: sample noise before the low-pass filter
    read_noise_sd: float = 0.12  # read-to-read noise spread (sd of the log)
    smoothing: tuple[float, ...] = (0.22, 0.08)  # low-pass kernel weights 1, 2, ... samples from the centre
    scale_mean: float = 1.09  # per-read gain on the model's pA (before the filter flattens short bases)
    scale_sd: float = 0.025
    shift_mean_pa: float = -17.0  # per-read offset in pA
    shift_sd_pa: float = 2.0

    def __post_init__(self) -> None:
        if self.bases_per_s <= 0 or self.dwell_shape <= 0 or self.scale_mean <= 0:
            raise ConfigError("bases_per_s, dwell_shape and scale_mean must be positive")
        if not 0 <= self.pause_probability <= 1 or self.gamma_mean <= 0:
            raise ConfigError("dwell_min_fraction + pause_probability * pause_mean must be below 1 mean dwell")

    @property
    def gamma_mean(self) -> float:
        """Mean of the gamma part of a dwell, in mean dwells."""
        return 1.0 - self.dwell_min_fraction - self.pause_probability * self.pause_mean

    def mean_dwell(self, sample_rate_hz: float) -> float:
        """Mean samples per base at `sample_rate_hz`."""
        return sample_rate_hz / self.bases_per_s


@dataclass(frozen=True)
class Chemistry:
    """Simulation defaults for one pore chemistry: the sample rate and the fitted `SignalModel`."""

    name: str
    sample_rate_hz: float
    signal_model: SignalModel


CHEMISTRIES = {
    chemistry.name: chemistry
    for chemistry in (
        # fitted to the Tombo-resquiggled R9.4.1 lambda reads with the ONT 6-mer model (the SignalModel defaults)
        Chemistry("r9.4.1", 4000.0, SignalModel()),
        # fitted to the current range and noise of real R10.4.1 pod5 reads (no labels) with the Uncalled4 9-mer
        # model; level noise set to R9.4.1's relative to the spread of the k-mer levels
        Chemistry(
            "r10.4.1",
            5000.0,
            SignalModel(level_sd_factor=0.5, noise_sd_factor=1.6, scale_mean=0.88, shift_mean_pa=13.0),
        ),
    )
}


def chemistry_for(pore_model: PoreModel) -> Chemistry:
    """The chemistry a pore model is for, by its k: R10.4.1 for 9-mers, R9.4.1 otherwise."""
    return CHEMISTRIES["r10.4.1" if pore_model.k == 9 else "r9.4.1"]


def sample_dwells(n_bases: int, mean_dwell: float, rng: np.random.Generator, model: SignalModel) -> np.ndarray:
    """Samples per base, (n_bases,) int64 >= 1, with mean ≈ `mean_dwell` (the `SignalModel` dwell distribution)."""
    dwell = model.dwell_min_fraction + rng.gamma(model.dwell_shape, model.gamma_mean / model.dwell_shape, n_bases)
    pauses = rng.random(n_bases) < model.pause_probability
    dwell[pauses] += rng.exponential(model.pause_mean, int(pauses.sum()))
    return np.maximum(np.rint(dwell * mean_dwell), 1).astype(np.int64)


def sequence_to_signal(
    sequence: str,
    pore_model: PoreModel,
    rng: np.random.Generator,
    sample_rate_hz: float,
    model: SignalModel,
) -> tuple[np.ndarray, np.ndarray]:
    """One read's current for `sequence` (ACGT, in signal order), as in `SignalModel`.

    The k-mers of the first `shift` and last ``k - 1 - shift`` bases reach past the sequence; that context is drawn
    at random. Returns (signal_pa, ref_to_signal): (n_samples,) float32 picoamps, and (n_bases + 1,) int32 sample
    positions: base i spans samples ``ref_to_signal[i] : ref_to_signal[i + 1]``, from 0 to n_samples.
    """
    codes = encode(sequence)
    if not codes.all():
        raise ValueError(f"sequences must use only {BASES}")
    k, shift = pore_model.k, pore_model.shift
    context = np.concatenate([rng.integers(1, 5, shift), codes, rng.integers(1, 5, k - 1 - shift)]).astype(np.uint8)
    kmers = kmer_index(context, k)  # (n_bases,)
    read_dwell = model.mean_dwell(sample_rate_hz) * np.exp(rng.normal(0.0, model.read_speed_sd))
    dwells = sample_dwells(len(sequence), read_dwell, rng, model)
    levels = pore_model.level_pa[kmers] + rng.normal(0.0, 1.0, kmers.size) * (
        model.level_sd_factor * pore_model.level_sd_pa[kmers]
    )
    noise_factor = model.noise_sd_factor * np.exp(rng.normal(0.0, model.read_noise_sd))
    noise_mean = noise_factor * pore_model.noise_sd_pa[kmers]
    noise_sd = rng.wald(noise_mean, noise_mean**3 / (noise_factor * pore_model.noise_sd_sd_pa[kmers]) ** 2)
    samples = np.repeat(levels, dwells) + rng.standard_normal(int(dwells.sum())) * np.repeat(noise_sd, dwells)
    scale = rng.normal(model.scale_mean, model.scale_sd)
    shift_pa = rng.normal(model.shift_mean_pa, model.shift_sd_pa)
    ref_to_signal = np.concatenate([[0], np.cumsum(dwells)]).astype(np.int32)
    return (shift_pa + scale * low_pass(samples, model.smoothing)).astype(np.float32), ref_to_signal


def low_pass(signal: np.ndarray, smoothing: tuple[float, ...]) -> np.ndarray:
    """`signal` (n_samples,) convolved with the normalised kernel (..., s2, s1, 1, s1, s2, ...), ends padded by
    repeating the first and last sample. Returns (n_samples,) float64."""
    if not smoothing:
        return signal
    kernel = np.concatenate([smoothing[::-1], [1.0], smoothing])
    padded = np.pad(signal, len(smoothing), mode="edge")
    return np.convolve(padded, kernel / kernel.sum(), mode="valid")


# --- simulated reads ----------------------------------------------------------------------------------------------

RANGE_PA = 1497.77  # ADC range of the real R9.4.1 lambda reads (digitisation 8192): 0.18 pA per ADC step
READ_LENGTH_SHAPE = 2.0  # gamma shape of the read-length distribution


@dataclass(frozen=True)
class SimulatedRead:
    """A simulated read with its truth: the bases in signal order and where each base lies in the signal."""

    read: Read
    sequence: str  # (n_bases,) in signal order; reverse-complemented for reads of the reverse strand
    ref_to_signal: np.ndarray = field(repr=False)  # (n_bases + 1,) int32: first sample of each base, then n_samples
    source: str  # "contig:start-end:strand", 0-based half-open reference coordinates


def random_genome(length: int, rng: np.random.Generator) -> str:
    """A uniformly random ACGT sequence of `length` bases."""
    return decode(rng.integers(1, 5, length))


def sample_fragment(
    reference: dict[str, str], mean_read_length: float, min_read_length: int, rng: np.random.Generator
) -> tuple[str, str]:
    """A random piece of `reference` as read from either strand: (sequence in signal order, source).

    Contigs are chosen in proportion to their length, strands with equal chance; the length is drawn from a gamma
    distribution (shape 2, mean `mean_read_length`), at least `min_read_length` and at most the contig's length.
    Bases other than ACGT (N, IUPAC codes) are replaced by random bases, so the truth is what the signal shows.
    """
    names = [name for name, sequence in reference.items() if sequence]
    lengths = np.array([len(reference[name]) for name in names], dtype=np.float64)
    contig = names[rng.choice(len(names), p=lengths / lengths.sum())]
    genome = reference[contig]
    drawn = rng.gamma(READ_LENGTH_SHAPE, mean_read_length / READ_LENGTH_SHAPE)
    length = int(min(max(round(drawn), min_read_length), len(genome)))
    start = int(rng.integers(0, len(genome) - length + 1))
    strand = "+" if rng.random() < 0.5 else "-"
    fragment = _fill_ambiguous(genome[start : start + length], rng)
    if strand == "-":
        fragment = reverse_complement(fragment)
    return fragment, f"{contig}:{start}-{start + length}:{strand}"


def _fill_ambiguous(sequence: str, rng: np.random.Generator) -> str:
    codes = encode(sequence)
    unknown = codes == 0
    if not unknown.any():
        return sequence
    codes[unknown] = rng.integers(1, 5, int(unknown.sum()))
    return decode(codes)


def simulate_reads(
    reference: dict[str, str],
    pore_model: PoreModel,
    n_reads: int,
    seed: int,
    sample_rate_hz: float | None = None,
    mean_read_length: float = 5000.0,
    min_read_length: int = 200,
    model: SignalModel | None = None,
) -> Iterator[SimulatedRead]:
    """`n_reads` reads sampled from `reference` (`sample_fragment`) and turned into signal (`sequence_to_signal`).

    `sample_rate_hz` and `model` default to those of the pore model's chemistry (`chemistry_for`).

    Same arguments and seed → identical reads. The reads share one run (run id, acquisition start drawn from the
    seed), are numbered from 1 and follow each other in time; each has a random channel (1-512), a UUID4 read id
    drawn from the seed, and a calibration with digitisation 8192, range `RANGE_PA` and an integer offset in [-5, 20].
    """
    if not any(reference.values()):
        raise InputError("the reference has no sequence to sample reads from")
    chemistry = chemistry_for(pore_model)
    sample_rate_hz = chemistry.sample_rate_hz if sample_rate_hz is None else sample_rate_hz
    model = chemistry.signal_model if model is None else model
    rng = np.random.default_rng(seed)
    run = {
        "run_id": rng.bytes(20).hex(),
        "acquisition_start": datetime(2024, 1, 1, tzinfo=timezone.utc)
        + timedelta(seconds=int(rng.integers(0, 365 * 24 * 3600))),
    }
    start_sample = 0
    for number in range(1, n_reads + 1):
        sequence, source = sample_fragment(reference, mean_read_length, min_read_length, rng)
        signal_pa, ref_to_signal = sequence_to_signal(sequence, pore_model, rng, sample_rate_hz, model)
        calibration = Calibration.from_range(int(rng.integers(-5, 21)), RANGE_PA, DIGITISATION)
        start_sample += int(rng.integers(100, 4000))
        read = Read(
            read_id=str(uuid.UUID(bytes=rng.bytes(16), version=4)),
            signal=digitise(signal_pa, calibration),
            calibration=calibration,
            sample_rate_hz=float(sample_rate_hz),
            channel=int(rng.integers(1, 513)),
            start_sample=start_sample,
            read_number=number,
            path="",
            **run,
        )
        start_sample += read.n_samples
        yield SimulatedRead(read, sequence, ref_to_signal, source)


# --- simulation outputs -------------------------------------------------------------------------------------------

Format = Literal["pod5", "fast5"]


class MappedSignalWriter:
    """Base-to-signal labels as a Taiyaki mapped-signal file, version 8 (the per-read layout Taiyaki writes).

    Root attributes ``version`` = 8, ``alphabet`` = ``collapse_alphabet`` = "ACGT", ``mod_long_names`` = "";
    a group ``Reads/<read_id>`` per read with datasets ``Dacs`` (n_samples,) int16 raw signal, ``Reference``
    (n_bases,) int16 codes 0-3 = ACGT, ``Ref_to_signal`` (n_bases + 1,) int32 (first sample of each base, then its
    end), and attributes ``read_id``, ``digitisation``, ``offset``, ``range`` (pA = (Dacs + offset) * range /
    digitisation), ``shift_frompA``, ``scale_frompA`` (normalised = (pA - shift) / scale: the read's median and
    1.4826 × MAD in pA, as Taiyaki computes them). A context manager; refuses to overwrite `path`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = h5py.File(self.path, "w-")
        self._file.attrs["version"] = np.int64(8)
        for name, value in (("alphabet", BASES), ("collapse_alphabet", BASES), ("mod_long_names", "")):
            self._file.attrs[name] = value
        self._reads = self._file.create_group("Reads")

    def add(self, simulated: SimulatedRead) -> None:
        read = simulated.read
        group = self._reads.create_group(read.read_id)
        group.create_dataset("Dacs", data=int16_signal(read))
        group.create_dataset("Ref_to_signal", data=simulated.ref_to_signal.astype(np.int32))
        group.create_dataset("Reference", data=encode(simulated.sequence).astype(np.int16) - 1)  # Taiyaki: 0-3 = ACGT
        signal_pa = read.signal_pa.astype(np.float64)
        median = float(np.median(signal_pa))
        for name, value in (
            ("digitisation", DIGITISATION),
            ("offset", read.calibration.offset),
            ("range", read.calibration.scale * DIGITISATION),
            ("scale_frompA", 1.4826 * float(np.median(np.abs(signal_pa - median)))),
            ("shift_frompA", median),
        ):
            group.attrs[name] = np.float64(value)
        group.attrs["read_id"] = read.read_id

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MappedSignalWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class SimulationResult:
    """What `simulate` wrote."""

    read_files: list[Path]  # pod5 and/or fast5 files
    truth: Path  # FASTA: read id, source; the bases in signal order
    labels: Path  # Taiyaki mapped-signal v8 file
    n_reads: int
    n_bases: int
    n_samples: int


def simulate(
    out_dir: str | Path,
    reference: dict[str, str],
    pore_model: PoreModel,
    n_reads: int,
    seed: int,
    formats: Iterable[Format] = ("pod5",),
    reads_per_file: int = 4000,
    **read_options: Any,
) -> SimulationResult:
    """Simulate `n_reads` reads (`simulate_reads`; `read_options` are its keyword arguments) into `out_dir`.

    Writes ``reads_<i>.pod5`` and/or ``reads_<i>.fast5`` (multi-read, gzip), `reads_per_file` reads each,
    ``truth.fasta`` (``>read_id contig:start-end:strand`` then the bases in signal order) and ``labels.hdf5``
    (`MappedSignalWriter`). `out_dir` is created; it must not hold files already (ConfigError).
    """
    formats = list(dict.fromkeys(formats))
    if not formats or any(f not in ("pod5", "fast5") for f in formats):
        raise ConfigError(f"formats must be pod5 and/or fast5, not {formats}")
    if reads_per_file < 1:
        raise ConfigError("reads_per_file must be at least 1")
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"{out_dir}: the output folder must be new or empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    reads = simulate_reads(reference, pore_model, n_reads, seed, **read_options)
    read_files: list[Path] = []
    n_bases = n_samples = 0
    with MappedSignalWriter(out_dir / "labels.hdf5") as labels, open(out_dir / "truth.fasta", "x") as truth:
        for index, batch in enumerate(_batches(reads, reads_per_file)):
            raw = [simulated.read for simulated in batch]
            if "pod5" in formats:
                read_files.append(write_pod5(raw, out_dir / f"reads_{index}.pod5"))
            if "fast5" in formats:
                read_files.append(write_fast5(raw, out_dir / f"reads_{index}.fast5"))
            for simulated in batch:
                labels.add(simulated)
                truth.write(f">{simulated.read.read_id} {simulated.source}\n{simulated.sequence}\n")
                n_bases += len(simulated.sequence)
                n_samples += simulated.read.n_samples
    return SimulationResult(read_files, out_dir / "truth.fasta", out_dir / "labels.hdf5", n_reads, n_bases, n_samples)


def _batches(items: Iterable[SimulatedRead], size: int) -> Iterator[list[SimulatedRead]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
