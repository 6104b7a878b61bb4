"""pod5 files, through the `pod5` package."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

from basecall.errors import one_line
from basecall.records import Calibration, Failure, Read


def read_pod5(path: Path, read_ids: Collection[str] | None = None) -> Iterator[Read | Failure]:
    import pod5

    n_done = 0
    try:
        with pod5.Reader(path) as reader:
            selection = list(read_ids) if read_ids is not None else None
            for record in reader.reads(selection=selection, missing_ok=True):
                read_id = str(record.read_id)
                try:
                    yield _to_read(record, path)
                except Exception as e:  # one bad record: report it, go on with the file
                    yield Failure(str(path), f"cannot read this read: {e}", read_id=read_id)
                n_done += 1
    except Exception as e:
        where = "not a readable pod5 file" if n_done == 0 else f"file failed after {n_done} reads"
        yield Failure(str(path), f"{where}: {one_line(e)}")


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
    )

