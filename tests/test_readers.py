"""The readers (`basecall.readers.open_reads`) on files we write ourselves and on real pod5 / fast5 files.

Synthetic files come from `basecall.rawfiles` (real pod5 / HDF5 files, so these run on a fresh clone); real files from
../shared/data through `shared_data` (skipped without it, failing under CI=true). The key check converts real
multi-read fast5 files to pod5 with ONT's own `pod5 convert fast5` and requires both to read back identically.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from basecall.readers import open_reads
from basecall.records import Failure, Read
from basecall.rawfiles import VBZ_FILTER, random_reads, write_fast5, write_pod5
from tests.conftest import shared_data

METADATA = ("run_id", "channel", "start_sample", "read_number", "sample_rate_hz", "acquisition_start",
            "flow_cell_id", "sequencing_kit", "flow_cell_product_code")  # fmt: skip


def read_all(paths: Iterable[str | Path], **kwargs) -> tuple[list[Read], list[Failure]]:
    items = list(open_reads(paths, **kwargs))
    reads = [item for item in items if isinstance(item, Read)]
    failures = [item for item in items if isinstance(item, Failure) and not item.skipped]
    skipped = [item for item in items if isinstance(item, Failure) and item.skipped]
    assert len(reads) + len(failures) + len(skipped) == len(items)
    return reads, failures


def by_id(reads: Iterable[Read]) -> dict[str, Read]:
    reads = list(reads)
    table = {read.read_id: read for read in reads}
    assert len(table) == len(reads), "a read id came out twice"
    return table


def assert_same_reads(expected: Iterable[Read], actual: Iterable[Read], scale_rtol: float = 1e-6) -> None:
    """Same read ids, identical int16 signals, same metadata; calibration within float32 rounding (pod5 stores f32)."""
    expected, actual = by_id(expected), by_id(actual)
    assert sorted(actual) == sorted(expected)
    for read_id, want in expected.items():
        got = actual[read_id]
        assert got.signal.dtype == np.int16, read_id
        assert np.array_equal(got.signal, want.signal), read_id
        for name in METADATA:
            assert getattr(got, name) == getattr(want, name), f"{read_id} {name}"
        assert got.calibration.offset == pytest.approx(want.calibration.offset, rel=scale_rtol, abs=1e-6)
        assert got.calibration.scale == pytest.approx(want.calibration.scale, rel=scale_rtol)
        np.testing.assert_allclose(got.signal_pa, want.signal_pa, rtol=1e-5, atol=1e-4)


def pod5_convert(fast5: Path, output: Path) -> Path:
    """ONT's converter: `pod5 convert fast5` (the console script next to this Python; `python -m pod5` does not run)."""
    tool = Path(sys.executable).with_name("pod5")
    command = [str(tool), "convert", "fast5", str(fast5), "--output", str(output), "--threads", "1", "--strict"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert output.is_file()
    return output


# --- synthetic reads and the writers ------------------------------------------------------------------------------


def test_random_reads_are_reproducible_and_varied():
    reads = random_reads(6, seed=3, n_runs=2)
    again = random_reads(6, seed=3, n_runs=2)
    other = random_reads(6, seed=4, n_runs=2)
    assert [r.read_id for r in reads] == [r.read_id for r in again]
    assert all(np.array_equal(a.signal, b.signal) for a, b in zip(reads, again, strict=True))
    assert {r.read_id for r in reads}.isdisjoint(r.read_id for r in other)
    lengths = [r.n_samples for r in reads]
    assert min(lengths) < 1000 and max(lengths) >= 30_000
    assert len({r.run_id for r in reads}) == 2
    for read in reads:
        assert read.signal.dtype == np.int16 and read.signal.ndim == 1
        assert read.acquisition_start.tzinfo is not None and read.acquisition_start.microsecond == 0
        assert 60 < float(np.median(read.signal_pa)) < 120  # around 90 pA once calibrated


@pytest.mark.parametrize("fmt", ["pod5", "fast5-multi-gzip", "fast5-multi-vbz", "fast5-single-gzip"])
def test_round_trip(tmp_path: Path, fmt: str):
    reads = random_reads(5, seed=11, n_runs=2)
    if fmt == "pod5":
        target = write_pod5(reads, tmp_path / "reads.pod5")
    elif fmt == "fast5-single-gzip":
        target = tmp_path / "single"
        target.mkdir()
        for read in reads:
            write_fast5([read], target / f"{read.read_id}.fast5", layout="single")
    else:
        compression = fmt.rsplit("-", 1)[1]
        target = write_fast5(reads, tmp_path / "reads.fast5", compression=compression)
        with h5py.File(target) as handle:  # the codec asked for is the one used
            signal = handle[f"read_{reads[0].read_id}/Raw/Signal"]
            assert str(VBZ_FILTER if compression == "vbz" else "gzip") in signal._filters
    got, failures = read_all([target])
    assert failures == []
    assert_same_reads(reads, got)
    assert all(Path(read.path).parent == (target if target.is_dir() else target.parent) for read in got)


def test_round_trip_keeps_unknown_metadata_unknown(tmp_path: Path):
    """None for acquisition start, flow cell and kit come back as None (pod5 stores the epoch and '')."""
    unknown = {"acquisition_start": None, "flow_cell_id": None, "sequencing_kit": None, "flow_cell_product_code": None}
    reads = [replace(read, **unknown) for read in random_reads(2, seed=5)]
    for target in (write_pod5(reads, tmp_path / "r.pod5"), write_fast5(reads, tmp_path / "r.fast5")):
        got, failures = read_all([target])
        assert failures == []
        assert_same_reads(reads, got)


def test_writers_refuse_what_they_cannot_store(tmp_path: Path):
    reads = random_reads(2, seed=1)
    with pytest.raises(ValueError, match="exactly one read"):
        write_fast5(reads, tmp_path / "two.fast5", layout="single")
    with pytest.raises(ValueError, match="int16"):
        write_fast5([replace(reads[0], signal=reads[0].signal.astype(np.float32))], tmp_path / "f.fast5")
    clash = replace(reads[1], run_id=reads[0].run_id, flow_cell_id="OTHER")
    with pytest.raises(ValueError, match="different run information"):
        write_pod5([reads[0], clash], tmp_path / "clash.pod5")
    write_pod5(reads, tmp_path / "once.pod5")
    with pytest.raises(FileExistsError):
        write_pod5(reads, tmp_path / "once.pod5")


def test_synthetic_multi_fast5_converts_with_pod5_tool(tmp_path: Path):
    """Our fast5 layout is one ONT's converter understands, and its pod5 reads back as the original reads."""
    reads = random_reads(4, seed=21, n_runs=2)
    fast5 = write_fast5(reads, tmp_path / "synthetic.fast5", compression="vbz")
    got, failures = read_all([pod5_convert(fast5, tmp_path / "synthetic.pod5")])
    assert failures == []
    assert_same_reads(reads, got)


# --- folders and selection ----------------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, list[Read]]]:
    """data/{a.fast5 (multi), b.pod5, notes.txt, sub/c.fast5 (single), sub/deeper/d.pod5}, and the reads of each."""
    root = tmp_path / "data"
    (root / "sub" / "deeper").mkdir(parents=True)
    reads = random_reads(7, seed=2)
    files = {"a.fast5": reads[0:3], "b.pod5": reads[3:5], "sub/c.fast5": reads[5:6], "sub/deeper/d.pod5": reads[6:7]}
    write_fast5(files["a.fast5"], root / "a.fast5")
    write_pod5(files["b.pod5"], root / "b.pod5")
    write_fast5(files["sub/c.fast5"], root / "sub" / "c.fast5", layout="single")
    write_pod5(files["sub/deeper/d.pod5"], root / "sub" / "deeper" / "d.pod5")
    (root / "notes.txt").write_text("not a read file\n")
    return root, files


def test_folder_discovery_recursive_in_sorted_file_order(tree):
    root, files = tree
    got, failures = read_all([root])
    assert failures == []
    # notes.txt found in a folder is skipped: reported and recorded, not a failure
    skipped = [(Path(f.path).name, f.reason) for f in open_reads([root]) if isinstance(f, Failure)]
    assert skipped == [("notes.txt", "skipped: not a read file (.txt)")]
    order = [str(Path(read.path).relative_to(root)) for read in got]
    assert list(dict.fromkeys(order)) == sorted(files)  # each file's reads together, files in sorted path order
    for name, reads in files.items():
        assert_same_reads(reads, [read for read in got if read.path == str(root / name)])
    again, _ = read_all([root])
    assert [(r.path, r.read_id) for r in again] == [(r.path, r.read_id) for r in got]


def test_folder_discovery_not_recursive(tree):
    root, files = tree
    got, failures = read_all([root], recursive=False)
    assert failures == []
    assert_same_reads(files["a.fast5"] + files["b.pod5"], got)


def test_a_file_given_twice_is_read_once(tree):
    root, files = tree
    pod5_file = root / "b.pod5"
    same_file = root / "sub" / ".." / "b.pod5"
    got, failures = read_all([pod5_file, root, same_file, pod5_file])
    assert failures == []
    assert_same_reads([read for reads in files.values() for read in reads], got)
    assert got[0].path == str(pod5_file)  # read where it was first named


def test_empty_folder_gives_a_warning_and_no_reads(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("nothing here\n")
    with caplog.at_level(logging.WARNING, logger="basecall.readers"):
        got, failures = read_all([tmp_path / "empty"])
    assert got == [] and failures == []
    assert str(tmp_path / "empty") in caplog.text


@pytest.mark.parametrize("fmt", ["pod5", "fast5-multi", "fast5-single"])
def test_read_ids_selects_only_those_reads(tmp_path: Path, fmt: str):
    reads = random_reads(5, seed=8)
    if fmt == "pod5":
        target = write_pod5(reads, tmp_path / "r.pod5")
    elif fmt == "fast5-multi":
        target = write_fast5(reads, tmp_path / "r.fast5", compression="vbz")
    else:
        target = tmp_path
        for i, read in enumerate(reads):
            write_fast5([read], tmp_path / f"{i}.fast5", layout="single")
    wanted = {reads[1].read_id, reads[3].read_id}
    got, failures = read_all([target], read_ids=wanted | {"00000000-0000-4000-8000-000000000000"})
    assert failures == []  # an id that is in no file is not an error
    assert_same_reads([reads[1], reads[3]], got)
    got, failures = read_all([target], read_ids=set())
    assert got == [] and failures == []


# --- bad input ----------------------------------------------------------------------------------------------------


def test_bad_files_give_failures_and_the_good_files_still_read(tmp_path: Path):
    good_reads = random_reads(6, seed=13)
    good_pod5 = write_pod5(good_reads[:3], tmp_path / "good.pod5")
    good_fast5 = write_fast5(good_reads[3:], tmp_path / "good.fast5")
    bad = {
        "missing": tmp_path / "missing.pod5",
        "txt": tmp_path / "notes.txt",
        "text fast5": tmp_path / "text.fast5",
        "truncated pod5": tmp_path / "truncated.pod5",
        "empty pod5": tmp_path / "empty.pod5",
        "hdf5 without reads": tmp_path / "noreads.fast5",
    }
    bad["txt"].write_text("some notes\n")
    bad["text fast5"].write_text("this is not HDF5\n")
    data = good_pod5.read_bytes()
    bad["truncated pod5"].write_bytes(data[: len(data) // 2])
    bad["empty pod5"].write_bytes(b"")
    with h5py.File(bad["hdf5 without reads"], "w") as handle:
        handle.create_group("something_else")

    paths = [bad["missing"], good_pod5, bad["txt"], bad["text fast5"], bad["truncated pod5"], good_fast5,
             bad["empty pod5"], bad["hdf5 without reads"]]  # fmt: skip
    got, failures = read_all(paths)
    assert_same_reads(good_reads, got)
    assert sorted(f.path for f in failures) == sorted(str(p) for p in bad.values())
    for failure in failures:
        assert failure.read_id is None
        message = failure.message()
        assert "\n" not in message and failure.path in message, message
    reasons = {Path(f.path).name: f.reason for f in failures}
    assert "no such file" in reasons["missing.pod5"]
    assert "unsupported file type '.txt'" in reasons["notes.txt"]
    assert "no reads" in reasons["noreads.fast5"]


def test_a_broken_read_fails_alone(tmp_path: Path):
    reads = random_reads(3, seed=17)
    path = write_fast5(reads, tmp_path / "r.fast5")
    with h5py.File(path, "a") as handle:
        del handle[f"read_{reads[1].read_id}/Raw/Signal"]
    got, failures = read_all([path])
    assert_same_reads([reads[0], reads[2]], got)
    assert [(f.path, f.read_id) for f in failures] == [(str(path), reads[1].read_id)]
    assert "\n" not in failures[0].message() and reads[1].read_id in failures[0].message()


# --- real files ---------------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_real_lambda_single_read_fast5():
    folder = shared_data("r941_lambda_marcpaga", "fast5")
    got, failures = read_all([folder])
    assert failures == []
    assert len(got) == 50
    assert sum(read.n_samples for read in got) == 3_979_791
    for read in got:
        assert Path(read.path).stem == read.read_id
        assert read.sample_rate_hz == 4000.0
        assert read.calibration.scale * 8192 == pytest.approx(1497.77, abs=0.01)
        assert read.calibration.offset == round(read.calibration.offset)
        assert read.signal.dtype == np.int16 and read.n_samples > 3000
        assert 60 < float(np.median(read.signal_pa)) < 120
        assert read.acquisition_start is not None and read.flow_cell_id and read.sequencing_kit == "sqk-lsk109"


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("parts", "n_reads", "codec"),
    [(("misc_formats", "batch0.fast5"), 8, str(VBZ_FILTER)), (("misc_formats", "multi_fast5_zip.fast5"), 10, "gzip")],
    ids=["batch0-vbz", "multi_fast5_zip-gzip"],
)
def test_real_multi_read_fast5(parts: tuple[str, ...], n_reads: int, codec: str):
    path = shared_data(*parts)
    with h5py.File(path) as handle:  # the file really uses the codec this test is about
        assert all(codec in group["Raw/Signal"]._filters for group in handle.values())
    got, failures = read_all([path])
    assert failures == [] and len(by_id(got)) == n_reads
    for read in got:
        assert read.sample_rate_hz == 4000.0 and read.n_samples > 0 and read.run_id and read.acquisition_start
        assert 40 < float(np.median(read.signal_pa)) < 140


@pytest.mark.shared_data
def test_real_taiyaki_single_and_multi_read_fast5_agree():
    single, failures = read_all([shared_data("r941_taiyaki", "reads")])
    assert failures == []
    multi, failures = read_all([shared_data("r941_taiyaki", "multireads")])
    assert failures == []
    assert len(single) == 5
    assert_same_reads(single, multi, scale_rtol=0.0)


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("parts", "n_reads", "sample_rate"),
    [(("r1041_remora", "can_reads.pod5"), 14, 4000.0), (("r1041_dorado", "duplex", "pod5", "duplex.pod5"), 4, 5000.0)],
    ids=["can_reads-4khz", "duplex-5khz"],
)
def test_real_pod5(parts: tuple[str, ...], n_reads: int, sample_rate: float):
    got, failures = read_all([shared_data(*parts)])
    assert failures == [] and len(by_id(got)) == n_reads
    for read in got:
        assert read.sample_rate_hz == sample_rate
        assert read.n_samples > 0 and read.run_id and read.flow_cell_id and read.sequencing_kit == "sqk-lsk114"
        assert read.acquisition_start is not None and read.acquisition_start.tzinfo is not None
        assert 40 < float(np.median(read.signal_pa)) < 140


@pytest.mark.shared_data
def test_real_pod5_read_ids_selection():
    path = shared_data("r1041_remora", "can_reads.pod5")
    everything, _ = read_all([path])
    wanted = [everything[3], everything[10]]
    got, failures = read_all([path], read_ids={read.read_id for read in wanted})
    assert failures == []
    assert_same_reads(wanted, got, scale_rtol=0.0)


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "parts",
    [
        ("misc_formats", "batch0.fast5"),
        ("misc_formats", "multi_fast5_zip.fast5"),
        ("r941_taiyaki", "multireads", "FAK40126_2fd3b110ca0d020049836a61f0dfb2b9983808f9_0.fast5"),
    ],
    ids=["batch0-vbz", "multi_fast5_zip-gzip", "taiyaki-multireads"],
)
def test_real_fast5_and_its_pod5_conversion_read_the_same(tmp_path: Path, parts: tuple[str, ...]):
    """ONT's converter and our fast5 reader agree on every read: signal and all metadata we carry."""
    fast5 = shared_data(*parts)
    from_fast5, failures = read_all([fast5])
    assert failures == []
    from_pod5, failures = read_all([pod5_convert(fast5, tmp_path / "converted.pod5")])
    assert failures == []
    assert_same_reads(from_fast5, from_pod5)


@pytest.mark.parametrize("bad_id", ["two words", "tab\there", "new\nline", "r\u00e9ad", ""])
def test_a_read_id_that_would_break_the_fastq_fails(tmp_path: Path, bad_id: str):
    good, bad = random_reads(2, seed=12)
    write_fast5([good, replace(bad, read_id=bad_id)], tmp_path / "r.fast5")
    got, failures = read_all([tmp_path / "r.fast5"])
    assert [read.read_id for read in got] == [good.read_id]
    assert len(failures) == 1 and "not one printable ASCII word" in failures[0].reason
    assert "\n" not in failures[0].message()
