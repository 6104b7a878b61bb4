"""Nothing lost: bad files and reads are reported and recorded while the run goes on; killed runs resume exactly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from itertools import groupby
from pathlib import Path

import dnaio
import h5py
import numpy as np
import pod5
import pysam
import pytest
from click.testing import CliRunner

from basecall.cli import cli
from basecall.records import Calibration, Failure
from basecall.rawfiles import random_reads, write_fast5, write_pod5
from basecall.writers.summary import COLUMNS
from tests.conftest import shared_data


def summary_rows(path: Path) -> list[dict[str, str]]:
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    rows = [dict(zip(COLUMNS, line.split("\t"))) for line in lines[1:]]
    assert all(len(line.split("\t")) == len(COLUMNS) for line in lines)
    return rows


def fastq_records(path: Path) -> dict[str, tuple[str, str]]:
    """read id → (sequence, qualities), each id once (parsed by a real FASTQ parser, or pysam for SAM/BAM)."""
    if path.suffix in (".sam", ".bam"):
        with pysam.AlignmentFile(str(path), check_sq=False) as records:
            pairs = [
                (record.query_name, (record.query_sequence, pysam.qualities_to_qualitystring(record.query_qualities)))
                for record in records.fetch(until_eof=True)
            ]
    else:
        with dnaio.open(path) as records:
            pairs = [(record.id, (record.sequence, record.qualities)) for record in records]
    assert len({read_id for read_id, _ in pairs}) == len(pairs), "a read is in the FASTQ twice"
    return dict(pairs)


def cut(source: Path, target: Path, fraction: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def garble(source: Path, target: Path, at: float, n_bytes: int, seed: int) -> Path:
    data = bytearray(source.read_bytes())
    start = int(len(data) * at)
    data[start : start + n_bytes] = np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


@pytest.mark.shared_data
def test_a_folder_of_good_and_bad_files(tmp_path: Path, tiny_model_dir: Path) -> None:
    good_pod5, good_fast5 = shared_data("r1041_remora/can_reads.pod5"), shared_data("misc_formats/batch0.fast5")
    folder = tmp_path / "run"
    good, bad = folder / "a_good", folder / "b_bad"  # good files sort first: copies of their reads are duplicates
    (good / "sub").mkdir(parents=True)
    bad.mkdir()
    shutil.copy(good_pod5, good / "good.pod5")
    shutil.copy(good_fast5, good / "sub" / "good.fast5")
    bad_files = {  # each file's summary rows must all be `failed`, with a reason
        "truncated.pod5": cut(good_pod5, bad / "truncated.pod5", 0.5),
        "truncated.fast5": cut(good_fast5, bad / "truncated.fast5", 0.5),
        "garbled.pod5": garble(good_pod5, bad / "garbled.pod5", 0.5, 4096, seed=1),
        "garbled.fast5": garble(good_fast5, bad / "garbled.fast5", 0.3, 4096, seed=2),
        "empty.pod5": bad / "empty.pod5",
        "empty.fast5": bad / "empty.fast5",
        "text.fast5": bad / "text.fast5",
        "pod5_named.fast5": bad / "pod5_named.fast5",
        "duplicate.fast5": bad / "duplicate.fast5",
    }
    (bad / "empty.pod5").write_bytes(b"")
    (bad / "empty.fast5").write_bytes(b"")
    (bad / "text.fast5").write_text("read_id\tsequence\nnot\thdf5\n")
    shutil.copy(good_pod5, bad / "pod5_named.fast5")
    shutil.copy(good_fast5, bad / "duplicate.fast5")  # the same 8 read ids as a_good/sub/good.fast5
    (folder / "sequencing_summary.txt").write_text("not reads\n")
    (folder / "notes").write_text("no extension\n")
    # reads that load but cannot be used
    ok = random_reads(6, seed=3)
    bad_reads = {
        ok[0].read_id: ("no samples", replace(ok[0], signal=np.zeros(0, np.int16))),
        ok[1].read_id: ("too few samples", replace(ok[1], signal=ok[1].signal[:40])),
        ok[2].read_id: ("impossible calibration", replace(ok[2], calibration=Calibration(0.0, 0.0))),
        ok[3].read_id: ("NaN or infinite values after scaling", replace(ok[3], calibration=Calibration(3e38, 1e3))),
    }
    write_pod5([read for _, read in bad_reads.values()] + ok[4:], bad / "bad_reads.pod5")
    zero_digitisation = replace(ok[5], read_id="1d6cb3c1-5e3f-4a4e-9a0b-7f2b1f6a2c11")
    with h5py.File(write_fast5([zero_digitisation], bad / "zero_digitisation.fast5"), "r+") as handle:
        handle[f"read_{zero_digitisation.read_id}/channel_id"].attrs["digitisation"] = 0.0
    fifo = tmp_path / "fifo.pod5"
    os.mkfifo(fifo)

    out, summary = tmp_path / "calls.fastq", tmp_path / "calls.summary.tsv"
    args = ["basecaller", "-m", str(tiny_model_dir), str(folder), str(fifo), str(tmp_path / "missing.pod5")]
    result = CliRunner().invoke(cli, [*args, "-o", str(out)])
    assert result.exit_code == 3, result.output

    with pod5.Reader(good_pod5) as reader:
        good_ids = {str(r.read_id) for r in reader.reads()}
    good_ids |= {read.read_id for read in ok[4:]}
    rows = summary_rows(summary)
    called = {row["read_id"] for row in rows if row["status"] == "called"}
    filtered = {row["read_id"] for row in rows if row["status"] == "filtered"}
    fastq_ids = set(fastq_records(out))
    assert fastq_ids == called
    batch0_ids = {row["read_id"] for row in rows if row["filename"].endswith("sub/good.fast5")}
    assert len(batch0_ids) == 8
    assert called | filtered == good_ids | batch0_ids  # every good read, exactly once (fastq_records checks once)

    by_file: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_file.setdefault(Path(row["filename"]).name, []).append(row)
    for name in bad_files:
        assert by_file[name] and all(row["status"] == "failed" and row["reason"] for row in by_file[name]), name
    for name in ("truncated.fast5", "empty.pod5", "empty.fast5", "text.fast5", "pod5_named.fast5"):
        assert [row["read_id"] for row in by_file[name]] == [""], name  # one row for the whole file
    assert {row["read_id"] for row in by_file["duplicate.fast5"]} == batch0_ids
    assert all("duplicate read id: already read from" in row["reason"] for row in by_file["duplicate.fast5"])
    reasons = {row["read_id"]: row["reason"] for row in by_file["bad_reads.pod5"] if row["status"] == "failed"}
    for read_id, (reason, _) in bad_reads.items():
        assert reason in reasons[read_id], (reason, reasons.get(read_id))
    assert "impossible calibration" in by_file["zero_digitisation.fast5"][0]["reason"]
    assert by_file["fifo.pod5"][0]["reason"] == "not a regular file or folder"
    assert by_file["missing.pod5"][0]["reason"] == "no such file or folder"
    assert {row["status"] for row in by_file["sequencing_summary.txt"] + by_file["notes"]} == {"skipped"}

    # one stderr line per failure, naming the file (and the read); skipped files are not errors
    errors = [line for line in result.output.splitlines() if line.startswith("basecall: ERROR:")]
    n_failed = sum(row["status"] == "failed" for row in rows)
    assert len(errors) == n_failed
    for row in (row for row in rows if row["status"] == "failed"):
        assert any(row["filename"] in line and row["read_id"] in line for line in errors), row


def test_strict_stops_at_the_first_failure(tmp_path: Path, tiny_model_dir: Path) -> None:
    reads = random_reads(3, seed=4)
    folder = tmp_path / "reads"
    folder.mkdir()
    write_pod5(reads[:1], folder / "a.pod5")
    (folder / "b.pod5").write_bytes(b"garbage")
    write_pod5(reads[1:], folder / "c.pod5")
    out = tmp_path / "calls.fastq"
    args = ["basecaller", "-m", str(tiny_model_dir), str(folder), "-o", str(out), "-q"]
    strict = CliRunner().invoke(cli, [*args, "--strict"])
    assert strict.exit_code == 3
    assert "b.pod5" in strict.output and "--strict" in strict.output
    rows = summary_rows(tmp_path / "calls.summary.tsv")
    assert [row["status"] for row in rows] == ["called", "failed"]  # stopped before c.pod5
    assert set(fastq_records(out)) == {reads[0].read_id}
    relaxed = CliRunner().invoke(cli, args)
    assert relaxed.exit_code == 3
    assert [row["status"] for row in summary_rows(tmp_path / "calls.summary.tsv")] == ["called", "failed", "called", "called"]


# ---------------------------------------------------------------------------------------------------- kill and resume


_children: list[subprocess.Popen] = []  # runs started by run_basecaller, stopped by _no_run_left_behind


def run_basecaller(model: Path, inputs: list[str], out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "basecall", "basecaller", "-m", str(model), *inputs, "-o", str(out), "-q", *extra]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint
    )
    _children.append(process)
    return process


@pytest.fixture(autouse=True)
def _no_run_left_behind() -> Iterator[None]:
    """A test that fails while its run goes on (an assertion, a wait that timed out) must not leave the run behind,
    nor its stderr pipe unread: one such run was found alive 30 minutes after its test."""
    yield
    while _children:
        process = _children.pop()
        if process.poll() is None:
            process.kill()
        process.communicate()


def _default_sigint() -> None:
    """Ctrl-C must reach the run even when these tests were started in the background of a shell (which makes its
    children ignore SIGINT, and Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_records(out: Path, process: subprocess.Popen, at_least: int) -> None:
    """Wait until `out` holds at least `at_least` bytes (or the process ends)."""
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if out.exists() and out.stat().st_size >= at_least:
            return
        time.sleep(0.02)


@pytest.fixture(scope="module")
def many_reads(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """120 simulated reads in 4 files (pod5 and fast5), so a run lasts long enough to be killed part way."""
    folder = tmp_path_factory.mktemp("many")
    reads = random_reads(120, seed=21)
    for i in range(4):
        part = reads[i * 30 : (i + 1) * 30]
        if i % 2:
            write_fast5(part, folder / f"part{i}.fast5", compression="vbz")
        else:
            write_pod5(part, folder / f"part{i}.pod5")
    return [str(folder)]


@pytest.fixture(scope="module")
def uninterrupted(many_reads: list[str], calling_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The records of a run that was not stopped: calls of a trained model, each read's own (`calling_model_dir`), so
    a resumed run that pairs a record with another read, or keeps a stale one, differs from them."""
    out = tmp_path_factory.mktemp("whole") / "calls.fastq"
    process = run_basecaller(calling_model_dir, many_reads, out)
    assert process.wait() == 0, process.stderr.read()
    rows = summary_rows(out.with_name("calls.summary.tsv"))
    records = fastq_records(out)
    assert len({sequence for sequence, _ in records.values()}) == len(records) == 120  # every call its own
    return {"fastq": records, "summary": sorted((row["read_id"], row["status"]) for row in rows)}


@pytest.mark.parametrize(
    "suffix, kill_after_bytes",  # bytes on disk when killed; None: after the run has finished
    [
        (".fastq", 0), (".fastq", 20_000), (".fastq.gz", 1), (".fastq.gz", 20_000), (".fastq.gz", None),
        (".bam", 0), (".bam", 20_000), (".bam", None), (".sam", 20_000),
    ],
)  # fmt: skip
def test_sigkill_then_resume_gives_the_uninterrupted_read_set(
    tmp_path: Path, many_reads: list[str], calling_model_dir: Path, uninterrupted: dict, suffix: str,
    kill_after_bytes: int | None,
) -> None:  # fmt: skip
    out = tmp_path / f"calls{suffix}"
    process = run_basecaller(calling_model_dir, many_reads, out)
    if kill_after_bytes is None:
        assert process.wait() == 0
    else:
        wait_for_records(out, process, kill_after_bytes)
        process.send_signal(signal.SIGKILL)
        process.wait()
    resumed = run_basecaller(calling_model_dir, many_reads, out, "--resume")
    assert resumed.wait() == 0, resumed.stderr.read()
    assert fastq_records(out) == uninterrupted["fastq"]  # same read ids, each once, same sequences and qualities
    rows = summary_rows(tmp_path / "calls.summary.tsv")
    assert sorted((row["read_id"], row["status"]) for row in rows) == uninterrupted["summary"]


@pytest.mark.parametrize("suffix", [".fastq.gz", ".bam"])
def test_ctrl_c_exits_130_and_resumes(
    tmp_path: Path, many_reads: list[str], calling_model_dir: Path, uninterrupted: dict, suffix: str
) -> None:
    out = tmp_path / f"calls{suffix}"
    process = run_basecaller(calling_model_dir, many_reads, out, "--batch-size", "1")  # slower: Ctrl-C lands mid-run
    header_bytes = len("\t".join(COLUMNS)) + 1
    wait_for_records(tmp_path / "calls.summary.tsv", process, header_bytes + 1)  # a first read is done (a BAM only
    process.send_signal(signal.SIGINT)  # shows bytes once a compressed block fills, so its size says nothing yet)
    assert process.wait(timeout=60) == 130
    assert "--resume" in process.stderr.read()
    partial = fastq_records(out)
    assert partial and len(partial) < len(uninterrupted["fastq"])  # stopped part way, with whole records only
    assert all(uninterrupted["fastq"][read_id] == record for read_id, record in partial.items())
    resumed = run_basecaller(calling_model_dir, many_reads, out, "--resume")
    assert resumed.wait() == 0
    assert fastq_records(out) == uninterrupted["fastq"]


def test_resume_needs_an_output_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["basecaller", "-m", str(tiny_model_dir), str(tmp_path), "--resume"])
    assert result.exit_code == 2 and "--resume needs an output file" in result.output


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the signal masks from /proc (Linux)")
def test_reader_workers_leave_ctrl_c_to_the_run() -> None:
    """Ctrl-C in a terminal reaches the whole process group: a reader worker must not take it, not even while it
    starts (one interrupted in its imports printed a traceback); the run stops its workers itself. In a fresh process,
    as a run is: the first worker also starts multiprocessing's resource tracker, which unblocked SIGINT for it."""
    code = (
        "import re; from basecall.readers.worker import _Worker\n"
        "workers = [_Worker(None), _Worker(None)]\n"
        "for w in workers: print(re.search(r'SigBlk:\\s*(\\w+)', open(f'/proc/{w.process.pid}/status').read())[1])\n"
        "for w in workers: w.stop()"
    )
    masks = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert len(masks) == 2 and all(int(mask, 16) & (1 << (signal.SIGINT - 1)) for mask in masks)


@pytest.mark.parametrize("processes", [1, 3])
def test_crashes_and_hangs_in_c_libraries_cost_one_file(tmp_path: Path, processes: int) -> None:
    """The damaged files fuzzing found that crash slow5lib (SIGSEGV, SIGABRT) or hang HDF5 (fuzz/crashes/unfixed-*):
    read in a worker process, each becomes one failed file and the files after it are still read, in file order,
    however many files are read at once."""
    from basecall.readers import find_read_files
    from basecall.readers.worker import read_isolated

    crashes = Path(__file__).resolve().parents[1] / "fuzz" / "crashes"
    suffixes = [".pod5", ".fast5", ".blow5", ".slow5"]  # the first byte of a saved input picks the file type
    for saved in sorted(crashes.glob("unfixed-*")):
        data = saved.read_bytes()
        (tmp_path / (saved.name + suffixes[data[0] % 4])).write_bytes(data[1:])
    good = random_reads(3, seed=30)
    write_pod5(good, tmp_path / "zz_good.pod5")
    first = random_reads(2, seed=31)
    write_pod5(first, tmp_path / "a_good.pod5")
    files = list(find_read_files([tmp_path]))
    items = list(read_isolated(files, None, timeout_s=5, processes=processes))
    names = [Path(item.path).name for item in items]
    assert [name for name, _ in groupby(names)] == [file.name for file in files]  # in file order, each file's together
    assert [item.read_id for item in items[:2]] == [read.read_id for read in first]
    failures = {Path(item.path).name: item.reason for item in items if isinstance(item, Failure)}
    assert [item.read_id for item in items if not isinstance(item, Failure) and "zz_good" in item.path] == [
        read.read_id for read in good
    ]
    assert "crashed in a C library (SIGSEGV)" in failures["unfixed-blow5-svb-decode-segfault.blow5"]
    assert "crashed in a C library (SIGABRT)" in failures["unfixed-slow5-text-heap-corruption.slow5"]
    assert "hung in a C library: nothing for 5 s" in failures["unfixed-fast5-hdf5-global-heap-hang.fast5"]
