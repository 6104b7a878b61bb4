"""Basecalls stored in fast5 files by the basecaller that made them (e.g. Guppy): `basecall evaluate --from-fast5`."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from basecall.errors import InputError, one_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredCall:
    """A basecall stored in a fast5 file by the basecaller that made it (e.g. Guppy)."""

    read_id: str
    sequence: str
    quality: str  # Phred+33
    path: str  # the fast5 file
    analysis: str  # e.g. "Basecall_1D_000"


def stored_calls(paths: Iterable[str | Path], recursive: bool = True) -> Iterator[StoredCall]:
    """The calls stored in fast5 files and folders (`Analyses/Basecall_1D_*/BaseCalled_template/Fastq`; the
    highest-numbered analysis when there are several), single- and multi-read files. Reads without stored calls are
    skipped and counted in one warning; a missing or unreadable file raises InputError naming it."""
    from basecall.readers import find_read_files
    from basecall.records import Failure

    n_files = n_without = 0
    for item in find_read_files(paths, recursive):
        if isinstance(item, Failure):
            raise InputError(f"{item.path}: {item.reason}")
        if item.suffix.lower() != ".fast5":
            continue
        n_files += 1
        for call in _stored_calls_in(item):
            if call is None:
                n_without += 1
            else:
                yield call
    if n_without:
        log.warning("%d reads in %d fast5 files have no stored basecalls; skipped", n_without, n_files)


def _stored_calls_in(path: Path) -> Iterator[StoredCall | None]:
    """Each read's stored call in one fast5 file, None for a read without one."""
    import h5py

    from basecall.readers.fast5 import read_groups

    try:
        with h5py.File(path, "r") as handle:
            for read_id, _, _, analyses_root in read_groups(handle):
                yield _stored_call(read_id, analyses_root, path)
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"{path}: cannot read stored basecalls: {one_line(e)}") from e


def _stored_call(read_id: str, group, path: Path) -> StoredCall | None:
    analyses = sorted(name for name in group.get("Analyses", {}) if name.startswith("Basecall_1D_"))
    for analysis in reversed(analyses):
        fastq = group["Analyses"][analysis].get("BaseCalled_template/Fastq")
        if fastq is not None:
            lines = _text(fastq[()]).strip().splitlines()
            if len(lines) < 4:
                raise ValueError(f"read {read_id}: {analysis} holds a malformed FASTQ record")
            return StoredCall(read_id, lines[1].strip(), lines[3].strip(), str(path), analysis)
    return None


def _text(value: object) -> str:
    if isinstance(value, np.ndarray):
        value = value.item()
    return value.decode() if isinstance(value, bytes) else str(value)


def write_fastq(path: str, calls: Iterable[StoredCall]) -> int:
    """Write stored calls as FASTQ (`.gz` compresses, '-' is stdout); returns the number written."""
    from basecall.writers.fastq import format_fastq
    from basecall.writers.output import RecordFile

    n_written = 0
    with RecordFile(path) as out:
        for call in calls:
            out.write(format_fastq(f"{call.read_id} {call.analysis}", call.sequence, call.quality))
            n_written += 1
    return n_written
