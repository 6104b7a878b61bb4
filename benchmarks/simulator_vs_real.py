"""Realism of `basecall simulate`: statistics of simulated reads next to the same statistics of real labelled reads.

R9.4.1 with labels (per-base signal positions), each set through the same functions:
  - real: the Tombo-resquiggled lambda reads (fast5 `Analyses/RawGenomeCorrected_000/BaseCalled_template/Events`,
    event starts relative to the Events dataset's `read_start_rel_to_raw` attribute), and the Taiyaki mapped-signal
    files in `r941_taiyaki/mapped_signal_file`;
  - simulated: reads sampled from the lambda reference with the R9.4.1 6-mer model and the default `SignalModel`,
    written by `simulate` and read back from its `labels.hdf5` with the reader used for the real Taiyaki files.
Statistics: samples per base (dwell), per-read speed spread, per-base mean current against the k-mer model (Pearson
correlation, per-read linear fit pA = scale × model + shift, residual sd), within-base noise, current range in pA.

R10.4.1 without labels: the signal-only statistics (current range, sample noise) of real pod5 reads next to reads
simulated with the R10.4.1 9-mer model at the same sample rate.

    python benchmarks/simulator_vs_real.py [--data ../shared/data] [--n-reads 100] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from basecall.readers import open_reads
from basecall.records import Read
from basecall.sequence import decode, encode, read_fasta
from basecall.simulate import CHEMISTRIES, PoreModel, kmer_index, load_pore_model, simulate

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
R941_MODEL = "pore_models/kmer_models/template_median68pA.model"
R1041_MODEL = "pore_models/uncalled4/dna_r10.4.1_400bps_9mer.npz"
R1041_READS = {4000: "r1041_remora/can_reads.pod5", 5000: "r1041_dorado/duplex/pod5/duplex.pod5"}
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class LabelledRead:
    sequence: str  # (n_bases,) in signal order
    signal_pa: np.ndarray  # (n_samples,) float64
    bounds: np.ndarray  # (n_bases + 1,) int64 first sample of each base, then the end of the last


# --- real and simulated labelled reads ----------------------------------------------------------------------------


def tombo_reads(folder: Path) -> Iterator[LabelledRead]:
    """Reads of Tombo-resquiggled single-read fast5 files."""
    for path in sorted(folder.glob("*.fast5")):
        with h5py.File(path, "r") as handle:
            events = handle["Analyses/RawGenomeCorrected_000/BaseCalled_template/Events"]
            start = int(events.attrs["read_start_rel_to_raw"])
            table = events[()]
            (raw,) = handle["Raw/Reads"].values()
            channel = handle["UniqueGlobalKey/channel_id"].attrs
            scale = channel["range"] / channel["digitisation"]
            signal_pa = (raw["Signal"][()].astype(np.float64) + channel["offset"]) * scale
        ends = table["start"][-1:] + table["length"][-1:]
        bounds = start + np.concatenate([table["start"], ends]).astype(np.int64)
        yield LabelledRead(b"".join(table["base"]).decode(), signal_pa, bounds)


def taiyaki_reads(path: Path) -> Iterator[LabelledRead]:
    """Reads of a Taiyaki mapped-signal v8 file (per-read layout), real or written by `basecall simulate`."""
    with h5py.File(path, "r") as handle:
        for group in handle["Reads"].values():
            attrs = group.attrs
            scale = attrs["range"] / attrs["digitisation"]
            signal_pa = (group["Dacs"][()].astype(np.float64) + attrs["offset"]) * scale
            sequence = decode(group["Reference"][()] + 1)  # Taiyaki: 0-3 = ACGT
            yield LabelledRead(sequence, signal_pa, group["Ref_to_signal"][()].astype(np.int64))


def simulated_reads(
    data: Path, pore_model: PoreModel, n_reads: int, seed: int, folder: Path, **options: object
) -> list[LabelledRead]:
    """`n_reads` lambda reads simulated into `folder`, read back from the labels file."""
    reference = read_fasta(data / "r941_lambda_marcpaga" / "Lambda_phage.fna")
    result = simulate(folder, reference, pore_model, n_reads, seed, **options)
    return list(taiyaki_reads(result.labels))


# --- statistics ---------------------------------------------------------------------------------------------------


def base_means_and_sds(read: LabelledRead) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per base: samples (n_bases,), mean pA, sample sd pA (NaN for bases of one sample)."""
    lengths = np.diff(read.bounds)
    cumulative = np.concatenate([[0.0], np.cumsum(read.signal_pa)])
    squares = np.concatenate([[0.0], np.cumsum(read.signal_pa**2)])
    starts, ends = read.bounds[:-1], read.bounds[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (cumulative[ends] - cumulative[starts]) / lengths
        variance = ((squares[ends] - squares[starts]) - lengths * means**2) / (lengths - 1)
    return lengths, means, np.sqrt(np.maximum(variance, 0.0))


def within_base_lag1(read: LabelledRead, means: np.ndarray, min_samples: int = 12, edge: int = 2) -> float:
    """Lag-1 autocorrelation of the samples' deviations from their base's mean, in bases of at least `min_samples`
    samples, leaving out `edge` samples at each end of a base (near the steps between bases)."""
    lengths = np.diff(read.bounds)
    deviation = read.signal_pa[read.bounds[0] : read.bounds[-1]] - np.repeat(means, lengths)
    position = np.arange(deviation.size) - np.repeat(read.bounds[:-1] - read.bounds[0], lengths)
    length = np.repeat(lengths, lengths)
    inside = (length >= min_samples) & (position >= edge) & (position < length - edge)
    pairs = inside[:-1] & inside[1:] & (position[1:] == position[:-1] + 1)
    first, second = deviation[:-1][pairs], deviation[1:][pairs]
    return float(np.mean(first * second) / np.mean(first**2))


def model_levels(read: LabelledRead, pore_model: PoreModel) -> tuple[np.ndarray, np.ndarray]:
    """(positions, model pA) of the bases whose whole k-mer lies in the read."""
    kmers = kmer_index(encode(read.sequence), pore_model.k)
    positions = np.arange(pore_model.shift, pore_model.shift + kmers.size)
    return positions, pore_model.level_pa[kmers]


def quantiles(values: np.ndarray, prefix: str, qs: tuple[int, ...] = (5, 25, 50, 75, 95, 99)) -> dict[str, float]:
    return {f"{prefix}_q{q}": float(v) for q, v in zip(qs, np.percentile(values, qs), strict=True)}


def labelled_stats(reads: list[LabelledRead], pore_model: PoreModel) -> dict[str, float]:
    dwells, residuals, noise, correlations, fits, signal, read_dwells, lag1 = [], [], [], [], [], [], [], []
    for read in reads:
        lengths, means, sds = base_means_and_sds(read)
        positions, expected = model_levels(read, pore_model)
        observed = means[positions]
        scale, shift = np.polyfit(expected, observed, 1)
        correlations.append(np.corrcoef(expected, observed)[0, 1])
        residuals.append((observed - (scale * expected + shift)) / scale)
        fits.append((scale, shift))
        dwells.append(lengths)
        read_dwells.append(lengths.mean())
        noise.append(sds[lengths >= 4])
        lag1.append(within_base_lag1(read, means))
        signal.append(read.signal_pa[read.bounds[0] : read.bounds[-1]])
    dwell, residual, within = np.concatenate(dwells), np.concatenate(residuals), np.concatenate(noise)
    fits = np.array(fits)
    return {
        "reads": len(reads),
        "bases": int(dwell.size),
        "dwell_mean": float(dwell.mean()),
        "dwell_sd": float(dwell.std()),
        **quantiles(dwell, "dwell"),
        "dwell_le_2_fraction": float(np.mean(dwell <= 2)),
        "read_dwell_cv": float(np.std(read_dwells) / np.mean(read_dwells)),
        "level_correlation_median": float(np.median(correlations)),
        "level_residual_sd_pa": float(residual.std()),
        "level_residual_robust_sd_pa": robust_sd(residual),
        "read_scale_mean": float(fits[:, 0].mean()),
        "read_scale_sd": float(fits[:, 0].std()),
        "read_shift_mean_pa": float(fits[:, 1].mean()),
        "read_shift_sd_pa": float(fits[:, 1].std()),
        "within_base_sd_median_pa": float(np.median(within)),
        "within_base_sd_mean_pa": float(within.mean()),
        "within_base_lag1_autocorrelation": float(np.median(lag1)),
        **signal_stats([np.concatenate(signal)]),
    }


def robust_sd(values: np.ndarray) -> float:
    return float(MAD_TO_SD * np.median(np.abs(values - np.median(values))))


def signal_stats(signals: list[np.ndarray]) -> dict[str, float]:
    """Label-free: current percentiles over all samples, per-read median and MAD-sd, and sample noise."""
    pooled = np.concatenate(signals)
    return {
        **quantiles(pooled, "pa", (1, 5, 50, 95, 99)),
        "read_median_pa": float(np.median([np.median(s) for s in signals])),
        "read_mad_sd_pa": float(np.median([robust_sd(s) for s in signals])),
        "diff_noise_sd_pa": float(np.median([diff_noise(s) for s in signals])),
    }


def diff_noise(signal_pa: np.ndarray) -> float:
    """Sample noise without labels: RMS of consecutive-sample differences / √2, leaving out the largest 5% of
    differences (steps between bases). Not a MAD: MADs of ADC-quantised signals come in whole ADC steps."""
    steps = np.abs(np.diff(signal_pa))
    kept = steps[steps <= np.percentile(steps, 95)]
    return float(np.sqrt(np.mean(kept**2) / 2))


def pod5_signals(path: Path) -> tuple[list[np.ndarray], float]:
    reads = [item for item in open_reads([path]) if isinstance(item, Read)]
    return [read.signal_pa.astype(np.float64) for read in reads], reads[0].sample_rate_hz


# --- report -------------------------------------------------------------------------------------------------------


def print_table(title: str, columns: dict[str, dict[str, float]]) -> None:
    names = list(columns)
    keys = [key for key in next(iter(columns.values())) if all(key in column for column in columns.values())]
    width = max(map(len, keys))
    print(f"\n{title}")
    print(f"{'':{width}}  " + "  ".join(f"{name:>16}" for name in names))
    for key in keys:
        print(f"{key:{width}}  " + "  ".join(f"{_format(columns[name][key]):>16}" for name in names))


def _format(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def r941_comparison(data: Path, n_reads: int, seed: int, folder: Path) -> dict[str, dict[str, float]]:
    """Labelled statistics of the real R9.4.1 sets and of simulated lambda reads (with the simulation speed)."""
    pore_model = load_pore_model(data / R941_MODEL)
    tombo = list(tombo_reads(data / "r941_lambda_marcpaga" / "fast5"))
    paths = sorted((data / "r941_taiyaki" / "mapped_signal_file").glob("*.hdf5"))
    taiyaki = [read for path in paths for read in taiyaki_reads(path)]
    started = time.perf_counter()
    simulated = simulated_reads(data, pore_model, n_reads, seed, folder)
    seconds = time.perf_counter() - started
    return {
        "lambda_tombo": labelled_stats(tombo, pore_model),
        "taiyaki": labelled_stats(taiyaki, pore_model),
        "simulated": {
            **labelled_stats(simulated, pore_model),
            "simulated_samples_per_s": sum(read.signal_pa.size for read in simulated) / seconds,
        },
    }


def r1041_comparison(data: Path, n_reads: int, seed: int, folder: Path) -> dict[str, dict[str, float]]:
    """Signal-only statistics of real R10.4.1 pod5 reads and of reads simulated at the same sample rate."""
    pore_model = load_pore_model(data / R1041_MODEL)
    columns: dict[str, dict[str, float]] = {}
    for rate, path in R1041_READS.items():
        signals, real_rate = pod5_signals(data / path)
        if real_rate != rate:
            raise ValueError(f"{path}: sampled at {real_rate} Hz, not {rate}")
        simulated = simulated_reads(data, pore_model, n_reads, seed, folder / str(rate), sample_rate_hz=rate)
        dwells = np.concatenate([np.diff(read.bounds) for read in simulated])
        columns[f"real_{rate // 1000}khz"] = {"reads": len(signals), **signal_stats(signals)}
        columns[f"sim_{rate // 1000}khz"] = {
            "reads": len(simulated),
            "dwell_mean": float(dwells.mean()),
            **signal_stats([read.signal_pa for read in simulated]),
        }
    return columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--n-reads", type=int, default=100, help="simulated reads per set")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "simulator_vs_real.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        r941 = r941_comparison(args.data, args.n_reads, args.seed, Path(tmp, "r941"))
        r1041 = r1041_comparison(args.data, args.n_reads, args.seed, Path(tmp, "r1041"))
    print_table(
        "R9.4.1, labelled reads (pA; level residuals in model pA, i.e. divided by the read's fitted scale)", r941
    )
    print(f"simulated {r941['simulated']['simulated_samples_per_s']:,.0f} samples/s (R9.4.1, files included)")
    print_table("R10.4.1, signal only (real reads also hold adapter and open-pore samples)", r1041)
    report = {
        "chemistries": {name: asdict(chemistry) for name, chemistry in CHEMISTRIES.items()},
        "n_reads": args.n_reads,
        "seed": args.seed,
        "r941_labelled": r941,
        "r1041_signal": r1041,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
