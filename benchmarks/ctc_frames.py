"""How tight a CTC model's time grid is at each stride, on real labelled reads.

CTC emits at most one base per timestep and needs a blank between two equal bases, so a homopolymer of n bases needs
2n - 1 timesteps. At stride s a base that the pore held for d samples gets d / s timesteps. This measures, on reads
with per-base signal positions (default: the Tombo-resquiggled lambda reads), for each stride: the share of bases held
for less than one timestep, and the share of homopolymer runs whose own span holds fewer timesteps than CTC needs.
A squeezed run is not impossible (the alignment can borrow timesteps from its neighbours), but the more runs are
squeezed, the more homopolymers come out short. Prints a table and writes JSON.

    python benchmarks/ctc_frames.py [--data LABELLED...] [--strides 1 2 3 4 5 6] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from basecall.training.data import LabelledRead, open_labelled

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "r941_lambda_marcpaga" / "fast5"


def homopolymer_runs(reference: np.ndarray, ref_to_signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lengths, spans in samples) of every run of two or more equal bases."""
    change = np.flatnonzero(np.diff(reference) != 0) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(reference)]])
    keep = ends - starts >= 2
    starts, ends = starts[keep], ends[keep]
    return ends - starts, ref_to_signal[ends] - ref_to_signal[starts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=[str(DEFAULT_DATA)], help="labelled reads (any `basecall train` input)")
    parser.add_argument("--strides", nargs="+", type=int, default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    reads = [r for r in open_labelled(args.data) if isinstance(r, LabelledRead)]  # prepared chunks have no positions
    dwells = np.concatenate([np.diff(r.ref_to_signal) for r in reads])  # (n_bases,) samples per base
    runs = [homopolymer_runs(np.asarray(r.reference), np.asarray(r.ref_to_signal)) for r in reads]
    lengths = np.concatenate([n for n, _ in runs])
    spans = np.concatenate([s for _, s in runs])
    print(f"{len(reads)} reads, {len(dwells):,} bases, {len(lengths):,} homopolymer runs (≥ 2 bases); "
          f"samples per base: mean {dwells.mean():.2f}, median {np.median(dwells):.0f}")  # fmt: skip
    rows = []
    for stride in args.strides:
        squeezed = spans / stride < 2 * lengths - 1
        row = {
            "stride": stride,
            "timesteps_per_base": float(dwells.mean() / stride),
            "bases_under_one_timestep": float(np.mean(dwells < stride)),
            "homopolymer_runs_squeezed": float(squeezed.mean()),
            "squeezed_by_length": {str(n): float(squeezed[lengths == n].mean()) for n in (2, 3, 4) if (lengths == n).any()},
        }
        row["squeezed_by_length"]["5+"] = float(squeezed[lengths >= 5].mean()) if (lengths >= 5).any() else float("nan")
        rows.append(row)
        by_length = "  ".join(f"{k}: {v:.1%}" for k, v in row["squeezed_by_length"].items())
        print(f"stride {stride}: {row['timesteps_per_base']:.2f} timesteps/base, "
              f"{row['bases_under_one_timestep']:.1%} of bases under one timestep, "
              f"{row['homopolymer_runs_squeezed']:.1%} of homopolymer runs squeezed ({by_length})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"data": args.data, "reads": len(reads), "bases": len(dwells), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
