"""`basecall evaluate`: basecalls (FASTQ/FASTA, or the calls stored in fast5 files) → accuracy against a reference."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from basecall.cli import configure_logging, logging_options
from basecall.errors import InputError

if TYPE_CHECKING:
    from basecall.evaluate import Summary
    from basecall.qscores import QualityCalibration

log = logging.getLogger("basecall.cli")


@click.command()
@click.argument("calls", required=False)
@click.option("-r", "--reference", required=True, metavar="FASTA", help="Reference sequences (FASTA, gzip or not).")
@click.option("--compare", "other", metavar="OTHER", help="A second call set to evaluate beside CALLS. [default: none]")
@click.option(
    "--from-fast5", "fast5", metavar="PATH",
    help="Evaluate the calls stored in fast5 files (a file or folder; e.g. Guppy's): the comparison set when CALLS is "
    "given, else the only set. [default: none]",
)  # fmt: skip
@click.option("--save-stored", metavar="PATH", help="Also write the --from-fast5 calls as FASTQ ('.gz' compresses). [default: not written]")
@click.option("-o", "--output", "tsv", metavar="PATH", help="Per-read TSV: every read, mapped or not. [default: not written]")
@click.option("--json", "json_path", metavar="PATH", help="Summaries as JSON. [default: not written]")
@click.option("--qscores", is_flag=True, help="Also compare CALLS' per-base qualities (FASTQ) with the errors seen in the alignments: a table by predicted Phred and the qscale/qbias that calibrate them.")
@click.option(
    "--preset", type=click.Choice(["auto", "map-ont", "sensitive"]), default="auto", show_default=True,
    help="minimap2 settings. sensitive maps short noisy reads (k=11, w=3); auto: sensitive for reads under 2,000 "
    "bases, map-ont for longer ones.",
)  # fmt: skip
@logging_options
def evaluate(
    calls: str | None,
    reference: str,
    other: str | None,
    fast5: str | None,
    save_stored: str | None,
    tsv: str | None,
    json_path: str | None,
    qscores: bool,
    preset: str,
    quiet: bool,
    verbose: int,
    debug: bool,
) -> None:
    """Align basecalls to a reference and report read identity and error rates.

    CALLS is FASTQ or FASTA, gzip or not (read ids are the first word of each header), or SAM/BAM (e.g. `basecall
    basecaller -o calls.bam`; secondary and supplementary records are skipped). Each read's primary minimap2
    alignment gives identity = matches / (matches + mismatches + insertions + deletions); unmapped reads are kept
    (identity 0 in the "unmapped = 0" rows). Prints a summary table (and, with two call sets, a second one for the
    reads both sets called) on stdout.

    \b
    Examples:
      basecall evaluate calls.fastq -r lambda.fa -o per_read.tsv --json summary.json
      basecall evaluate calls.fastq -r lambda.fa --from-fast5 fast5/     # ours beside the calls stored in the fast5
      basecall evaluate -r lambda.fa --from-fast5 fast5/ --save-stored guppy.fastq
    """
    configure_logging(quiet, verbose)
    from basecall.evaluate import (
        AUTO_SENSITIVE_BELOW, Evaluator, evaluate_calls, shared_reads, summarise, write_json, write_tsv,
    )  # fmt: skip

    sources = _call_sets(calls, other, fast5, save_stored)
    evaluator = Evaluator(reference, preset)  # type: ignore[arg-type]
    results = {}
    for label, (path, records) in sources.items():
        started = time.perf_counter()
        results[label] = evaluate_calls(records, evaluator)
        if not results[label]:
            raise InputError(f"{path}: no reads in these calls")
        log.info("%s: %d reads evaluated in %.1f s", path, len(results[label]), time.perf_counter() - started)

    summaries = {label: summarise(rows) for label, rows in results.items()}
    _print_table(f"all reads (reference {reference}, preset {preset})", summaries)
    report: dict[str, object] = {
        "reference": reference,
        "preset": preset,
        "auto_sensitive_below_bases": AUTO_SENSITIVE_BELOW,
        "calls": {label: {"path": sources[label][0], "summary": s.to_dict()} for label, s in summaries.items()},
    }
    if len(results) == 2:
        shared = dict(zip(results, map(summarise, shared_reads(*results.values()))))
        n_shared = next(iter(shared.values())).n_reads
        click.echo()
        _print_table(f"reads both sets called ({n_shared})", shared)
        report["shared"] = {"n_reads": n_shared, "summaries": {label: s.to_dict() for label, s in shared.items()}}
    if qscores:
        if not calls:
            raise click.UsageError("--qscores needs CALLS (FASTQ)")
        calibration = _qscore_calibration(calls, evaluator)
        report["qscores"] = {"qscale": calibration.qscale, "qbias": calibration.qbias, "table": calibration.rows()}
    if tsv:
        write_tsv(tsv, results)
    if json_path:
        write_json(json_path, report)


def _qscore_calibration(calls: str, evaluator) -> QualityCalibration:
    """Per-base predicted vs observed Phred for the mapped reads of a FASTQ; prints the table."""
    import dnaio

    from basecall.qscores import quality_calibration
    from basecall.sequence import quality_values

    def pairs():
        with dnaio.open(calls) as records:
            for record in records:
                if record.qualities is None:
                    raise InputError(f"{calls}: --qscores needs FASTQ (per-base qualities), not FASTA")
                errors = evaluator.base_errors(record.sequence)
                if errors is not None:
                    yield quality_values(record.qualities), errors

    calibration = quality_calibration(pairs())
    click.echo(f"\nper-base qualities of {calls} (mapped reads; errors = mismatches + insertions)")
    click.echo(f"{'predicted Q':>11} {'bases':>10} {'errors':>8} {'observed Q':>10}")
    for row in calibration.rows():
        observed = f"{row['observed_q']:.1f}" if row["observed_q"] is not None else "no error"
        click.echo(f"{row['predicted_q']:>11} {row['bases']:>10,} {row['errors']:>8,} {observed:>10}")
    click.echo(f"fit: observed ≈ {calibration.qscale:.3f} × predicted + {calibration.qbias:.3f}"
               f" (set [basecaller] qscale, qbias to calibrate; compose with any already set)")
    return calibration


def _call_sets(
    calls: str | None, other: str | None, fast5: str | None, save_stored: str | None
) -> dict[str, tuple[str, Iterable[tuple[str, str]]]]:
    """{label: (path, (read id, bases) records)} for the one or two call sets named on the command line."""
    from basecall.evaluate import read_calls

    paths = [path for path in (calls, fast5, other) if path]
    if not calls and not fast5:
        raise click.UsageError("give CALLS, --from-fast5 PATH, or both")
    if len(paths) > 2:
        raise click.UsageError("at most two call sets: CALLS and one of --compare / --from-fast5")
    if save_stored and not fast5:
        raise click.UsageError("--save-stored needs --from-fast5")
    labels = _labels(paths, fast5)
    return {
        label: (path, _stored_records(path, save_stored) if path == fast5 else read_calls(path))
        for label, path in zip(labels, paths)
    }


def _labels(paths: list[str], fast5: str | None) -> list[str]:
    """Short column names: file names (fast5 sets as 'stored:NAME'); whole paths when two names clash."""
    names = [f"stored:{Path(path).name}" if path == fast5 else Path(path).name for path in paths]
    if len(set(names)) < len(names):
        names = [f"stored:{path}" if path == fast5 else path for path in paths]
    if len(set(names)) < len(names):
        names = [f"{name} ({i})" for i, name in enumerate(names, start=1)]
    return names


def _stored_records(fast5: str, save_stored: str | None) -> list[tuple[str, str]]:
    from basecall.stored_calls import stored_calls, write_fastq

    stored = list(stored_calls([fast5]))
    if not stored:
        raise InputError(f"{fast5}: no basecalls stored in these fast5 files")
    if save_stored:
        log.info("%s: %d stored calls written", save_stored, write_fastq(save_stored, stored))
    return [(call.read_id, call.sequence) for call in stored]


def _print_table(title: str, summaries: dict[str, Summary]) -> None:
    from basecall.evaluate import format_table

    click.echo(f"# {title}")
    click.echo(format_table(summaries))
