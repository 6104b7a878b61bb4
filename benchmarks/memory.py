"""Peak memory (RSS) of whole `basecall basecaller` runs: long reads, and many reads.

Each case runs in a process of its own; its peak RSS comes from the kernel (`os.wait4`'s rusage: the largest of
that process and the children it reaped, such as the worker that reads the files), so nothing is sampled or
estimated. The inputs are made by another process first: Linux counts the RSS a child inherits from its
parent at fork into the child's peak, so this parent stays small (no torch, no simulated signal). Cases: one short read (the baseline: Python, torch and the model), the 2.05 M-sample blow5 read
from ../shared/data (if present), one simulated 20 M-sample read, and 100 vs 1,000 simulated reads (peak memory must
not grow with the number of reads). Prints a table and writes JSON.

    python benchmarks/memory.py [--model NAME|DIR] [--json benchmarks/results/memory.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LONG_BLOW5 = SHARED / "misc_formats" / "p2solo_ulk114_dna.blow5"
PORE_MODEL = SHARED / "pore_models" / "kmer_models" / "template_median68pA.model"
RECIPE = ROOT / "benchmarks" / "recipes" / "sweep" / "s5-c64x2-lstm2x96.toml"


def peak_rss_mib(command: list[str]) -> tuple[float, float, int]:
    """Run `command`; return (peak RSS in MiB, wall seconds, exit status)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode not in (0, 3):
            stderr.seek(0)
            sys.exit(f"{' '.join(command)} failed ({process.returncode}): {stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, seconds, process.returncode  # ru_maxrss is in KiB on Linux


def simulated(folder: Path, n_reads: int, n_bases: int, seed: int) -> tuple[Path, int]:
    """Write `n_reads` simulated R9.4.1 reads of about `n_bases` each to a pod5; return it and the total samples."""
    from basecall.rawfiles import write_pod5
    from basecall.simulate import load_pore_model, simulate_reads

    rng = random.Random(seed)
    genome = {"genome": "".join(rng.choice("ACGT") for _ in range(max(n_bases, 50_000)))}
    reads = [
        s.read
        for s in simulate_reads(
            genome, load_pore_model(PORE_MODEL), n_reads, seed, mean_read_length=n_bases, min_read_length=n_bases
        )
    ]
    path = write_pod5(reads, folder / f"sim_{n_reads}x{n_bases}.pod5")
    return path, sum(read.n_samples for read in reads)


def prepare(folder: Path) -> None:
    """In a process of its own: the model (untrained small recipe) and the simulated inputs; cases as JSON on stdout."""
    from basecall.config import load_config
    from basecall.model import Model, save_model

    save_model(Model(load_config(RECIPE).model), load_config(RECIPE), folder / "model")
    cases: list[tuple[str, str, int]] = []
    cases.append(("1 read, 4 k samples (baseline)", *map(str, simulated(folder, 1, 450, seed=1))))
    if LONG_BLOW5.exists():
        cases.append(("1 read, blow5, 2.05 M samples", str(LONG_BLOW5), 2_050_000))
    cases.append(("1 read, ~20 M samples (simulated)", *map(str, simulated(folder, 1, 1_800_000, seed=2))))
    cases.append(("100 reads, ~10 k samples each", *map(str, simulated(folder, 100, 1_000, seed=3))))
    cases.append(("1,000 reads, ~10 k samples each", *map(str, simulated(folder, 1000, 1_000, seed=3))))
    print(json.dumps(cases))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model name or directory [default: untrained weights of the small recipe]")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "memory.json")
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)  # internal: make the inputs in FOLDER
    args = parser.parse_args()
    if args.prepare:
        return prepare(args.prepare)
    if not PORE_MODEL.exists():
        sys.exit(f"needs {PORE_MODEL} for the simulated reads")

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        made = subprocess.run([sys.executable, __file__, "--prepare", scratch], capture_output=True, text=True, check=True)
        cases = json.loads(made.stdout.strip().splitlines()[-1])
        model = args.model or str(folder / "model")
        rows = []
        for name, path, n_samples in cases:
            out = folder / "calls.fastq"
            command = [sys.executable, "-m", "basecall", "basecaller", "-m", model, path, "-o", str(out), "-q"]
            peak, seconds, status = peak_rss_mib(command)
            rows.append({"case": name, "samples": int(n_samples), "peak_rss_mib": round(peak, 1), "seconds": round(seconds, 1), "exit": status})

    print(f"{'case':<36} {'samples':>12} {'peak RSS MiB':>13} {'seconds':>8}")
    for row in rows:
        print(f"{row['case']:<36} {row['samples']:>12,} {row['peak_rss_mib']:>13,.1f} {row['seconds']:>8.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": platform.platform(), "model": args.model or "small recipe, untrained", "runs": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
