"""Raw-signal files written from `Read` records: pod5 and fast5 as MinKNOW writes them, and reproducible random reads.

Tests on a fresh clone (no ../shared/data), benchmarks and `basecall simulate` make their own raw files with these:
`random_reads` gives reproducible reads (a random piecewise-constant current, no pore model: see `basecall.simulate`
for reads with a known sequence), `write_pod5` and `write_fast5` write them in the formats MinKNOW writes, so the
readers are tested on files that ONT's own tools (`pod5 convert fast5`, h5py with the VBZ plugin) also read.

Signal conventions (as in `basecall.records.Calibration`): raw int16 ADC samples, ``pA = (raw + offset) * scale``.
fast5 stores the scale as ``range / digitisation``; we always write ``digitisation = 8192`` (a MinION-style ADC).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import h5py
import numpy as np
import vbz_h5py_plugin  # noqa: F401  (registers the VBZ HDF5 filter)

from basecall.records import Calibration, Read

if TYPE_CHECKING:
    import pod5

DIGITISATION = 8192
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
VBZ_FILTER = 32020  # HDF5 filter id registered by vbz_h5py_plugin
VBZ_OPTIONS = (0, 2, 1, 1)  # VBZ version 0, 2-byte integers, zig-zag delta on, zstd level 1


# --- random reads -------------------------------------------------------------------------------------------------


def digitise(signal_pa: np.ndarray, calibration: Calibration) -> np.ndarray:
    """Picoamps → raw ADC samples: the inverse of `Calibration.to_pa`, rounded and clipped to int16.

    signal_pa: (n_samples,) float. Returns (n_samples,) int16.
    """
    raw = np.rint(np.asarray(signal_pa, dtype=np.float64) / calibration.scale - calibration.offset)
    return np.clip(raw, np.iinfo(np.int16).min, np.iinfo(np.int16).max).astype(np.int16)


def random_levels(
    rng: np.random.Generator,
    n_samples: int,
    mean_pa: float = 90.0,
    level_sd_pa: float = 15.0,
    noise_sd_pa: float = 2.0,
    mean_dwell: float = 10.0,
) -> np.ndarray:
    """A piecewise-constant current with Gaussian noise, like a strand moving through a pore.

    Levels are drawn from N(mean_pa, level_sd_pa²), each held for a geometric number of samples (mean `mean_dwell`;
    10 is ~400 bases/s at 4 kHz), plus N(0, noise_sd_pa²) noise per sample. Returns (n_samples,) float64 pA.
    """
    dwells = rng.geometric(1.0 / mean_dwell, size=n_samples)  # n_samples dwells of >= 1 sample always suffice
    n_levels = min(n_samples, int(np.searchsorted(np.cumsum(dwells), n_samples)) + 1)
    levels = rng.normal(mean_pa, level_sd_pa, size=n_levels)
    return np.repeat(levels, dwells[:n_levels])[:n_samples] + rng.normal(0.0, noise_sd_pa, size=n_samples)


def random_reads(
    n_reads: int,
    seed: int,
    n_runs: int = 1,
    sample_rate_hz: float = 4000.0,
    scale: float = 1500.0 / DIGITISATION,
) -> list[Read]:
    """`n_reads` reproducible synthetic reads (same seed → identical reads), spread round-robin over `n_runs` runs.

    Lengths vary: the first read is shorter than 1,000 samples, the second has 30,000–60,000 samples, the rest
    1,000–20,000. Each read has a random integer calibration offset (0–29) and the run's `scale`; each run has its
    own 40-hex run id, flow cell, kit (with a flow cell product code that fits it) and a whole-second UTC acquisition
    start. Read ids are random UUID4s drawn from the seed. `path` is "" (the reads come from no file).
    """
    rng = np.random.default_rng(seed)
    runs = [
        {
            "run_id": rng.bytes(20).hex(),
            "flow_cell_id": f"FAK{rng.integers(10_000, 100_000)}",
            "sequencing_kit": ("sqk-lsk109", "sqk-lsk114", "sqk-rad004")[rng.integers(3)],
            "acquisition_start": datetime(2023, 1, 1, tzinfo=timezone.utc)
            + timedelta(seconds=int(rng.integers(0, 365 * 24 * 3600))),
        }
        for _ in range(n_runs)
    ]
    for run in runs:
        run["flow_cell_product_code"] = "FLO-MIN114" if run["sequencing_kit"] == "sqk-lsk114" else "FLO-MIN106"
    reads: list[Read] = []
    for i in range(n_reads):
        if i == 0:
            n_samples = int(rng.integers(200, 1_000))
        elif i == 1:
            n_samples = int(rng.integers(30_000, 60_000))
        else:
            n_samples = int(rng.integers(1_000, 20_000))
        calibration = Calibration(offset=float(rng.integers(0, 30)), scale=scale)
        reads.append(
            Read(
                read_id=str(uuid.UUID(bytes=rng.bytes(16), version=4)),
                signal=digitise(random_levels(rng, n_samples), calibration),
                calibration=calibration,
                sample_rate_hz=sample_rate_hz,
                channel=int(rng.integers(1, 513)),
                start_sample=int(rng.integers(0, 100_000_000)),
                read_number=int(rng.integers(1, 100_000)),
                path="",
                **runs[i % n_runs],
            )
        )
    return reads


# --- pod5 and fast5 -----------------------------------------------------------------------------------------------


def write_pod5(reads: Iterable[Read], path: str | Path) -> Path:
    """Write `reads` to a new pod5 file at `path` (refuses to overwrite) and return the path.

    Read ids must be UUID strings. Run information (acquisition start, flow cell, kit, sample rate) is stored once
    per run_id, so reads of one run must agree on it (ValueError otherwise). pod5 has no "unknown" for some fields:
    acquisition_start None is stored as the epoch (our reader maps it back to None), flow_cell_id / sequencing_kit /
    flow_cell_product_code None as "", read_number None as 0. The end reason is "unknown", the well 1, median_before
    NaN.
    """
    import pod5

    path = Path(path)
    run_infos: dict[str, pod5.RunInfo] = {}
    with pod5.Writer(path, software_name="basecall.simulate") as writer:
        for read in reads:
            run_info = _pod5_run_info(read)
            known = run_infos.setdefault(read.run_id, run_info)
            if known != run_info:
                raise ValueError(f"read {read.read_id}: run {read.run_id} already has different run information")
            writer.add_read(
                pod5.Read(
                    read_id=uuid.UUID(read.read_id),
                    pore=pod5.Pore(channel=read.channel, well=1, pore_type="not_set"),
                    calibration=pod5.Calibration(offset=read.calibration.offset, scale=read.calibration.scale),
                    read_number=0 if read.read_number is None else read.read_number,
                    start_sample=read.start_sample,
                    median_before=float("nan"),
                    end_reason=pod5.EndReason.from_reason_with_default_forced(pod5.EndReasonEnum.UNKNOWN),
                    run_info=known,
                    signal=int16_signal(read),
                )
            )
    return path


def _pod5_run_info(read: Read) -> pod5.RunInfo:
    """The run information pod5 stores once per run, from one read of the run."""
    import pod5

    start = EPOCH if read.acquisition_start is None else _utc(read.acquisition_start)
    tags = {"sample_frequency": str(_integer_rate(read)), "sequencing_kit": read.sequencing_kit or ""}
    return pod5.RunInfo(
        acquisition_id=read.run_id,
        acquisition_start_time=start,
        adc_max=DIGITISATION // 2 - 1,
        adc_min=-DIGITISATION // 2,
        context_tags=tags,
        experiment_name="",
        flow_cell_id=read.flow_cell_id or "",
        flow_cell_product_code=read.flow_cell_product_code or "",
        protocol_name="",
        protocol_run_id="",
        protocol_start_time=start,
        sample_id="",
        sample_rate=_integer_rate(read),
        sequencing_kit=read.sequencing_kit or "",
        sequencer_position="",
        sequencer_position_type="",
        software="basecall.simulate",
        system_name="",
        system_type="",
        tracking_id={"run_id": read.run_id},
    )


def write_fast5(
    reads: Iterable[Read],
    path: str | Path,
    layout: Literal["multi", "single"] = "multi",
    compression: Literal["gzip", "vbz"] = "gzip",
) -> Path:
    """Write `reads` to a new fast5 (HDF5) file at `path` (refuses to overwrite) and return the path.

    layout "multi": one ``read_<id>`` group per read (MinKNOW's multi-read file, file_version "2.0").
    layout "single": ``Raw/Reads/Read_<read_number>`` + ``UniqueGlobalKey``; exactly one read (ValueError otherwise).
    The signal is int16, gzip- or VBZ-compressed. Metadata the Read does not have is written as MinKNOW's
    "unknown": end_reason 0, start_mux 1, median_before NaN; fields that are None are left out.
    """
    reads = list(reads)
    if compression not in ("gzip", "vbz"):
        raise ValueError(f"compression must be 'gzip' or 'vbz', not {compression!r}")
    if layout not in ("multi", "single"):
        raise ValueError(f"layout must be 'multi' or 'single', not {layout!r}")
    if layout == "single" and len(reads) != 1:
        raise ValueError(f"a single-read fast5 holds exactly one read, not {len(reads)}")
    path = Path(path)
    with h5py.File(path, "w-") as handle:
        if layout == "multi":
            handle.attrs["file_version"] = "2.0"
            for read in reads:
                group = handle.create_group(f"read_{read.read_id}")
                group.attrs["run_id"] = read.run_id.encode()
                _write_raw(group.create_group("Raw"), read, compression)
                _write_fast5_metadata(group, read)
        else:
            (read,) = reads
            number = 0 if read.read_number is None else read.read_number
            _write_raw(handle.create_group(f"Raw/Reads/Read_{number}"), read, compression)
            _write_fast5_metadata(handle.create_group("UniqueGlobalKey"), read)
    return path


def _write_raw(raw: h5py.Group, read: Read, compression: str) -> None:
    """The read's attributes and its `Signal` dataset, with the attribute types MinKNOW writes."""
    raw.attrs["read_id"] = read.read_id.encode()
    raw.attrs["start_time"] = np.uint64(read.start_sample)
    raw.attrs["duration"] = np.uint32(read.n_samples)
    if read.read_number is not None:
        raw.attrs["read_number"] = np.uint32(read.read_number)
    raw.attrs["start_mux"] = np.uint8(1)
    raw.attrs["median_before"] = np.float64("nan")
    raw.attrs["end_reason"] = np.uint8(0)
    if compression == "vbz":
        options = {"compression": VBZ_FILTER, "compression_opts": VBZ_OPTIONS}
    else:
        options = {"compression": "gzip", "compression_opts": 1}
    raw.create_dataset("Signal", data=int16_signal(read), **options)


def _write_fast5_metadata(group: h5py.Group, read: Read) -> None:
    """`channel_id`, `tracking_id` and `context_tags` under `group` (byte strings and float64, as MinKNOW)."""
    channel = group.create_group("channel_id")
    channel.attrs["channel_number"] = str(read.channel).encode()
    channel.attrs["digitisation"] = np.float64(DIGITISATION)
    channel.attrs["offset"] = np.float64(read.calibration.offset)
    channel.attrs["range"] = np.float64(read.calibration.scale * DIGITISATION)
    channel.attrs["sampling_rate"] = np.float64(read.sample_rate_hz)
    tracking = group.create_group("tracking_id")
    tracking.attrs["run_id"] = read.run_id.encode()
    if read.flow_cell_id is not None:
        tracking.attrs["flow_cell_id"] = read.flow_cell_id.encode()
    if read.flow_cell_product_code is not None:
        tracking.attrs["flow_cell_product_code"] = read.flow_cell_product_code.encode()
    if read.acquisition_start is not None:
        tracking.attrs["exp_start_time"] = _iso_utc(read.acquisition_start).encode()
    context = group.create_group("context_tags")
    context.attrs["sample_frequency"] = str(_integer_rate(read)).encode()
    if read.sequencing_kit is not None:
        context.attrs["sequencing_kit"] = read.sequencing_kit.encode()


def int16_signal(read: Read) -> np.ndarray:
    """The read's raw signal, (n_samples,) int16; refuses anything else rather than converting it silently."""
    if read.signal.dtype != np.int16 or read.signal.ndim != 1:
        raise ValueError(f"read {read.read_id}: signal must be 1-D int16, not {read.signal.ndim}-D {read.signal.dtype}")
    return read.signal


def _integer_rate(read: Read) -> int:
    """pod5 (and fast5 context tags) store the sample rate as a whole number of Hz."""
    rate = int(round(read.sample_rate_hz))
    if rate != read.sample_rate_hz:
        raise ValueError(f"read {read.read_id}: sample rate {read.sample_rate_hz} Hz is not a whole number")
    return rate


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"acquisition start {value} has no time zone (expected UTC)")
    return value.astimezone(timezone.utc)


def _iso_utc(value: datetime) -> str:
    """MinKNOW's exp_start_time: '2019-02-07T17:30:24Z' (fractional seconds kept when there are any)."""
    return _utc(value).replace(tzinfo=None).isoformat() + "Z"
