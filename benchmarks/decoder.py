"""Decoder throughput in timesteps/s: greedy and our beam search paths against fast-ctc-decode, on the same posteriors.

The posteriors are real by default: the shipped r9.4.1-small (`--model`) run on the lambda reads in ../shared/data,
chunks of T = 800 timesteps (synthetic ones like a trained model's, see tests/test_beam.py, without the data or with
`--synthetic`). Real posteriors are softer than the synthetic ones, and beam search costs more on them.

Rows are batch sizes (`--chunks`; the pipeline uses 8 on CPU, 512 or more on a GPU); per beam width:
  cpu            the CPU path (`cpu_beam_search`): fast-ctc-decode per chunk + Viterbi alignment + qualities
  fast_ctc_decode  fast-ctc-decode alone, one chunk at a time (its API): the sequence only, no moves or qualities
  torch          the batched torch search (the GPU path; on CPU for reference)
and `cpu_2_threads`: the speedup of the CPU path when two threads share the batch (fast-ctc-decode and the alignment
release the GIL; near 2 only on an idle 2-core machine). All on one thread (torch too) unless `--threads`; CUDA rows
(greedy and torch) appear when a GPU is present (`--devices`). Variants are timed alternately, best of `--repeats`, and the load
average is recorded: run it next to other jobs and it says so. Prints a table and writes JSON.

    python benchmarks/decoder.py
    python benchmarks/decoder.py --chunks 8 64 --widths 5 --json /tmp/decoder.json
    python benchmarks/decoder.py --devices cuda --chunks 512 2048 --widths 5 10
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from basecall.config import ALPHABET
from basecall.decoder import beam_search, cpu_beam_search, greedy
from tests.test_beam import peaked_posteriors

N_TIMESTEPS = 800
LAMBDA_READS = ROOT.parent / "shared" / "data" / "r941_lambda_marcpaga" / "fast5"


def real_posteriors(model_name: str, n_chunks: int) -> torch.Tensor:
    """(T, n_chunks, 5) log-probabilities of `model_name` on consecutive chunks of the lambda reads."""
    from basecall.chunker import pad_for_chunks
    from basecall.model import load_model
    from basecall.readers import open_reads
    from basecall.records import Read
    from basecall.signal import scaled_signal

    device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded = load_model(model_name, device)
    settings, stride = loaded.config.basecaller, loaded.model.stride
    chunks: list[np.ndarray] = []
    for read in (r for r in open_reads([str(LAMBDA_READS)]) if isinstance(r, Read)):
        padded, starts = pad_for_chunks(scaled_signal(read), settings.chunksize, settings.overlap, stride)
        chunks += [padded[start : start + settings.chunksize] for start in starts]
        if len(chunks) >= n_chunks:
            break
    signal = torch.from_numpy(np.stack(list(itertools.islice(itertools.cycle(chunks), n_chunks)))).unsqueeze(1)
    with torch.inference_mode():
        return torch.cat([loaded.model(batch.to(device)).cpu() for batch in signal.split(64)], dim=1)  # (T, N, 5)


def best_seconds(decode: Callable[[], object], sync: Callable[[], None], repeats: int) -> float:
    """Best of `repeats` timed calls, after one untimed call (the alignment's compile, caches)."""
    decode()
    sync()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        decode()
        sync()
        best = min(best, time.perf_counter() - started)
    return best


def fast_ctc_decode_alone(log_probs: torch.Tensor, beam_width: int) -> Callable[[], object]:
    from fast_ctc_decode import beam_search as fcd_beam_search

    probs = log_probs.exp().permute(1, 0, 2).contiguous().numpy()  # (N, T, 5), each chunk contiguous
    return lambda: [fcd_beam_search(chunk, ALPHABET, beam_width, 0.0) for chunk in probs]


def on_two_threads(log_probs: torch.Tensor, beam_width: int) -> Callable[[], object]:
    """The CPU path with the batch split between two threads."""
    halves = log_probs.chunk(2, dim=1)
    pool = ThreadPoolExecutor(2)
    return lambda: list(pool.map(functools.partial(cpu_beam_search, beam_width=beam_width), halves))


def cpu_rows(log_probs: torch.Tensor, args: argparse.Namespace) -> list[dict]:
    rows = []
    for n_chunks in args.chunks:
        x = log_probs[:, :n_chunks]  # (T, N, 5)
        n_timesteps = x.shape[0] * n_chunks
        row = {"device": "cpu", "chunks": n_chunks}
        row["greedy"] = n_timesteps / best_seconds(functools.partial(greedy, x), lambda: None, args.repeats)
        for width in args.widths:
            variants = {
                f"cpu_beam{width}": functools.partial(cpu_beam_search, x, width),
                f"fast_ctc_decode_beam{width}": fast_ctc_decode_alone(x, width),
                f"torch_beam{width}": functools.partial(beam_search, x, width),
            }
            for name, decode in variants.items():  # one after the other, under the same load
                row[name] = n_timesteps / best_seconds(decode, lambda: None, args.repeats)
            if n_chunks >= 2:
                two = n_timesteps / best_seconds(on_two_threads(x, width), lambda: None, args.repeats)
                row[f"cpu_beam{width}_2_threads_speedup"] = two / row[f"cpu_beam{width}"]
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def cuda_rows(log_probs: torch.Tensor, args: argparse.Namespace) -> list[dict]:
    device = torch.device("cuda")
    sync = functools.partial(torch.cuda.synchronize, device)
    rows = []
    for n_chunks in args.chunks:
        x = log_probs[:, :n_chunks].to(device)  # (T, N, 5)
        n_timesteps = x.shape[0] * n_chunks
        row = {"device": "cuda", "chunks": n_chunks}
        row["greedy"] = n_timesteps / best_seconds(functools.partial(greedy, x), sync, args.repeats)
        for width in args.widths:
            row[f"torch_beam{width}"] = n_timesteps / best_seconds(
                functools.partial(beam_search, x, width), sync, args.repeats
            )
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def format_row(row: dict) -> str:
    cells = [f"{row['device']:>5}", f"{row['chunks']:>5} chunks"]
    for key, value in row.items():
        if key.endswith("_speedup"):
            cells.append(f"{key} {value:4.2f}x")
        elif key not in ("device", "chunks"):
            cells.append(f"{key} {value / 1e6:6.2f}")
    return " | ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, nargs="+", default=[8, 64, 512], help="batch sizes (chunks of T=800)")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=["cpu", "cuda"],
                        help="where to time the decoders (cuda only when present)")
    parser.add_argument("--widths", type=int, nargs="+", default=[5, 10], help="beam widths")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--repeats", type=int, default=4, help="timed calls per cell (best kept)")
    parser.add_argument("--model", default="r9.4.1-small", help="model whose posteriors are decoded")
    parser.add_argument("--synthetic", action="store_true", help="synthetic posteriors instead of the model's")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "decoder.json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    synthetic = args.synthetic or not LAMBDA_READS.exists()
    n_chunks = max(args.chunks)
    log_probs = peaked_posteriors(n_chunks, N_TIMESTEPS) if synthetic else real_posteriors(args.model, n_chunks)
    source = "synthetic" if synthetic else f"{args.model} on the lambda reads"
    print(f"timesteps/s in millions; posteriors: {source}; {args.threads} torch thread(s); "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    rows = cpu_rows(log_probs, args) if "cpu" in args.devices else []
    if "cuda" in args.devices and torch.cuda.is_available():
        rows += cuda_rows(log_probs, args)
    result = {
        "posteriors": source,
        "timesteps_per_chunk": log_probs.shape[0],
        "threads": args.threads,
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
