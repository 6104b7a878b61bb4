"""slow5 / blow5 files, through `pyslow5` (slow5lib's binding)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

import numpy as np

from basecall.errors import one_line
from basecall.readers.fast5 import parse_time
from basecall.records import Calibration, Failure, Read


def read_slow5(path: Path, read_ids: Collection[str] | None = None) -> Iterator[Read | Failure]:
    import pyslow5

    n_done = 0
    try:
        handle = pyslow5.Open(str(path), "r")
        headers: dict[int, dict] = {}
        for record in handle.seq_reads(pA=False, aux="all"):
            if read_ids is not None and record["read_id"] not in read_ids:
                continue
            group = record["read_group"]
            if group not in headers:
                headers[group] = _header(handle, group)
            try:
                yield _to_read(record, headers[group], path)
            except Exception as e:
                yield Failure(str(path), f"cannot read this read: {one_line(e)}", read_id=record["read_id"])
            n_done += 1
    except Exception as e:
        where = "not a readable slow5/blow5 file" if n_done == 0 else f"file failed after {n_done} reads"
        yield Failure(str(path), f"{where}: {one_line(e)}")


HEADER_FIELDS = ("run_id", "exp_start_time", "flow_cell_id", "sequencing_kit")


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
    )
