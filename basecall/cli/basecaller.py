"""`basecall basecaller`: pod5 / fast5 files and folders → FASTQ (or unaligned SAM/BAM) + per-read summary."""

from __future__ import annotations

import itertools
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path

import click

from basecall.cli import configure_logging, logging_options
from basecall.errors import ExitCode, InputError
from basecall.records import Failure, Read
from basecall.writers.bam import SUFFIXES as SAM_BAM_SUFFIXES
from basecall.writers.bam import is_sam_or_bam

log = logging.getLogger("basecall.cli")


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-m", "--model", "model_name", metavar="NAME|DIR", help="Shipped model name or model directory. [default: the shipped model for the reads' chemistry and sample rate]")
@click.option("-o", "--output", default="-", show_default=True, help="FASTQ path ('.gz' compresses), unaligned BAM or SAM path (.bam, .sam), or - for FASTQ on stdout.")
@click.option("--summary", "summary_path", metavar="PATH", help="Per-read summary TSV. [default: OUTPUT's name with .summary.tsv; none for stdout]")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, or cuda:all (every visible GPU).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Chunks per forward pass. [default: from the model on a GPU; on CPU 8, or 64 with beam search]")
@click.option("--threads", type=click.IntRange(min=1), help="On CPU: batches run at once, one core each. [default: the cores this process may use]")
@click.option("--readers", type=click.IntRange(min=1), help="Files read at once, each in a worker process, and reads normalised and chunked at once. [default: 1 on CPU, where the model needs every core; on a GPU, up to 4 of the cores]")
@click.option("--precision", type=click.Choice(["auto", "fp32"]), default="auto", show_default=True, help="Forward pass: auto = fp16 on a GPU, bf16 on a CPU with native bf16 (AVX512-BF16/AMX) for LSTM models, else fp32.")
@click.option("--chunksize", type=click.IntRange(min=1), help="Chunk length in samples. [default: from the model]")
@click.option("--overlap", type=click.IntRange(min=0), help="Chunk overlap in samples. [default: from the model]")
@click.option("--emit-moves", is_flag=True, help="BAM/SAM output: add each read's move table (mv:B:c tag: the model stride, then 1 where a base starts at each model timestep).")
@click.option("--read-ids", type=click.Path(exists=True, dir_okay=False), help="Only these reads (one id per line).")
@click.option("--min-qscore", type=click.FloatRange(min=0), help="Filter reads with a lower mean qscore. [default: from the model]")
@click.option("--beam-width", type=click.IntRange(min=0), default=0, show_default=True, help="CTC beam width; 0 or 1 = greedy.")
@click.option("--beam-cut", type=click.FloatRange(min=0), help="Drop beam candidates this far (natural log) below the best.")
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Look for reads in sub-folders.")
@click.option("--resume", is_flag=True, help="Continue a stopped run into the same OUTPUT and summary: reads already done are kept, not redone.")
@click.option("--strict", is_flag=True, help="Stop at the first file or read that fails (exit status 3).")
@click.option("--save-ctc", "save_ctc", metavar="DIR", help="Also save training chunks (chunks.npy, references.npy, reference_lengths.npy, for `basecall train DIR`) from the called reads that align well to --reference.")
@click.option("--reference", type=click.Path(exists=True, dir_okay=False), metavar="FASTA", help="Reference of the reads' genome (FASTA, gzip or not), for --save-ctc.")
@click.option("--min-coverage", type=click.FloatRange(0, 1), default=0.90, show_default=True, help="--save-ctc: use only reads whose primary alignment covers at least this fraction of the called bases.")
@click.option("--min-accuracy", type=click.FloatRange(0, 1), default=0.90, show_default=True, help="--save-ctc: use only reads whose alignment has at least this fraction of matches among its columns (matches / (matches + mismatches + insertions + deletions)).")
@logging_options
def basecaller(
    inputs: tuple[str, ...],
    model_name: str | None,
    output: str,
    summary_path: str | None,
    device: str,
    threads: int | None,
    readers: int | None,
    precision: str,
    batch_size: int | None,
    chunksize: int | None,
    overlap: int | None,
    emit_moves: bool,
    read_ids: str | None,
    min_qscore: float | None,
    beam_width: int,
    beam_cut: float | None,
    recursive: bool,
    resume: bool,
    strict: bool,
    save_ctc: str | None,
    reference: str | None,
    min_coverage: float,
    min_accuracy: float,
    quiet: bool,
    verbose: bool,
    debug: bool,
) -> None:
    """Basecall INPUT files and folders (.pod5, .fast5, .blow5, .slow5) into FASTQ, or unaligned BAM/SAM.

    Every read gets a row in the summary: called, filtered (with the reason) or failed (with the reason); other
    files found in folders get a `skipped` row. Output files only ever hold whole records: after a crash, a kill or
    Ctrl-C, run the same command with --resume to finish the run.

    Exit status: 0 when every read was called or filtered, 3 when any file or read failed (each is named on
    stderr and has a row in the summary), 1 when the run could not start, 2 for a bad command line, 130 on Ctrl-C.
    """
    if emit_moves and not is_sam_or_bam(output):
        raise click.UsageError("--emit-moves needs a BAM or SAM output (-o calls.bam)")
    if save_ctc is not None and reference is None:
        raise click.UsageError("--save-ctc needs --reference FASTA (the genome the reads come from)")
    if reference is not None and save_ctc is None:
        raise click.UsageError("--reference is only used with --save-ctc DIR")
    if save_ctc is not None and resume:
        raise click.UsageError("--save-ctc cannot be combined with --resume (the chunks of reads done before are not kept)")
    configure_logging(quiet, verbose)
    from basecall.decoder import cpu_batch_size, make_decoder
    from basecall.errors import ModelError
    from basecall.model import forward_dtype, load_model, resolve_devices, select_model, shipped_models
    from basecall.pipeline import basecall_reads
    from basecall.readers import open_reads
    from basecall.writers import SummaryWriter, open_output, write_results

    torch_device, *more_devices = resolve_devices(device, threads)
    if batch_size is None and torch_device.type == "cpu":
        batch_size = cpu_batch_size(beam_width)
    selected = _load_read_ids(read_ids) if read_ids else None
    if summary_path is None and output != "-":
        summary_path = _default_summary(output)
    done: set[str] = set()
    if resume:
        if output == "-":
            raise click.UsageError("--resume needs an output file, not stdout")
        from basecall.writers.resume import recover

        done = recover(output, summary_path)
        log.info("resuming: %d reads already done in %s", len(done), output)
    if readers is None:
        readers = 1 if torch_device.type == "cpu" else max(1, min(4, len(os.sched_getaffinity(0)) - 1 - len(more_devices)))
    reads = open_reads(inputs, selected, recursive, done, processes=readers)
    if model_name is None:
        first, reads = _peek_read(reads)
        if first is not None:
            model_name = select_model(first)
            log.info("no --model given: using %s, the shipped model for reads like %s", model_name, first.read_id)
        else:  # nothing to call: still record what failed, or finish a resumed run that is already complete
            leftovers = list(reads)
            model_name = next(iter(shipped_models()), None) if leftovers or resume else None
            if model_name is None:
                raise ModelError("no model given and no readable read to choose one by: pass --model NAME|DIR")
            log.info("no readable read left to call: nothing needs a model")
            reads = iter(leftovers)
    loaded = load_model(model_name, torch_device)
    config = loaded.config.with_basecaller(
        chunksize=chunksize, overlap=overlap, batch_size=batch_size, min_qscore=min_qscore
    )
    settings = config.basecaller
    log.info(
        "model %s (%s, %d Hz) on %s; chunksize %d, overlap %d, batch size %d, %s",
        loaded.name, config.info.chemistry, config.info.sample_rate_hz, ", ".join(map(str, [torch_device, *more_devices])),
        settings.chunksize, settings.overlap, settings.batch_size,
        str(forward_dtype(torch_device, precision, loaded.model) or "float32").removeprefix("torch."),
    )  # fmt: skip
    reads = _warn_sample_rate(reads, config.info.sample_rate_hz)
    progress = _progress(quiet)
    on_result = _advance(progress)
    if save_ctc is not None:
        from basecall.training.save_ctc import ChunkCollector

        collector = ChunkCollector(save_ctc, reference, settings.chunksize, min_coverage, min_accuracy)
        reads = collector.keep_signals(reads)
        on_result = _collect(collector, settings.min_qscore, on_result)

    started = time.perf_counter()
    append = resume and Path(output).exists()
    summary_writer = SummaryWriter(summary_path, append and Path(summary_path).exists()) if summary_path else nullcontext()
    try:
        writer = open_output(output, loaded.name, append, emit_moves)
        with writer, summary_writer as summary, progress, _log_above(progress):
            decode = make_decoder(beam_width, beam_cut, settings.qscale, settings.qbias)
            results = basecall_reads(
                loaded.model, reads, settings, torch_device, decode, more_devices, precision, chunk_threads=readers
            )
            tally = write_results(results, writer, summary, settings.min_qscore, on_result, strict)
    except KeyboardInterrupt:
        if output != "-":
            log.warning("stopped: %s holds every read finished so far; run the same command with --resume to go on", output)
        raise
    seconds = time.perf_counter() - started
    if save_ctc is not None:
        collector.save()
    if not quiet:
        click.echo(
            f"basecall: {tally.called} reads called, {tally.filtered} filtered, {tally.failed} failed"
            + (f", {len(done)} already done" if resume else "")
            + (f", {tally.skipped} other files skipped" if tally.skipped else "")
            + f" in {seconds:.1f} s ({tally.n_samples / seconds:,.0f} samples/s)"
            + (f"; summary: {summary_path}" if summary_path else ""),
            err=True,
        )
    if tally.failed:
        click.get_current_context().exit(ExitCode.READS_FAILED)


def _collect(collector, min_qscore: float, then):
    """An on_result that hands every result to --save-ctc's collector (reads kept in the FASTQ only), then `then`."""
    from basecall.writers import filter_reason

    def on_result(item) -> None:
        collector.add(item, use=not isinstance(item, Failure) and filter_reason(item, min_qscore) is None)
        then(item)

    return on_result


def _peek_read(items: Iterator) -> tuple[Read | None, Iterator]:
    """The first Read in `items` (Failures before it are kept) and an iterator over everything, unchanged."""
    seen = []
    for item in items:
        seen.append(item)
        if isinstance(item, Read):
            return item, itertools.chain(seen, items)
    return None, iter(seen)


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


def _warn_sample_rate(items: Iterable, model_rate_hz: int) -> Iterator:
    """Pass reads through, warning once per sample rate that differs from the model's."""
    warned: set[float] = set()
    for item in items:
        rate = getattr(item, "sample_rate_hz", model_rate_hz)
        if rate != model_rate_hz and rate not in warned:
            warned.add(rate)
            log.warning("%s: sampled at %g Hz but the model expects %d Hz", item.path, rate, model_rate_hz)
        yield item


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
