"""`--resume`: keep the complete, consistent part of a stopped run's output (FASTQ, SAM or BAM) and summary, and say
which reads are done.

A read is done when the summary says it was filtered, or says it was called and its output record is there. Everything
else (a record cut short by a kill, a summary row whose record never reached the disk or the reverse, failed and
skipped rows) is dropped and done again, so the resumed run ends with exactly the read set of an uninterrupted one.
Both files are rewritten under a temporary name and renamed (`atomic_path`), so a kill during recovery is harmless.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import dnaio

from basecall.atomic import atomic_path
from basecall.errors import InputError
from basecall.writers.bam import is_sam_or_bam, write_mode
from basecall.writers.fastq import format_fastq
from basecall.writers.output import RecordFile
from basecall.writers.summary import CALLED, COLUMNS, FILTERED, HEADER

log = logging.getLogger(__name__)


def recover(output_path: str, summary_path: str | None) -> set[str]:
    """Trim both outputs to the reads that are done, and return those read ids."""
    output, summary = Path(output_path), Path(summary_path) if summary_path else None
    if not output.exists():
        if summary is not None:
            summary.unlink(missing_ok=True)
        return set()
    statuses = _summary_statuses(summary) if summary is not None else None
    done = _keep_bam(output, statuses) if is_sam_or_bam(output.name) else _keep_fastq(output, statuses)
    if statuses is not None:
        done |= {read_id for read_id, status in statuses.items() if status == FILTERED}
        _keep_summary(summary, done)
    return done


def _summary_statuses(summary: Path) -> dict[str, str]:
    """read id → status of each complete called/filtered row ({} when the summary is missing: all is redone)."""
    statuses: dict[str, str] = {}
    for row in _summary_rows(summary):
        if row["status"] in (CALLED, FILTERED) and row["read_id"]:
            statuses[row["read_id"]] = row["status"]
    return statuses


def _summary_rows(summary: Path):
    if not summary.exists():
        return
    with summary.open(newline="", errors="replace") as handle:  # a line cut inside a character is dropped below
        for number, line in enumerate(handle):
            fields = line.rstrip("\n").split("\t")
            if not line.endswith("\n") or len(fields) != len(COLUMNS):
                return  # the last line was cut short
            if number > 0:
                yield dict(zip(COLUMNS, fields))


def _keep_fastq(fastq: Path, statuses: dict[str, str] | None) -> set[str]:
    """Rewrite `fastq` with its complete records (those the summary calls called, when there is one)."""
    kept: set[str] = set()
    with tempfile.TemporaryDirectory(dir=fastq.parent) as scratch, atomic_path(fastq) as rewritten:
        plain = Path(scratch) / "readable.fastq"
        _readable_part(fastq, plain)
        with RecordFile(str(rewritten), compress=fastq.name.endswith(".gz")) as out:
            for record in _complete_records(plain):
                read_id = record.id
                if read_id not in kept and (statuses is None or statuses.get(read_id) == CALLED):
                    kept.add(read_id)
                    out.write(format_fastq(record.name, record.sequence, record.qualities))
    log.info("resume: %s holds %d complete records", fastq, len(kept))
    return kept


def _keep_bam(path: Path, statuses: dict[str, str] | None) -> set[str]:
    """Rewrite the SAM/BAM at `path` with its whole records (those the summary calls called, when there is one)."""
    import pysam

    kept: set[str] = set()
    if path.name.endswith(".sam"):  # a line cut by a kill can still parse (cut inside its tags): drop it first
        _drop_last_partial_line(path)
    try:
        records = pysam.AlignmentFile(str(path), check_sq=False)
    except (OSError, ValueError):  # killed before its header was whole: nothing to keep
        log.warning("resume: %s has no readable header; its reads are done again", path)
        path.unlink()
        return kept
    mode = write_mode(path.name)
    with atomic_path(path) as rewritten, records, pysam.AlignmentFile(str(rewritten), mode, template=records) as out:
        try:
            for record in records.fetch(until_eof=True):  # unaligned: no index, no references
                read_id = record.query_name
                if read_id not in kept and (statuses is None or statuses.get(read_id) == CALLED):
                    kept.add(read_id)
                    out.write(record)
        except (OSError, ValueError):
            pass  # the last block or line was cut short by a kill: keep what came before
    log.info("resume: %s holds %d complete records", path, len(kept))
    return kept


def _drop_last_partial_line(path: Path, block_size: int = 1 << 16) -> None:
    """Truncate `path` after its last newline (reading back from the end, one block at a time)."""
    with path.open("rb+") as handle:
        end = handle.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - block_size)
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                handle.truncate(start + newline + 1)
                return
            end = start
        handle.truncate(0)


def _readable_part(path: Path, plain: Path) -> None:
    """Copy what can be decompressed of `path` (everything, for a plain file) to `plain`: for gzip, every byte up to
    where a kill cut the last member (members appended by earlier resumes are read in turn)."""
    if not path.name.endswith(".gz"):
        shutil.copyfile(path, plain)
        return
    decompressor = zlib.decompressobj(wbits=31)
    with path.open("rb") as source, plain.open("wb") as target:
        while block := source.read(1 << 16):
            while block:
                try:
                    target.write(decompressor.decompress(block))
                except zlib.error:
                    return  # damaged beyond the cut: keep what came before
                block = decompressor.unused_data if decompressor.eof else b""
                if decompressor.eof:
                    decompressor = zlib.decompressobj(wbits=31)


def _complete_records(plain: Path):
    """FASTQ records up to the first one that is incomplete or malformed."""
    try:
        with dnaio.open(plain, fileformat="fastq") as records:
            yield from records
    except dnaio.exceptions.FastqFormatError:
        return
    except Exception as e:  # noqa: BLE001 - anything else is not our FASTQ
        raise InputError(f"{plain}: cannot resume from this FASTQ: {e}") from e


def _keep_summary(summary: Path, done: set[str]) -> None:
    with atomic_path(summary) as rewritten, RecordFile(str(rewritten)) as out:
        out.write(HEADER)
        for row in _summary_rows(summary):
            if row["read_id"] in done and row["status"] in (CALLED, FILTERED):
                out.write("\t".join(row[c] for c in COLUMNS) + "\n")
