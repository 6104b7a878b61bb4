"""Decoder throughput in timesteps/s: greedy and our CTC beam search against fast-ctc-decode, on the same posteriors.

The posteriors are built from random base sequences like a trained model's (see tests/test_beam.py), chunks of
T = 800 timesteps. fast-ctc-decode decodes one chunk at a time on one core, so it is timed on one thread; ours runs
on `--threads` torch threads (1 by default: the same core). Batches of several sizes show how ours scales; the CUDA
rows appear when a GPU is present. Run next to the other load of the machine, so the two sides are timed
alternately and the load average is recorded. Prints a table and writes JSON.

    python benchmarks/decoder.py
    python benchmarks/decoder.py --chunks 256 1024 --widths 5 --json /tmp/decoder.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from basecall.config import ALPHABET
from basecall.decoder import beam_search, greedy
from tests.test_beam import peaked_posteriors

N_TIMESTEPS = 800
FAST_CTC_DECODE_CHUNKS = 128  # chunks it decodes per cell (one at a time)


def timesteps_per_s(decode: Callable[[], object], n_timesteps: int, sync: Callable[[], None], repeats: int) -> float:
    """Best of `repeats` timed calls, after one untimed call (compiling, caches)."""
    decode()
    sync()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        decode()
        sync()
        best = min(best, time.perf_counter() - started)
    return n_timesteps / best


def fast_ctc_decode_rate(log_probs: torch.Tensor, beam_width: int, repeats: int) -> float | None:
    """fast-ctc-decode, one chunk at a time (its API), on probabilities (N, T, 5) float32."""
    try:
        from fast_ctc_decode import beam_search as fcd_beam_search
    except ImportError:
        return None
    probs = log_probs.exp().permute(1, 0, 2).contiguous().numpy()  # (N, T, 5), each chunk contiguous

    def decode() -> None:
        for chunk in probs:
            fcd_beam_search(chunk, ALPHABET, beam_width, 0.0)

    return timesteps_per_s(decode, probs.shape[0] * probs.shape[1], lambda: None, repeats)


def compile_seconds(log_probs: torch.Tensor, beam_width: int) -> float:
    """First compiled call in this process, on 10 timesteps of 64 chunks (inductor's on-disk cache, warm after the
    first run on a machine, makes later processes faster)."""
    started = time.perf_counter()
    beam_search(log_probs[:10, :64], beam_width)
    return time.perf_counter() - started


def rows_for_device(log_probs: torch.Tensor, device: torch.device, args: argparse.Namespace) -> list[dict]:
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    rows = []
    for n_chunks in args.chunks:
        x = log_probs[:, :n_chunks].to(device)  # (T, N, 5)
        n_timesteps = x.shape[0] * n_chunks
        row = {"device": device.type, "chunks": n_chunks}
        row["greedy"] = timesteps_per_s(functools.partial(greedy, x), n_timesteps, sync, args.repeats)
        for width in args.widths:
            ours = functools.partial(beam_search, x, width)
            row[f"beam{width}"] = timesteps_per_s(ours, n_timesteps, sync, args.repeats)
            if device.type == "cpu" and width == args.widths[0]:
                eager = functools.partial(beam_search, x, width, compiled=False)
                row[f"beam{width}_eager"] = timesteps_per_s(eager, n_timesteps, sync, args.repeats)
            if device.type == "cpu":  # right after ours, under the same load; its rate does not depend on the batch
                row[f"fast_ctc_decode_beam{width}"] = fast_ctc_decode_rate(x[:, :FAST_CTC_DECODE_CHUNKS], width, 1)
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def format_row(row: dict) -> str:
    cells = [f"{row['device']:>6}", f"{row['chunks']:>6}"]
    for key, value in row.items():
        if key not in ("device", "chunks") and value is not None:
            cells.append(f"{key} {value / 1e6:6.2f}")
    return " | ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, nargs="+", default=[64, 256, 1024], help="batch sizes (chunks of T=800)")
    parser.add_argument("--widths", type=int, nargs="+", default=[5, 10, 32], help="beam widths")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for ours on CPU")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per cell (best kept)")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=["cpu", "cuda"],
                        help="where to time ours (cuda only when present)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "decoder.json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    log_probs = peaked_posteriors(max(args.chunks), N_TIMESTEPS, seed=0)
    devices = [torch.device(d) for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    compile_s = {f"beam{w}": compile_seconds(log_probs.to(devices[0]), w) for w in args.widths}
    print(f"timesteps/s in millions; {args.threads} torch thread(s); compile (first call) s: {compile_s}", flush=True)
    rows = [row for device in devices for row in rows_for_device(log_probs, device, args)]
    result = {
        "timesteps_per_chunk": N_TIMESTEPS,
        "threads": args.threads,
        "compile_s": compile_s,
        "load_average": os.getloadavg(),
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
