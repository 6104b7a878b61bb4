"""Resample reads to another sample rate: how the 5 kHz R10.4.1 starter got real training reads from 4 kHz ones.

    python benchmarks/recipes/resample_reads.py --rate 5000 -o OUT.hdf5 reads.pod5 calls.bam   # labelled reads
    python benchmarks/recipes/resample_reads.py --rate 5000 -o OUT.pod5 reads.pod5             # raw reads

Labelled reads (anything `basecall train` reads: pod5 + Dorado BAM, Tombo fast5, mapped-signal) become a Taiyaki
mapped-signal file with each read's signal linearly interpolated onto the new rate's time grid and its base starts
scaled with it; raw reads (pod5, fast5, blow5) become a pod5 file whose run information says the new rate. Calibration
and pore translocation speed stay as they were: a 4 kHz read resampled to 5 kHz is what a 5 kHz run of the same
molecule would record, less the noise above 2 kHz (interpolation cannot invent it; simulated 5 kHz reads have it).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from basecall.rawfiles import write_pod5
from basecall.readers import open_reads
from basecall.records import Read
from basecall.sequence import decode
from basecall.simulate import MappedSignalWriter, SimulatedRead
from basecall.training.data import LabelledRead, open_labelled


def resample(signal: np.ndarray, ratio: float) -> np.ndarray:
    """(n,) int16 → (round(n * ratio),) int16, linearly interpolated on the new time grid."""
    n_new = round(len(signal) * ratio)
    new_times = np.arange(n_new) / ratio  # in old samples
    values = np.interp(new_times, np.arange(len(signal)), signal.astype(np.float64))
    return np.round(values).astype(np.int16)


def resampled_labels(read: LabelledRead, ratio: float, rate: int) -> SimulatedRead:
    signal = resample(read.signal, ratio)
    starts = np.minimum(np.round(read.ref_to_signal * ratio), len(signal)).astype(np.int64)  # (n_bases + 1,)
    raw = Read(read.read_id, signal, read.calibration, float(rate), run_id="", channel=0, start_sample=0, path="")
    return SimulatedRead(read=raw, sequence=decode(read.reference), ref_to_signal=starts, source="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--rate", type=int, required=True, help="the new sample rate (Hz)")
    parser.add_argument("--source-rate", type=int, default=4000,
                        help="labelled reads' sample rate (a BAM does not say it) [4000]")  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, required=True, help=".hdf5 (labelled reads) or .pod5 (raw reads)")
    args = parser.parse_args()
    if args.output.suffix == ".hdf5":
        ratio, n = args.rate / args.source_rate, 0
        with MappedSignalWriter(args.output) as writer:
            for item in open_labelled(args.inputs):
                if isinstance(item, LabelledRead):
                    writer.add(resampled_labels(item, ratio, args.rate))
                    n += 1
    elif args.output.suffix == ".pod5":
        reads = [item for item in open_reads(args.inputs) if isinstance(item, Read)]
        write_pod5(
            (replace(r, signal=resample(r.signal, args.rate / r.sample_rate_hz), sample_rate_hz=float(args.rate),
                     start_sample=round(r.start_sample * args.rate / r.sample_rate_hz)) for r in reads),
            args.output,
        )  # fmt: skip
        n = len(reads)
    else:
        raise SystemExit(f"{args.output}: give a .hdf5 (labelled reads) or .pod5 (raw reads) output")
    print(f"{args.output}: {n} reads at {args.rate} Hz")


if __name__ == "__main__":
    main()
