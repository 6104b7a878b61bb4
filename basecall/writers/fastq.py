"""FASTQ output: a path, a path ending in .gz, or '-' for stdout."""

from __future__ import annotations

import gzip
import sys
from typing import IO

from basecall.errors import InputError
from basecall.records import CalledRead


def open_text(path: str) -> IO[str]:
    """Open an output for text: '-' is stdout, '.gz' is gzip-compressed."""
    if path == "-":
        return sys.stdout
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "wt", compresslevel=4)
        return open(path, "w")
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror or e}") from e


def close_text(handle: IO[str]) -> None:
    """Close an output from `open_text`; stdout is flushed, not closed."""
    if handle is sys.stdout:
        handle.flush()
    else:
        handle.close()


def fastq_record(called: CalledRead, model_name: str) -> str:
    """One FASTQ record: ``@read_id key=value ...``, sequence, ``+``, Phred+33 qualities."""
    read = called.read
    tags = {
        "runid": read.run_id,
        "read": read.read_number,
        "ch": read.channel,
        "start_time": read.start_time_iso,
        "flow_cell_id": read.flow_cell_id,
        "model": model_name,
        "mean_qscore": f"{called.mean_qscore:.2f}",
        "samples": called.n_samples,
    }
    header = " ".join([read.read_id] + [f"{k}={v}" for k, v in tags.items() if v not in (None, "")])
    qualities = (called.qualities + 33).tobytes().decode("ascii")
    return f"@{header}\n{called.sequence}\n+\n{qualities}\n"


class FastqWriter:
    def __init__(self, path: str, model_name: str):
        self.path = path
        self.model_name = model_name
        self._out = open_text(path)

    def write(self, called: CalledRead) -> None:
        self._out.write(fastq_record(called, self.model_name))

    def close(self) -> None:
        close_text(self._out)

    def __enter__(self) -> FastqWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
