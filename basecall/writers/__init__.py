"""Writers, and the loop that accounts for every read: called, filtered (with reason) or failed (with reason)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from basecall.errors import ReadsFailed
from basecall.records import CalledRead, Failure
from basecall.writers.bam import BamWriter, is_sam_or_bam
from basecall.writers.fastq import FastqWriter
from basecall.writers.summary import CALLED, FAILED, FILTERED, SKIPPED, SummaryWriter

log = logging.getLogger(__name__)


@dataclass
class Tally:
    called: int = 0
    filtered: int = 0
    failed: int = 0  # reads and whole files that failed
    skipped: int = 0  # files in folders that are not read files
    n_samples: int = 0  # samples of the reads that were called or filtered
    failures: list[str] = field(default_factory=list)


def open_output(path: str, model_name: str, append: bool = False, emit_moves: bool = False) -> FastqWriter | BamWriter:
    """The writer for `path`: unaligned SAM/BAM for .sam/.bam (with the move table if `emit_moves`), else FASTQ."""
    if is_sam_or_bam(path):
        return BamWriter(path, model_name, append, emit_moves)
    return FastqWriter(path, model_name, append)


def filter_reason(called: CalledRead, min_qscore: float) -> str | None:
    """Why a called read is left out of the output, or None to keep it."""
    if not called.sequence:
        return "no bases called"
    if called.mean_qscore < min_qscore:
        return f"mean_qscore {called.mean_qscore:.2f} < min_qscore {min_qscore:g}"
    return None


def write_results(
    results: Iterable[CalledRead | Failure],
    output: FastqWriter | BamWriter,
    summary: SummaryWriter | None,
    min_qscore: float = 0.0,
    on_result: Callable[[CalledRead | Failure], None] | None = None,
    strict: bool = False,
) -> Tally:
    """Write each result to the output (if called and kept) and the summary; log each failure as one line.

    With `strict`, the first failure stops the run (after its summary row) with ReadsFailed.
    """
    tally = Tally()
    for item in results:
        if isinstance(item, Failure) and item.skipped:
            tally.skipped += 1
            log.info("%s", item.message())
            if summary:
                summary.write(item, SKIPPED, item.reason)
        elif isinstance(item, Failure):
            tally.failed += 1
            tally.failures.append(item.message())
            if summary:
                summary.write(item, FAILED, item.reason)
            if strict:
                raise ReadsFailed(f"{item.message()} (stopping: --strict)")
            log.error("%s", item.message())
        else:
            tally.n_samples += item.n_samples
            reason = filter_reason(item, min_qscore)
            if reason is None:
                output.write(item)
                tally.called += 1
            else:
                tally.filtered += 1
            if summary:
                summary.write(item, CALLED if reason is None else FILTERED, reason or "")
        if on_result:
            on_result(item)
    return tally
