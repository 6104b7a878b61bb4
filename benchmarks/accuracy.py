"""Accuracy on the real evaluation sets (and a simulated one): our calls beside the incumbent calls stored in the
files, one table, JSON.

    python benchmarks/accuracy.py --model r9.4.1-small [--sets lambda sarscov2 r1041 simulated]

Sets (from ../shared/data, see its README):
  lambda     50 R9.4.1 lambda reads (fast5) vs Lambda_phage.fna; incumbent: Guppy hac calls stored in the files
  sarscov2   100 R9.4.1 SARS-CoV-2 amplicon reads (blow5) vs MN908947.3 — a genome no training set contains
  r1041      14 R10.4.1 human reads (pod5, 4 kHz) vs their truth rebuilt from the BAM (an R9.4.1 model is not expected
             to work); the R10.4.1 starter model saw 10 of them in training (benchmarks/recipes/r1041.sh): `--read-ids
             r1041=held_out.txt` scores the other 4
  r1041mod   14 R10.4.1 reads of a CpG-methylated sample (pod5, 4 kHz), same chr13 region, vs the reference (5mC is
             scored as C); the starter trained on 10 of them: `--read-ids r1041mod=mod_held_out.txt` scores the other 4
  r1041chr4  1 R10.4.1 read (blow5, 4 kHz, 378 k samples) vs the 200 kb chr4 span it is said to come from: another
             region of the genome than the r1041 sets
  r1041_5khz 1 short R10.4.1 read (blow5, 5 kHz) vs its chr3 truth
  simulated  reads simulated from a random genome with the R9.4.1 pore model (`basecall simulate`), scored against
             each read's true sequence; `--simulated-signal level_sd_factor=0,noise_sd_factor=1.15` adds a set
             simulated with those `SignalModel` fields changed (repeat it for several): how hard each kind of
             simulated noise makes the reads for a model
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

SETS = {
    "lambda": (["r941_lambda_marcpaga/fast5"], "r941_lambda_marcpaga/Lambda_phage.fna", True),
    "sarscov2": (["r941_sarscov2_slorado/corona_r9.blow5"], "r941_sarscov2_slorado/nCoV-2019.reference.fasta", False),
    "r1041": (["r1041_remora/can_reads.pod5"], "derived/r1041_remora_can.truth.fasta", False),
    "r1041mod": (["r1041_remora/mod_reads.pod5"], "derived/r1041_remora_mod_5mC.truth.fasta", False),
    "r1041chr4": (["r1041_slorado/4khz_r10/one_read.blow5"], "r1041_slorado/chr4_90700000_90900000.fa", False),
    "r1041_5khz": (["r1041_slorado/5khz_r10/one_5khz.blow5"], "derived/r1041_slorado_one_5khz.truth.fasta", False),
}


def basecall_set(
    model_name: str, inputs: list[str], device: str, beam_width: int, precision: str, read_ids: set[str] | None = None,
    **settings: int | None,
) -> tuple[list[tuple[str, str]], float]:
    """Our calls as (read_id, sequence), and samples/s of the run (in-process pipeline, the CLI's code path);
    `read_ids`: only these reads."""
    from basecall.decoder import make_decoder
    from basecall.model import load_model, resolve_device
    from basecall.pipeline import basecall_reads
    from basecall.readers import open_reads
    from basecall.records import CalledRead

    torch_device = resolve_device(device)
    loaded = load_model(model_name, torch_device)
    decode = make_decoder(beam_width)
    started = time.perf_counter()
    calls, n_samples = [], 0
    config = loaded.config.with_basecaller(**settings).basecaller  # chunksize, overlap: None = the model's
    reads = open_reads(inputs, read_ids)
    for item in basecall_reads(loaded.model, reads, config, torch_device, decode, precision=precision):
        if isinstance(item, CalledRead):
            calls.append((item.read.read_id, item.sequence))
            n_samples += item.n_samples
    return calls, n_samples / (time.perf_counter() - started)


def simulated_set(out: Path, n_reads: int, seed: int, signal: dict[str, float]) -> tuple[list[str], str]:
    """Simulate reads (R9.4.1 defaults with `signal`'s `SignalModel` fields changed); their files and truth FASTA."""
    import numpy as np

    from basecall.simulate import CHEMISTRIES, load_pore_model, random_genome, simulate

    pore_model = load_pore_model(DATA / "pore_models" / "kmer_models" / "template_median68pA.model")
    model = dataclasses.replace(CHEMISTRIES["r9.4.1"].signal_model, **signal)
    genome = {"random_genome": random_genome(200_000, np.random.default_rng((seed, 1)))}
    simulate(out, genome, pore_model, n_reads, seed, model=model)
    return [str(p) for p in out.glob("*.pod5")], str(out / "truth.fasta")


def simulated_name(fields: dict[str, float]) -> str:
    return "simulated" + (f"[{','.join(f'{k}={v:g}' for k, v in fields.items())}]" if fields else "")


def signal_fields(text: str) -> dict[str, float]:
    """"level_sd_factor=0,noise_sd_factor=1.15" → {"level_sd_factor": 0.0, "noise_sd_factor": 1.15}."""
    return {key.strip(): float(value) for key, value in (item.split("=") for item in text.split(",") if item)}


def read_id_files(specs: list[str], sets: list[str]) -> dict[str, set[str]]:
    """["r1041=held_out.txt"] → {"r1041": the ids in that file (one a line; '#' lines and a 'read_id' header
    skipped)}."""
    selected = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or name not in sets:
            raise SystemExit(f"--read-ids {spec}: give SET=FILE with SET one of --sets ({', '.join(sets)})")
        lines = (line.split()[0] for line in Path(path).read_text().splitlines() if line.strip())
        selected[name] = {line.lower() for line in lines if not line.startswith("#") and line != "read_id"}
    return selected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model name or directory")
    parser.add_argument("--sets", nargs="+", default=["lambda", "sarscov2", "r1041", "simulated"], choices=[*SETS, "simulated"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--beam-width", type=int, default=0, help="0 or 1: greedy")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32"],
                        help="forward pass: auto (fp16 on CUDA, bf16 on CPUs that have it) or fp32")
    parser.add_argument("--chunksize", type=int, help="default: the model's")
    parser.add_argument("--overlap", type=int, help="default: the model's")
    parser.add_argument("--read-ids", action="append", default=[], metavar="SET=FILE",
                        help="score only these reads of SET (one id a line), e.g. r1041=held_out.txt (repeatable)")
    parser.add_argument("--preset", default="auto", choices=["auto", "map-ont", "sensitive"],
                        help="minimap2 settings (auto: sensitive for reads under 2,000 bases); sensitive also maps "
                             "long reads called at under ~0.75 identity, which map-ont often leaves unmapped")
    parser.add_argument("--simulated-reads", type=int, default=50)
    parser.add_argument("--simulated-signal", action="append", default=[], type=signal_fields, metavar="FIELD=VALUE,...",
                        help="also a simulated set with these SignalModel fields changed (repeatable)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "accuracy.json"))
    args = parser.parse_args()
    selected = read_id_files(args.read_ids, args.sets)

    from basecall.evaluate import Evaluator, format_table, summarise
    from basecall.stored_calls import stored_calls

    report: dict[str, dict] = {}
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        real = [(name, None) for name in args.sets if name != "simulated"]
        simulated = [{}] * ("simulated" in args.sets) + args.simulated_signal
        for name, fields in real + [(simulated_name(fields), fields) for fields in simulated]:
            if fields is not None:
                inputs, reference = simulated_set(Path(tmp) / name, args.simulated_reads, 7, fields)
                has_incumbent = False
            else:
                parts, ref, has_incumbent = SETS[name]
                inputs, reference = [str(DATA / p) for p in parts], str(DATA / ref)
            calls, samples_per_s = basecall_set(args.model, inputs, args.device, args.beam_width, args.precision,
                                                selected.get(name), chunksize=args.chunksize, overlap=args.overlap)
            evaluator = Evaluator(reference, args.preset)
            summaries = {"ours": summarise(evaluator.evaluate(i, s) for i, s in calls)}
            if has_incumbent:
                stored = [(c.read_id, c.sequence) for c in stored_calls(inputs)]
                summaries["stored (Guppy)"] = summarise(evaluator.evaluate(i, s) for i, s in stored)
            report[name] = {"samples_per_s": samples_per_s, **{k: v.to_dict() for k, v in summaries.items()}}
            tables.append(f"== {name} ({len(calls)} reads called, {samples_per_s:,.0f} samples/s)\n{format_table(summaries)}")
            print(tables[-1], flush=True)
    result = {"model": args.model, "beam_width": args.beam_width, "precision": args.precision,
              "read_ids": {name: sorted(ids) for name, ids in selected.items()}, "preset": args.preset,
              "chunksize": args.chunksize, "overlap": args.overlap, "sets": report}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
