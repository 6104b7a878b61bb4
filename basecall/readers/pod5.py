"""pod5 files, through the `pod5` package.

pyarrow reads pod5's Arrow tables without checking them, so a corrupted offset or dictionary index crashes the process
in C++ (abort or segfault, found by fuzzing): every table is fully validated first, which turns that into an error.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

from basecall.errors import one_line
from basecall.readers import checked
from basecall.readers.fast5 import flow_cell_product_code
from basecall.records import Calibration, Failure, Read


def read_pod5(path: Path, read_ids: Collection[str] | None = None) -> Iterator[Read | Failure]:
    import pod5

    n_done = 0
    try:
        with pod5.Reader(path) as reader:
            if _validate(reader) == 0:
                yield Failure(str(path), "no reads in this pod5 file")
            selection = list(read_ids) if read_ids is not None else None
            for record in reader.reads(selection=selection, missing_ok=True):
                read_id = str(record.read_id)
                try:
                    yield checked(_to_read(record, path))
                except Exception as e:  # one bad record: report it, go on with the file
                    yield Failure(str(path), f"cannot read this read: {one_line(e)}", read_id=read_id)
                n_done += 1
    except Exception as e:
        where = "not a readable pod5 file" if n_done == 0 else f"file failed after {n_done} reads"
        yield Failure(str(path), f"{where}: {one_line(e)}")


def _validate(reader) -> int:
    """The number of reads; raises pyarrow's ArrowInvalid unless the reads, run info and signal tables are consistent
    Arrow data."""
    for table in (reader.read_table, reader.run_info_table, reader.signal_table):
        for index in range(table.num_record_batches):
            table.get_batch(index).validate(full=True)
    return sum(reader.read_table.get_batch(index).num_rows for index in range(reader.read_table.num_record_batches))


def _known_time(value: datetime) -> datetime | None:
    """pod5 stores the epoch when the start time is unknown (e.g. converted from a fast5 without one)."""
    return None if value is None or value.timestamp() == 0 else value


def _to_read(record, path: Path) -> Read:
    run_info = record.run_info
    calibration = record.calibration
    return Read(
        read_id=str(record.read_id),
        signal=np.asarray(record.signal, dtype=np.int16).copy(),
        calibration=Calibration(offset=float(calibration.offset), scale=float(calibration.scale)),
        sample_rate_hz=float(run_info.sample_rate),
        run_id=str(run_info.acquisition_id),
        channel=int(record.pore.channel),
        start_sample=int(record.start_sample),
        path=str(path),
        read_number=int(record.read_number),
        acquisition_start=_known_time(run_info.acquisition_start_time),
        flow_cell_id=run_info.flow_cell_id or None,
        sequencing_kit=run_info.sequencing_kit or None,
        flow_cell_product_code=run_info.flow_cell_product_code
        or flow_cell_product_code(run_info.tracking_id, run_info.context_tags),
    )

