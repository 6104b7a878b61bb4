"""`basecall basecaller`: pod5 / fast5 files and folders → FASTQ (or unaligned SAM/BAM) + per-read summary."""

from __future__ import annotations

import itertools
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import click

from basecall.cli import Option, configure_logging, logging_options
from basecall.errors import ExitCode, InputError, ModelError
from basecall.records import Failure
from basecall.writers.bam import SUFFIXES as SAM_BAM_SUFFIXES
from basecall.writers.bam import is_sam_or_bam

log = logging.getLogger("basecall.cli")


STRIDE_RULE = "a multiple of the model's stride (3 for r9.4.1-accurate and -fast, 5 for r9.4.1-small)"


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-m", "--model", "model_name", metavar="NAME|DIR", help="Shipped model name or model directory. [default: the shipped model for the reads' chemistry and sample rate; reads it does not fit fail]")
@click.option("-o", "--output", default="-", show_default=True, metavar="PATH", help="FASTQ path ('.gz' compresses), unaligned BAM or SAM path (.bam, .sam), or - for FASTQ on stdout.")
@click.option("--summary", "summary_path", metavar="PATH", help="Per-read summary TSV. [default: OUTPUT's name with .summary.tsv; none for stdout]")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, or cuda:all (every visible GPU).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Chunks per forward pass. [default: from the model: its batch_size on a GPU, its cpu_batch_size on CPU (8 for LSTM models, 32 for GRU ones)]")
@click.option("--model-copies", cls=Option, old_names=["--threads"], type=click.IntRange(min=1), help="On CPU: copies of the model calling batches at once, each single-threaded on a core of its own. [default: the cores this process may use; on a GPU, one copy per GPU]")
@click.option("--readers", type=click.IntRange(min=1), help="Files read at once, each in a worker process, and reads normalised and chunked at once. [default: 1 on CPU, where the model needs every core; on a GPU, up to 4 of the cores]")
@click.option("--precision", type=click.Choice(["auto", "fp32"]), default="auto", show_default=True, help="Forward pass: auto = fp16 on a GPU, bf16 on a CPU with native bf16 (AVX512-BF16/AMX) for LSTM models, else fp32.")
@click.option("--chunksize", type=click.IntRange(min=1), help=f"Chunk length in samples: {STRIDE_RULE}, so that stitching chunks back together is exact. [default: from the model]")
@click.option("--overlap", type=click.IntRange(min=0), help=f"Overlap of neighbouring chunks in samples: {STRIDE_RULE}, at least two strides and less than --chunksize. [default: from the model]")
@click.option("--emit-moves", is_flag=True, help="BAM/SAM output: add each read's move table (mv:B:c tag: the model stride, then 1 where a base starts at each model timestep).")
@click.option("--read-ids", type=click.Path(exists=True, dir_okay=False), metavar="FILE", help="Only these reads (one id per line). [default: every read]")
@click.option("--min-qscore", type=click.FloatRange(min=0), help="Filter reads with a lower mean qscore. [default: from the model]")
@click.option("--beam-width", type=click.IntRange(min=0), help="CTC beam width; 0 or 1 = greedy. [default: from the model: 5 for the shipped models, whose cards show what it gains]")
@click.option("--beam-cut", type=click.FloatRange(min=0), help="Beam search cut (natural log): on a GPU drop candidates this far below the best; on CPU ignore classes whose posterior is below exp(-CUT) (capped at 0.19). [default: no cut]")
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Look for reads in sub-folders.")
@click.option("--resume", is_flag=True, help="Continue a stopped run into the same OUTPUT and summary: reads already done are kept, not redone.")
@click.option("--strict", is_flag=True, help="Stop at the first file or read that fails (exit status 3).")
@click.option("--save-ctc", "save_ctc", metavar="DIR", help="Also save training chunks (chunks.npy, references.npy, reference_lengths.npy, for `basecall train DIR`) from the called reads that align well to --reference. [default: none saved]")
@click.option("--reference", type=click.Path(exists=True, dir_okay=False), metavar="FASTA", help="Reference of the reads' genome (FASTA, gzip or not), for --save-ctc. [default: none]")
@click.option("--min-coverage", type=click.FloatRange(0, 1), default=0.90, show_default=True, help="--save-ctc: use only reads whose primary alignment covers at least this fraction of the called bases.")
@click.option("--min-accuracy", type=click.FloatRange(0, 1), default=0.90, show_default=True, help="--save-ctc: use only reads whose alignment has at least this fraction of matches among its columns (matches / (matches + mismatches + insertions + deletions)).")
@logging_options
def basecaller(
    inputs: tuple[str, ...],
    model_name: str | None,
    output: str,
    summary_path: str | None,
    device: str,
    model_copies: int | None,
    readers: int | None,
    precision: str,
    batch_size: int | None,
    chunksize: int | None,
    overlap: int | None,
    emit_moves: bool,
    read_ids: str | None,
    min_qscore: float | None,
    beam_width: int | None,
    beam_cut: float | None,
    recursive: bool,
    resume: bool,
    strict: bool,
    save_ctc: str | None,
    reference: str | None,
    min_coverage: float,
    min_accuracy: float,
    quiet: bool,
    verbose: int,
    debug: bool,
) -> None:
    """Basecall INPUT files and folders (.pod5, .fast5, .blow5, .slow5) into FASTQ, or unaligned BAM/SAM.

    Every read gets a row in the summary: called, filtered (with the reason) or failed (with the reason); other
    files found in folders get a `skipped` row. Output files only ever hold whole records: after a crash, a kill or
    Ctrl-C, run the same command with --resume to finish the run.

    Exit status: 0 when every read was called or filtered, 3 when any file or read failed (each is named on
    stderr and has a row in the summary), 1 when the run could not start, 2 for a bad command line, 130 on Ctrl-C.
    """
    _check_options(output, emit_moves, save_ctc, reference, resume)
    configure_logging(quiet, verbose)
    from basecall.model import resolve_devices
    from basecall.readers import open_reads

    devices = resolve_devices(device, model_copies)
    if devices[0].type == "cpu":
        _warm_up_early(model_name, beam_width)
    selected = _load_read_ids(read_ids) if read_ids else None
    summary_path = summary_path or _default_summary(output)
    done = _recover(output, summary_path) if resume else set()
    readers = readers or _default_readers(devices)
    reads = open_reads(inputs, selected, recursive, done, processes=readers)
    loaded, settings, reads = _choose_model(
        reads, model_name, devices, precision, resume,
        chunksize=chunksize, overlap=overlap, batch_size=batch_size, min_qscore=min_qscore, beam_width=beam_width,
    )  # fmt: skip
    progress = _progress(quiet)
    on_result = _advance(progress)
    collector = None
    if save_ctc is not None:
        from basecall.training.save_ctc import ChunkCollector

        collector = ChunkCollector(save_ctc, reference, settings.chunksize, min_coverage, min_accuracy)
        reads = collector.keep_signals(reads)
        on_result = _collect(collector, settings.min_qscore, on_result)
    started = time.perf_counter()
    with progress, _log_above(progress):
        tally = _call_and_write(
            reads, loaded, settings, devices, output, summary_path, resume, emit_moves, beam_cut, precision, readers,
            strict, on_result,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    if collector is not None:
        collector.save()
    if not quiet:
        click.echo(_final_line(tally, seconds, len(done) if resume else None, summary_path), err=True)
    if tally.failed:
        click.get_current_context().exit(ExitCode.READS_FAILED)


def _check_options(output: str, emit_moves: bool, save_ctc: str | None, reference: str | None, resume: bool) -> None:
    """Usage errors (exit status 2) of option combinations, before anything is loaded."""
    if emit_moves and not is_sam_or_bam(output):
        raise click.UsageError("--emit-moves needs a BAM or SAM output (-o calls.bam)")
    if save_ctc is not None and reference is None:
        raise click.UsageError("--save-ctc needs --reference FASTA (the genome the reads come from)")
    if reference is not None and save_ctc is None:
        raise click.UsageError("--reference is only used with --save-ctc DIR")
    if save_ctc is not None and resume:
        raise click.UsageError("--save-ctc cannot be combined with --resume (the chunks of reads done before are not kept)")
    if resume and output == "-":
        raise click.UsageError("--resume needs an output file, not stdout")


def _recover(output: str, summary_path: str | None) -> set[str]:
    """--resume: keep the whole records of the stopped run (and their summary rows); the ids of the reads done."""
    from basecall.writers.resume import recover

    done = recover(output, summary_path)
    log.info("resuming: %d reads already done in %s", len(done), output)
    return done


def _warm_up_early(model_name: str | None, beam_width: int | None) -> None:
    """Start loading the CPU beam search (`decoder.warm_up`) now, while the reader process starts, when the beam width
    is known before any read is: given, or the --model's own."""
    from basecall.config import load_config
    from basecall.decoder import warm_up
    from basecall.errors import BasecallError
    from basecall.model import resolve_model

    if beam_width is None and model_name is not None:
        try:
            beam_width = load_config(resolve_model(model_name) / "config.toml").basecaller.beam_width
        except BasecallError:
            return  # reported when the model is loaded
    if beam_width is not None:
        warm_up(beam_width)


def _default_readers(devices: list) -> int:
    """Reader processes: 1 on CPU (the model copies need every core), else up to 4, leaving a core per GPU thread."""
    if devices[0].type == "cpu":
        return 1
    return max(1, min(4, len(os.sched_getaffinity(0)) - len(devices)))


def _choose_model(reads, model_name, devices, precision, resume, **overrides):
    """The model (chosen by the reads' chemistry without --model; None when no read fits one), the run settings
    (the model's [basecaller] section with the command line's `overrides`; on CPU its `cpu_batch_size` unless
    --batch-size is given), and the reads to call: with a model, each read it is not for warned about once
    (`check_fit`); without one, the Failures only."""
    from basecall.chemistry import check_fit, choose_model
    from basecall.config import Config
    from basecall.decoder import warm_up
    from basecall.model import forward_dtype, load_model

    if model_name is None:
        model_name, reads = choose_model(reads)  # reads it does not fit come out as Failures
    loaded = load_model(model_name, devices[0]) if model_name else None
    config = loaded.config if loaded else Config()
    if overrides["batch_size"] is None and devices[0].type == "cpu":
        overrides["batch_size"] = config.basecaller.cpu_batch_size
    config = config.with_basecaller(**overrides)
    settings = config.basecaller
    if devices[0].type == "cpu":
        warm_up(settings.beam_width)  # (no-op if already started by `_warm_up_early`)
    if loaded is None:
        return None, settings, _nothing_to_call(reads, resume)
    log.info(
        "model %s (%s, %d Hz) on %s; chunksize %d, overlap %d, batch size %d, %s, %s",
        loaded.name, config.info.chemistry, config.info.sample_rate_hz, ", ".join(map(str, devices)),
        settings.chunksize, settings.overlap, settings.batch_size,
        str(forward_dtype(devices[0], precision, loaded.model) or "float32").removeprefix("torch."),
        f"beam search (width {settings.beam_width})" if settings.beam_width > 1 else "greedy",
    )  # fmt: skip
    return loaded, settings, check_fit(reads, loaded.name, config.info)


def _call_and_write(
    reads, loaded, settings, devices, output, summary_path, resume, emit_moves, beam_cut, precision, readers, strict,
    on_result,
):  # fmt: skip
    """Call the reads and write every result (appending after what --resume kept); the run's Tally. On Ctrl-C,
    say how to go on."""
    from basecall.decoder import make_decoder
    from basecall.pipeline import basecall_reads
    from basecall.writers import SummaryWriter, open_output, write_results

    append = resume and Path(output).exists()
    summary_writer = SummaryWriter(summary_path, append and Path(summary_path).exists()) if summary_path else nullcontext()
    try:
        writer = open_output(output, loaded.name if loaded else "none", append, emit_moves)
        with writer, summary_writer as summary:
            decode = make_decoder(settings.beam_width, beam_cut, settings.qscale, settings.qbias)
            results = reads if loaded is None else basecall_reads(
                loaded.model, reads, settings, devices[0], decode, devices[1:], precision, chunk_threads=readers
            )
            return write_results(results, writer, summary, settings.min_qscore, on_result, strict)
    except KeyboardInterrupt:
        if output != "-":
            log.warning("stopped: %s holds every read finished so far; run the same command with --resume to go on", output)
        raise


def _final_line(tally, seconds: float, n_done_before: int | None, summary_path: str | None) -> str:
    """`basecall: N reads called, N filtered, N failed[, N already done] in S s (X samples/s)[; summary: PATH]`."""
    return (
        f"basecall: {tally.called} reads called, {tally.filtered} filtered, {tally.failed} failed"
        + (f", {n_done_before} already done" if n_done_before is not None else "")
        + (f", {tally.skipped} other files skipped" if tally.skipped else "")
        + f" in {seconds:.1f} s ({tally.n_samples / seconds:,.0f} samples/s)"
        + (f"; summary: {summary_path}" if summary_path else "")
    )


def _collect(collector, min_qscore: float, then):
    """An on_result that hands every result to --save-ctc's collector (reads kept in the FASTQ only), then `then`."""
    from basecall.writers import filter_reason

    def on_result(item) -> None:
        collector.add(item, use=not isinstance(item, Failure) and filter_reason(item, min_qscore) is None)
        then(item)

    return on_result


def _nothing_to_call(items: Iterator[Failure], resume: bool) -> Iterator[Failure]:
    """The items of a run without a model: all Failures (no read fits a shipped model), or none when a finished run
    is resumed; ModelError when there is nothing at all."""
    first = next(items, None)
    if first is None and not resume:
        raise ModelError("no model given and no readable read to choose one by: pass --model NAME|DIR")
    log.info("no read to call: nothing needs a model")
    return itertools.chain([first] if first else [], items)


def _load_read_ids(path: str) -> set[str]:
    lines = (line.split()[0] for line in Path(path).read_text().splitlines() if line.strip())
    ids = {line for line in lines if not line.startswith("#") and line != "read_id"}
    if not ids:
        raise InputError(f"{path}: no read ids in this file")
    return ids


def _default_summary(output: str) -> str | None:
    """calls.fastq[.gz] or calls.bam → calls.summary.tsv; None for outputs not named like FASTQ/SAM/BAM (/dev/null)."""
    for suffix in (".fastq", ".fq", ".fastq.gz", ".fq.gz", *SAM_BAM_SUFFIXES):
        if output.endswith(suffix):
            return output[: -len(suffix)] + ".summary.tsv"
    return None


def _progress(quiet: bool):
    from tqdm import tqdm

    return tqdm(unit="sample", unit_scale=True, file=sys.stderr, disable=quiet or not sys.stderr.isatty(), leave=False)


def _log_above(progress):
    """While the progress bar shows, print log lines above it instead of through it."""
    if progress.disable:
        return nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm([logging.getLogger("basecall")])


def _advance(progress):
    reads = 0

    def update(item) -> None:
        nonlocal reads
        reads += 1
        progress.update(item.n_samples or 0)
        progress.set_postfix(reads=reads, refresh=False)

    return update
