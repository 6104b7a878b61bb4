"""Throughput: model forward pass alone vs a whole `basecall basecaller` run, on CPU (and GPU when present).

Built-in architectures run with untrained weights (the cost of a forward pass does not depend on the weights);
`--models` times trained model directories instead (their greedy decoding is then realistic too). On CPU the forward
pass is timed on one thread (the basecaller runs one single-threaded copy per core) and the whole run is the
basecaller's default (every core), in fp32 (`--precision fp32`) and in half precision (`--precision auto`: bf16 on a
CPU with native bf16, fp16 on a GPU; fp32 again on a CPU without). The reading stage alone (files → `Read`s, as the
basecaller reads them) is timed with 1, 2, ... reader processes (`--readers`): on a GPU it bounds the whole run.
`--beam-widths 0 5` times whole runs with greedy decoding and with beam search of width 5, side by side: each of
`--repeats` rounds runs every width once, in turn, so a machine shared with other jobs loads them alike (the median
run is reported). Batch sizes are the basecaller's defaults for each width unless `--batch-size` is given.
Prints a table and writes JSON.

    python benchmarks/throughput.py                       # real lambda reads from ../shared/data if present
    python benchmarks/throughput.py --models models/r9.4.1-small DIR ... --precisions fp32
    python benchmarks/throughput.py --models models/r9.4.1-small --precisions half --beam-widths 0 5 --repeats 3
    python benchmarks/throughput.py --inputs DIR --device cuda --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from basecall.config import BasecallerConfig, Config, ModelConfig
from basecall.model import Model, load_model, save_model
from basecall.readers import open_reads
from basecall.records import Read

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUTS = ROOT.parent / "shared" / "data" / "r941_lambda_marcpaga" / "fast5"

ARCHITECTURES = {
    # name: (model config, run whole basecaller?)  Chiron-sized = 3 residual blocks × 256, 3 BiLSTM × 100
    "chiron-stride1": (ModelConfig(stride=1, cnn_channels=256, residual_blocks=3, rnn_layers=3, rnn_size=100), False),
    "chiron-stride5": (ModelConfig(stride=5, cnn_channels=256, residual_blocks=3, rnn_layers=3, rnn_size=100), True),
    "small-stride5": (ModelConfig(stride=5, cnn_channels=64, residual_blocks=2, rnn_layers=2, rnn_size=96), True),
    "small-stride10": (
        ModelConfig(stride=10, stride_kernel=19, cnn_channels=64, residual_blocks=2, rnn_layers=2, rnn_size=96),
        True,
    ),
    # a near-free network: its whole run is the ceiling that reading, chunking, decoding, stitching and writing set
    "tiny-stride5": (ModelConfig(stride=5, cnn_channels=4, residual_blocks=0, rnn_layers=1, rnn_size=4), True),
}


def forward_samples_per_s(
    model: Model, device: torch.device, chunksize: int, batch_size: int, dtype: torch.dtype | None, seconds: float
) -> float:
    x = torch.randn(batch_size, 1, chunksize, device=device)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
    with torch.inference_mode(), autocast:
        model(x)  # warm-up
        _sync(device)
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            model(x)
            n += 1
        _sync(device)
        elapsed = time.perf_counter() - started
    return n * batch_size * chunksize / elapsed


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reading_samples_per_s(inputs: list[str], processes: int) -> float:
    """Samples/s of reading every read of `inputs` with `processes` reader processes (worker start-up included).

    Timed in a fresh `python -c` process, as the basecaller reads: spawned workers re-import the parent's main
    module, and this one imports torch (a second each)."""
    code = (
        "import sys, time\n"
        "from basecall.readers import open_reads\n"
        "from basecall.records import Read\n"
        "started = time.perf_counter()\n"
        "n = sum(r.n_samples for r in open_reads(sys.argv[2:], processes=int(sys.argv[1])) if isinstance(r, Read))\n"
        "print(n / (time.perf_counter() - started))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(processes), *inputs], check=True, capture_output=True, text=True)
    return float(result.stdout)


def whole_run(
    model_dir: Path, inputs: list[str], device: str, batch_size: int | None, precision: str, beam_width: int = 0
) -> dict[str, float]:
    """Time `basecall basecaller` as a user runs it (batch_size None: the model's default for the device); its log
    gives the batch size it used and its final line the in-run samples/s."""
    command = [sys.executable, "-m", "basecall", "basecaller", "-m", str(model_dir), *inputs, "-o", "/dev/null",
               "--device", device, "--precision", precision, "--beam-width", str(beam_width),
               *(["--batch-size", str(batch_size)] if batch_size else [])]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    match = re.search(r"in ([\d.]+) s \(([\d,]+) samples/s\)", result.stderr)
    used = int(re.search(r"batch size (\d+)", result.stderr).group(1))
    return {"wall_s": wall_s, "run_s": float(match.group(1)), "samples_per_s": float(match.group(2).replace(",", "")),
            "batch_size": used}  # fmt: skip


def whole_runs_side_by_side(
    model_dir: Path, inputs: list[str], device: str, batch_sizes: list[int | None], precision: str, widths: list[int],
    repeats: int,
) -> dict[str, dict]:
    """`repeats` rounds of one whole run per (beam width, batch size), in turn; per pair ("w5 b32", or "w5" for the
    model's own batch size): every run and the median samples/s."""
    runs: dict[str, list[dict]] = {}
    for _ in range(repeats):
        for width in widths:
            for batch in batch_sizes:
                key = f"w{width}" + (f" b{batch}" if batch else "")
                runs.setdefault(key, []).append(whole_run(model_dir, inputs, device, batch, precision, width))
    return {key: {"beam_width": int(key.split()[0][1:]), "batch_size": found[0]["batch_size"], "runs": found,
                  **_medians(found)} for key, found in runs.items()}  # fmt: skip


def _medians(runs: list[dict]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in ("samples_per_s", "wall_s")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", nargs="+", default=[str(DEFAULT_INPUTS)])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--architectures", nargs="+", default=list(ARCHITECTURES), choices=list(ARCHITECTURES))
    parser.add_argument("--models", nargs="+", default=[], help="trained model directories to time instead")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "half"], choices=["fp32", "half"],
                        help="precisions of the forward pass and the whole run (half: bf16 on CPU, fp16 on GPU)")
    parser.add_argument("--chunksize", type=int, default=4000)
    parser.add_argument("--overlap", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="forward pass batch (default: a model's own cpu_batch_size on CPU, 8 for architectures; 512 on GPU)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=None,
                        help="whole runs at each of these --batch-size values (default: the model's own)")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per forward-pass measurement")
    parser.add_argument("--readers", nargs="+", type=int, default=[1, 2], help="reader processes to time the reading stage with")
    parser.add_argument("--beam-widths", nargs="+", type=int, default=[0], help="whole runs' --beam-width (0: greedy)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of whole runs, every beam width once a round")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "throughput.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    batch_size = args.batch_size or (512 if device.type == "cuda" else 8)
    if device.type == "cpu":
        torch.set_num_threads(1)  # the forward pass per core; the whole run uses every core

    inputs = args.inputs
    if not all(Path(p).exists() for p in inputs):
        inputs = [str(_simulated_inputs())]
    reads = [r for r in open_reads(inputs) if isinstance(r, Read)]
    total_samples = sum(r.n_samples for r in reads)
    print(f"inputs: {', '.join(inputs)} — {len(reads)} reads, {total_samples:,} samples")
    print(f"device: {_device_name(device)}; torch {torch.__version__}, {torch.get_num_threads()} threads; batch {batch_size}")

    reading = [{"processes": n, "samples_per_s": reading_samples_per_s(inputs, n)} for n in args.readers]
    print("reading alone: " + " | ".join(f"{r['processes']} process(es) {r['samples_per_s']:,.0f} samples/s" for r in reading))

    half = torch.bfloat16 if device.type == "cpu" else torch.float16
    precisions = {"fp32": None, "bf16" if device.type == "cpu" else "fp16": half}
    precisions = {k: v for k, v in precisions.items() if ("fp32" if k == "fp32" else "half") in args.precisions}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models or args.architectures:
            if args.models:
                loaded = load_model(name, device)
                model, model_config, model_dir, run_whole = loaded.model, loaded.config.model, Path(name), True
                chunksize = loaded.config.basecaller.chunksize
                forward_batch = args.batch_size or (512 if device.type == "cuda" else loaded.config.basecaller.cpu_batch_size)
            else:
                model_config, run_whole = ARCHITECTURES[name]
                config = Config(
                    model=model_config,
                    basecaller=BasecallerConfig(chunksize=args.chunksize, overlap=args.overlap, batch_size=batch_size),
                ).check()
                torch.manual_seed(0)
                model, chunksize = Model(model_config).eval().to(device), args.chunksize
                model_dir = save_model(model, config, Path(tmp) / name)
                forward_batch = batch_size
            row = {"architecture": Path(name).name, **model_config.__dict__, "forward_batch_size": forward_batch,
                   "parameters": sum(p.numel() for p in model.parameters())}  # fmt: skip
            for label, dtype in precisions.items():
                row[f"forward_{label}_samples_per_s"] = forward_samples_per_s(
                    model, device, chunksize, forward_batch, dtype, args.seconds
                )
            for label in precisions if run_whole else ():
                # the basecaller's --precision auto is the half precision where the device has a fast one
                row[f"whole_run_{label}"] = whole_runs_side_by_side(
                    model_dir, inputs, args.device, args.batch_sizes or [None if args.models else batch_size],
                    "fp32" if label == "fp32" else "auto", args.beam_widths, args.repeats,
                )
            rows.append(row)
            print(_format_row(row, precisions))

    result = {
        "device": _device_name(device),
        "torch": torch.__version__,
        "forward_threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "beam_widths": args.beam_widths,
        "repeats": args.repeats,
        "chunksize": args.chunksize,
        "overlap": args.overlap,
        "inputs": inputs,
        "reads": len(reads),
        "samples": total_samples,
        "reading": reading,
        "rows": rows,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


def _format_row(row: dict, precisions: dict) -> str:
    lines = [f"{row['architecture']:<16} {row['parameters']:>9,} params"]
    for label in precisions:
        lines.append(f"  forward {label} (batch {row['forward_batch_size']}, one core) "
                     f"{row[f'forward_{label}_samples_per_s']:>12,.0f} samples/s")  # fmt: skip
    for label in precisions:
        whole = row.get(f"whole_run_{label}", {})
        first = next(iter(whole.values()), None)
        for timed in whole.values():
            name = "greedy" if timed["beam_width"] <= 1 else f"beam {timed['beam_width']}"
            lines.append(
                f"  whole run {label} {name} (batch {timed['batch_size']}) {timed['samples_per_s']:>12,.0f} samples/s "
                f"({timed['samples_per_s'] / first['samples_per_s']:.0%} of the first; "
                f"{timed['wall_s']:.1f} s wall incl. start-up; runs: "
                + ", ".join(f"{run['samples_per_s'] / 1e3:,.0f} k" for run in timed["runs"]) + ")"
            )
    return "\n".join(lines)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}"


def _simulated_inputs() -> Path:
    from basecall.rawfiles import random_reads, write_pod5

    folder = Path(tempfile.mkdtemp()) / "simulated.pod5"
    write_pod5(random_reads(40, seed=0), folder)
    return folder


if __name__ == "__main__":
    main()
