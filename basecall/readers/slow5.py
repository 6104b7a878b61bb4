"""slow5 / blow5 files, through `pyslow5` (slow5lib's binding).

Three faults of pyslow5 1.5 / slow5lib are worked around here (found by fuzzing, see fuzz/README.md):
- `pyslow5.Open` dereferences the file handle before checking it, so a file slow5lib cannot open (even an empty one)
  crashes the process: we first ask slow5lib itself, through ctypes, to open it.
- slow5lib sets up every read group the header declares before reading them: a 2 KB file declaring 2^28 groups takes
  a minute and 15 GB. We refuse a count the header has no room for.
- `seq_reads` stops at a record it cannot parse exactly as at the end of the file, only logging an error: we catch
  that log record and report the rest of the file as failed.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import struct
from collections.abc import Collection, Iterator
from pathlib import Path

import numpy as np

from basecall.errors import one_line
from basecall.readers import checked
from basecall.readers.fast5 import flow_cell_product_code, parse_time
from basecall.records import Calibration, Failure, Read


def read_slow5(path: Path, read_ids: Collection[str] | None = None) -> Iterator[Read | Failure]:
    import pyslow5

    n_done = 0
    errors = _ErrorLog()
    logging.getLogger("pyslow5").addHandler(errors)
    try:
        _check_read_groups(path)
        _check_opens(path, pyslow5.__file__)
        handle = pyslow5.Open(str(path), "r")
        headers: dict[int, dict] = {}
        n_records = 0
        for record in handle.seq_reads(pA=False, aux="all"):
            n_records += 1
            if read_ids is not None and record["read_id"] not in read_ids:
                continue
            group = record["read_group"]
            if group not in headers:
                headers[group] = _header(handle, group)
            try:
                yield checked(_to_read(record, headers[group], path))
            except Exception as e:
                yield Failure(str(path), f"cannot read this read: {one_line(e)}", read_id=record["read_id"])
            n_done += 1
        if errors.messages:
            raise ValueError(errors.messages[0])
        if n_records == 0:
            yield Failure(str(path), "no reads in this slow5/blow5 file")
    except Exception as e:
        where = "not a readable slow5/blow5 file" if n_done == 0 else f"file failed after {n_done} reads"
        yield Failure(str(path), f"{where}: {one_line(e)}")
    finally:
        logging.getLogger("pyslow5").removeHandler(errors)


class _ErrorLog(logging.Handler):
    """Keeps the errors pyslow5 logs (its only report of a record it could not read)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _check_read_groups(path: Path) -> None:
    """Raise ValueError if the header declares more read groups than it has bytes (each group has a value per line)."""
    with path.open("rb") as handle:
        start = handle.read(1024)
    if start.startswith(b"BLOW5"):  # binary header: group count at byte 10, header text size at byte 64 (uint32 LE)
        start = start.ljust(68, b"\0")
        n_groups, room = struct.unpack_from("<I", start, 10)[0], struct.unpack_from("<I", start, 64)[0]
    else:
        found = re.search(rb"\n#num_read_groups\t(\d{1,20})\n", start)
        n_groups, room = (int(found.group(1)) if found else 0), path.stat().st_size
    if n_groups > room:
        raise ValueError(f"the header declares {n_groups} read groups in {room} bytes")


def _check_opens(path: Path, library: str) -> None:
    """Raise ValueError unless slow5lib (linked into pyslow5's extension module, `library`) can open `path`."""
    slow5lib = ctypes.CDLL(library)
    slow5lib.slow5_open.restype = ctypes.c_void_p
    slow5lib.slow5_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    slow5lib.slow5_close.argtypes = [ctypes.c_void_p]
    handle = slow5lib.slow5_open(os.fsencode(path), b"r")
    if not handle:
        raise ValueError("slow5lib cannot open it (bad header or not slow5/blow5)")
    slow5lib.slow5_close(handle)


HEADER_FIELDS = (
    "run_id", "exp_start_time", "flow_cell_id", "sequencing_kit", "flow_cell_product_code", "flowcell_type"
)  # fmt: skip


def _header(handle, read_group: int) -> dict[str, str]:
    """The run metadata we carry, for one read group (asking only for fields the file has: pyslow5 logs misses)."""
    present = set(handle.get_header_names())
    return {name: handle.get_header_value(name, read_group=read_group) for name in HEADER_FIELDS if name in present}


def _to_read(record: dict, header: dict, path: Path) -> Read:
    return Read(
        read_id=record["read_id"],
        signal=np.asarray(record["signal"], dtype=np.int16),
        calibration=Calibration.from_range(record["offset"], record["range"], record["digitisation"]),
        sample_rate_hz=float(record["sampling_rate"]),
        run_id=header.get("run_id") or "",
        channel=int(record.get("channel_number") or 0),
        start_sample=int(record.get("start_time") or 0),
        path=str(path),
        read_number=int(record["read_number"]) if record.get("read_number") is not None else None,
        acquisition_start=parse_time(header.get("exp_start_time")),
        flow_cell_id=header.get("flow_cell_id") or None,
        sequencing_kit=header.get("sequencing_kit") or None,
        flow_cell_product_code=flow_cell_product_code(header, header),  # the header holds tracking_id and context_tags
    )
