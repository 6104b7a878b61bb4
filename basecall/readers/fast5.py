"""fast5 files (HDF5): single-read and multi-read, gzip- or VBZ-compressed signal.

Read with h5py directly; importing `vbz_h5py_plugin` registers ONT's VBZ filter with HDF5. (ont-fast5-api wraps the
same h5py calls but imports `pkg_resources`, which current setuptools no longer ships.)

Old single-read files (file_version 1.0 and before, e.g. Chiron's example reads) have no read_id: the read is named
``<run_id>_<read_number>`` from what the file has, else after the file (its name's stem, as Chiron does).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import vbz_h5py_plugin  # noqa: F401  (registers the VBZ HDF5 filter)

from basecall.errors import one_line
from basecall.readers import checked
from basecall.records import Calibration, Failure, Read

log = logging.getLogger(__name__)
_n_named = itertools.count()  # reads this process has named: the first is said at info level, the rest at debug


def read_fast5(path: Path, read_ids: Collection[str] | None = None) -> Iterator[Read | Failure]:
    try:
        handle = h5py.File(path, "r")
    except Exception as e:
        yield Failure(str(path), f"not a readable fast5 (HDF5) file: {one_line(e)}")
        return
    with handle:
        try:
            groups = [(read_id, raw, meta) for read_id, raw, meta, _ in read_groups(handle)]
        except Exception as e:
            yield Failure(str(path), f"cannot list the reads in this fast5 file: {one_line(e)}")
            return
        if not groups:
            yield Failure(str(path), "no reads in this fast5 file")
        for read_id, raw, meta in groups:
            if read_ids is not None and read_id.lower() not in read_ids:  # the selection is in lower case
                continue
            try:
                yield checked(_to_read(read_id, raw, meta, path))
            except Exception as e:
                yield Failure(str(path), f"cannot read this read: {one_line(e)}", read_id=read_id)


def read_groups(handle: h5py.File) -> Iterator[tuple[str, h5py.Group, h5py.Group, h5py.Group]]:
    """Per read: (read_id, raw group with Signal, group holding channel_id/tracking_id/context_tags, group holding
    Analyses). Single-read files keep metadata in UniqueGlobalKey and analyses at the root; multi-read files keep
    everything in one ``read_<id>`` group per read."""
    if "Raw" in handle:  # single-read file
        meta = handle.get("UniqueGlobalKey", handle)
        for raw in handle["Raw/Reads"].values():
            yield _single_read_id(raw, meta, Path(handle.filename)), raw, meta, handle
    else:
        for name, group in handle.items():
            if name.startswith("read_"):
                read_id = _str(group["Raw"].attrs.get("read_id", name[len("read_") :]))
                yield read_id, group["Raw"], group, group


def _single_read_id(raw: h5py.Group, meta: h5py.Group, path: Path) -> str:
    """The read's read_id or, in an old file without one, ``<run_id>_<read_number>``, else the file name's stem."""
    if "read_id" in raw.attrs:
        return _str(raw.attrs["read_id"])
    run_id = _run_id(meta)
    if run_id and "read_number" in raw.attrs:
        read_id, source = f"{run_id}_{int(raw.attrs['read_number'])}", "its run id and read number"
    else:
        read_id, source = path.stem, "the file name"
    level = logging.INFO if next(_n_named) == 0 else logging.DEBUG
    log.log(level, "%s: an old fast5 file without a read_id: its read is named %s, from %s", path, read_id, source)
    return read_id


def _run_id(meta: h5py.Group) -> str:
    tracking = meta["tracking_id"].attrs if "tracking_id" in meta else {}
    return _str(meta.attrs.get("run_id", tracking.get("run_id", "")))


def _to_read(read_id: str, raw: h5py.Group, meta: h5py.Group, path: Path) -> Read:
    channel = meta["channel_id"].attrs
    tracking = meta["tracking_id"].attrs if "tracking_id" in meta else {}
    context = meta["context_tags"].attrs if "context_tags" in meta else {}
    return Read(
        read_id=read_id,
        signal=np.asarray(raw["Signal"][()], dtype=np.int16),
        calibration=Calibration.from_range(channel["offset"], channel["range"], channel["digitisation"]),
        sample_rate_hz=float(channel["sampling_rate"]),
        run_id=_run_id(meta),
        channel=int(_str(channel["channel_number"])),
        start_sample=int(raw.attrs["start_time"]),
        path=str(path),
        read_number=int(raw.attrs["read_number"]) if "read_number" in raw.attrs else None,
        acquisition_start=parse_time(tracking.get("exp_start_time")),
        flow_cell_id=_str(tracking.get("flow_cell_id", "")) or None,
        sequencing_kit=_str(context.get("sequencing_kit", "")) or None,
        flow_cell_product_code=flow_cell_product_code(tracking, context),
    )


def flow_cell_product_code(tracking: Mapping, context: Mapping) -> str | None:
    """tracking_id's flow_cell_product_code, else context_tags' flowcell_type (older files, as 'flo-min106'); pod5
    and slow5 files converted from fast5 carry the same two tables."""
    code = _str(tracking.get("flow_cell_product_code", "") or context.get("flowcell_type", ""))
    return code.upper() or None


def _str(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_time(value: object) -> datetime | None:
    """ISO 8601 (current MinKNOW) or seconds since the epoch (old files)."""
    if value is None:
        return None
    text = _str(value).strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    try:
        return datetime.fromtimestamp(float(text), tz=timezone.utc)
    except (ValueError, OverflowError):
        return None

