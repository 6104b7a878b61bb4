"""Stream reads from pod5, fast5 and slow5/blow5 files, files and folders mixed.

`open_reads` yields a `Read` for every read and a `Failure` for every file or read that cannot be used,
so a bad file never stops the run and never goes unreported.
"""

from __future__ import annotations

import logging
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
    """Expand files and folders into read files (sorted within a folder, each file once)."""
    seen: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(p for p in path.glob(pattern) if p.suffix.lower() in SUFFIXES and p.is_file())
            if not found:
                log.warning("%s: no read files (%s) in this folder", path, ", ".join(SUFFIXES))
        elif path.exists():
            found = [path]
        else:
            yield Failure(str(path), "no such file or folder")
            continue
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                yield file


def open_reads(
    paths: Iterable[str | Path], read_ids: Collection[str] | None = None, recursive: bool = True
) -> Iterator[Read | Failure]:
    """Yield every read (or only `read_ids`) from `paths`, and a Failure for what cannot be read."""
    sources = _sources()
    if read_ids is not None:
        read_ids = {read_id.strip().lower() for read_id in read_ids}  # read ids are UUIDs, written in lower case
    for item in find_read_files(paths, recursive):
        if isinstance(item, Failure):
            yield item
            continue
        source = sources.get(item.suffix.lower())
        if source is None:
            yield Failure(str(item), f"unsupported file type {item.suffix!r} (expected {' or '.join(SUFFIXES)})")
            continue
        yield from source(item, read_ids)
