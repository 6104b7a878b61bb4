"""Stream reads from pod5, fast5 and slow5/blow5 files, files and folders mixed.

`open_reads` yields a `Read` for every read and a `Failure` for every file or read that cannot be used,
so a bad file never stops the run and never goes unreported. Every reader passes its reads through `checked`, which
turns values the rest of the run cannot use into failures; `open_reads` fails a read id seen before in the run as
a duplicate (the first copy is called).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path

from basecall.records import Failure, Read

log = logging.getLogger(__name__)

ReadSource = Callable[[Path, Collection[str] | None], Iterator[Read | Failure]]


def _sources() -> dict[str, ReadSource]:
    from basecall.readers.fast5 import read_fast5
    from basecall.readers.pod5 import read_pod5
    from basecall.readers.slow5 import read_slow5

    return {".pod5": read_pod5, ".fast5": read_fast5, ".blow5": read_slow5, ".slow5": read_slow5}


SUFFIXES = (".pod5", ".fast5", ".blow5", ".slow5")


def find_read_files(paths: Iterable[str | Path], recursive: bool = True) -> Iterator[Path | Failure]:
    """Expand files and folders into read files (sorted within a folder, each file once).

    Other files found in a folder come out as skipped Failures (a run folder's reports and summaries are normal);
    a file named explicitly is always tried, whatever its name.
    """
    seen: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern) if p.is_file())
            found = [p for p in files if p.suffix.lower() in SUFFIXES]
            for other in sorted(set(files) - set(found)):
                yield Failure(str(other), f"skipped: not a read file ({other.suffix or 'no extension'})", skipped=True)
            if not found:
                log.warning("%s: no read files (%s) in this folder", path, ", ".join(SUFFIXES))
        elif path.is_file():
            found = [path]
        elif path.exists():
            yield Failure(str(path), "not a regular file or folder")
            continue
        else:
            yield Failure(str(path), "no such file or folder")
            continue
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                yield file


def read_file(path: Path, read_ids: Collection[str] | None = None) -> Iterator[Read | Failure]:
    """The reads of one file (by its extension), and Failures for what cannot be read, in this process."""
    source = _sources().get(path.suffix.lower())
    if source is None:
        yield Failure(str(path), f"unsupported file type {path.suffix!r} (expected {' or '.join(SUFFIXES)})")
        return
    yield from source(path, read_ids)


def open_reads(
    paths: Iterable[str | Path],
    read_ids: Collection[str] | None = None,
    recursive: bool = True,
    done: Collection[str] = (),
    isolate: bool = True,
    processes: int = 1,
) -> Iterator[Read | Failure]:
    """Yield every read (or only `read_ids`) from `paths`, and a Failure for what cannot be read.

    Reads in `done` (finished by an earlier, interrupted run) are left out silently. With `isolate`, files are read
    in a worker process (`basecall.readers.worker`), so a crash or hang in a C library fails one file, not the run;
    `processes` files are read at once (each in its own worker), the reads still coming out in file order.
    """
    if read_ids is not None:
        read_ids = {read_id.strip().lower() for read_id in read_ids}  # read ids are UUIDs, written in lower case
    files = find_read_files(paths, recursive)
    if isolate:
        from basecall.readers.worker import read_isolated

        items = read_isolated(files, read_ids, processes=processes)
    else:
        items = (item for file in files for item in ([file] if isinstance(file, Failure) else read_file(file, read_ids)))
    first_seen: dict[str, str] = {}  # read id → the file it was first read from
    for item in items:
        if isinstance(item, Read):
            if item.read_id in done:
                continue
            problem = _read_id_problem(item.read_id, first_seen)
            if problem:
                item = Failure(item.path, problem, item.read_id, item.without_signal(), item.n_samples)
            else:
                first_seen[item.read_id] = item.path
        yield item


def _read_id_problem(read_id: str, first_seen: dict[str, str]) -> str | None:
    if read_id in first_seen:
        return f"duplicate read id: already read from {first_seen[read_id]}"
    return None


def checked(read: Read) -> Read:
    """`read`, or ValueError saying which of its values the rest of the run cannot use (any reader can meet such
    values in a damaged file; found by fuzzing: see fuzz/README.md)."""
    if read.signal.ndim != 1:
        raise ValueError(f"signal has {read.signal.ndim} dimensions, not 1")
    if not (math.isfinite(read.sample_rate_hz) and read.sample_rate_hz > 0):
        raise ValueError(f"impossible sample rate {read.sample_rate_hz:g} Hz")
    if not read.read_id.isascii() or not read.read_id.isprintable() or len(read.read_id.split()) != 1:
        raise ValueError(f"read id {read.read_id!r} is not one printable ASCII word (it goes into FASTQ headers)")
    for name in ("run_id", "flow_cell_id", "sequencing_kit", "flow_cell_product_code"):
        text = getattr(read, name) or ""
        try:
            text.encode()
        except UnicodeEncodeError as e:  # surrogates: bytes that were not UTF-8 (h5py decodes with surrogateescape)
            raise ValueError(f"{name} {text!r} is not UTF-8 text") from e
    try:
        _ = read.start_time
    except (OverflowError, ValueError) as e:
        when = f"sample {read.start_sample} of a run started {read.acquisition_start}"
        raise ValueError(f"impossible start time: {when} ({e})") from e
    return read

