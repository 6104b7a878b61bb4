"""Fuzzing the readers and the FASTQ / summary writers (hypothesis; the atheris harnesses in fuzz/ reuse these parts).

Readers: `open_reads` over any bytes in a read file (mutations of simulated pod5, fast5, blow5 and slow5 files, and
random bytes) yields only `Read`s and `Failure`s, never raises, and finishes. Each case runs in a separate worker
process (`Sandbox`), so a hang or a crash in the C libraries under h5py, pod5 and pyslow5 fails the test instead of
the test run. Writers: what `FastqWriter` writes parses back with dnaio to the same id, sequence and qualities,
every summary row has one field per column, and `recover` keeps exactly a prefix of the records of any truncation.
"""

from __future__ import annotations

import faulthandler
import linecache
import math
import multiprocessing
import os
import re
import resource
import signal
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import dnaio
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from basecall.errors import InputError
from basecall.readers import _read_id_problem
from basecall.readers.fast5 import checked
from basecall.records import Calibration, CalledRead, Failure, Read
from basecall.writers import write_results
from basecall.writers.bam import BamWriter
from basecall.writers.fastq import FastqWriter
from basecall.writers.resume import recover
from basecall.writers.summary import CALLED, COLUMNS, FILTERED, SummaryWriter

CRASHES = Path(__file__).resolve().parents[1] / "fuzz" / "crashes"

# --- seed files ---------------------------------------------------------------------------------------------------

SEED_KINDS = ("pod5", "fast5-multi-gzip", "fast5-multi-vbz", "fast5-single-gzip", "fast5-single-vbz",
              "blow5-zlib", "blow5-zstd", "slow5")  # fmt: skip


def seed_reads(n_reads: int = 3, seed: int = 0, max_samples: int = 400) -> list[Read]:
    """Simulated reads cut to `max_samples`, so most of a small file is structure and metadata, not signal."""
    from basecall.rawfiles import random_reads

    return [replace(read, signal=read.signal[:max_samples]) for read in random_reads(n_reads, seed=seed)]


def write_seed(kind: str, folder: Path, reads: list[Read]) -> Path:
    """One read file of `kind` (see SEED_KINDS) holding `reads` (single-read fast5: the first read only)."""
    from basecall.rawfiles import write_fast5, write_pod5

    fmt, _, variant = kind.partition("-")
    if fmt == "pod5":
        return write_pod5(reads, folder / "seed.pod5")
    if fmt == "fast5":
        layout, compression = variant.split("-")
        chosen = reads[:1] if layout == "single" else reads
        return write_fast5(chosen, folder / "seed.fast5", layout=layout, compression=compression)
    return write_slow5(reads, folder / f"seed.{fmt}", compression=variant or None)


def write_slow5(reads: list[Read], path: Path, compression: str | None = None) -> Path:
    """A slow5 (text) or blow5 file, through pyslow5; `compression` is blow5's record compression (zlib or zstd)."""
    import pyslow5

    options = {"rec_press": compression, "sig_press": "svb_zd"} if compression else {}
    handle = pyslow5.Open(str(path), "w", **options)
    header, end_reasons = handle.get_empty_header(aux=True)
    first = reads[0]
    header = {"run_id": first.run_id, "exp_start_time": first.acquisition_start.isoformat(),
              "flow_cell_id": first.flow_cell_id, "sequencing_kit": first.sequencing_kit}  # fmt: skip
    handle.write_header(header, end_reason_labels=end_reasons)
    for read in reads:
        record = {"read_id": read.read_id, "read_group": 0, "digitisation": 8192.0, "offset": read.calibration.offset,
                  "range": read.calibration.scale * 8192, "sampling_rate": read.sample_rate_hz,
                  "len_raw_signal": read.n_samples, "signal": read.signal}  # fmt: skip
        aux = {"channel_number": str(read.channel), "read_number": read.read_number, "start_time": read.start_sample,
               "median_before": 0.0, "start_mux": 1, "end_reason": 0}  # fmt: skip
        handle.write_record(record, aux)
    handle.close()
    return path


# --- mutations ----------------------------------------------------------------------------------------------------


def mutate(data: bytes, how: str, at: float, size: int, seed: int) -> bytes:
    """`data` truncated, overwritten with random bytes, bit-flipped or zero-filled at fraction `at` of its length
    (`size` bytes or bits), or replaced by `size` random bytes."""
    rng = np.random.default_rng(seed)
    start = min(int(len(data) * at), max(len(data) - 1, 0))
    out = bytearray(data)
    if how == "truncate":
        del out[start:]
    elif how == "overwrite":
        out[start : start + size] = rng.integers(0, 256, len(out[start : start + size]), dtype=np.uint8).tobytes()
    elif how == "bitflip":
        for position in rng.integers(0, len(out), size):
            out[position] ^= 1 << int(rng.integers(8))
    elif how == "zero":
        out[start : start + size] = bytes(len(out[start : start + size]))
    elif how == "random":
        out = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    else:
        raise ValueError(how)
    return bytes(out)


MUTATIONS = ("truncate", "overwrite", "bitflip", "zero", "random")
SUFFIXES = (".pod5", ".fast5", ".blow5", ".slow5")


# --- the readers' contract ----------------------------------------------------------------------------------------


def read_problems(read: Read, path: str) -> list[str]:
    """What is wrong with a Read that came out of `path`: a wrong type or a value the writers cannot use."""
    types = {
        "read_id": (str,), "run_id": (str,), "path": (str,), "channel": (int,), "start_sample": (int,),
        "read_number": (int, type(None)), "acquisition_start": (datetime, type(None)),
        "flow_cell_id": (str, type(None)), "sequencing_kit": (str, type(None)), "sample_rate_hz": (float,),
    }  # fmt: skip
    problems = [f"{name} is {type(getattr(read, name)).__name__}" for name, allowed in types.items()
                if not isinstance(getattr(read, name), allowed) or isinstance(getattr(read, name), bool)]  # fmt: skip
    signal = read.signal
    if not (isinstance(signal, np.ndarray) and signal.dtype == np.int16 and signal.ndim == 1):
        problems.append(f"signal is {type(signal).__name__} {getattr(signal, 'dtype', '')}")
    calibration = read.calibration
    if not (
        isinstance(calibration, Calibration) and all(type(v) is float for v in (calibration.offset, calibration.scale))
    ):
        problems.append(f"calibration is {calibration!r}")
    if problems:
        return problems
    if read.path != path:
        problems.append(f"path {read.path!r}, not {path!r}")
    if not (math.isfinite(read.sample_rate_hz) and read.sample_rate_hz > 0):
        problems.append(f"sample rate {read.sample_rate_hz}")
    for name in ("read_id", "run_id", "flow_cell_id", "sequencing_kit"):
        try:
            (getattr(read, name) or "").encode()
        except UnicodeEncodeError as e:
            problems.append(f"{name} is not UTF-8 text: {e}")
    try:
        _ = read.start_time_iso  # what the FASTQ and summary writers print
    except Exception as e:  # noqa: BLE001
        problems.append(f"start time cannot be computed: {type(e).__name__}: {e}")
    return problems


def contract_problems(path: Path) -> tuple[list[str], list[tuple[str, str | None]]]:
    """Read `path` with `open_reads`: what breaks the contract, and (kind, read id) of each item that came out."""
    from basecall.readers import open_reads

    problems: list[str] = []
    items: list[tuple[str, str | None]] = []
    try:
        for item in open_reads([path], isolate=False):
            if isinstance(item, Read):
                problems += [f"read {item.read_id!r}: {p}" for p in read_problems(item, str(path))]
                items.append(("read", item.read_id))
            elif isinstance(item, Failure):
                message = item.message()
                if "\n" in message or "\r" in message or str(path) not in message:
                    problems.append(f"failure message is not one line naming the file: {message!r}")
                items.append(("failure", item.read_id))
            else:
                problems.append(f"yielded a {type(item).__name__}")
    except Exception as e:  # noqa: BLE001 - the finding
        problems.append(f"raised {type(e).__name__}: {e}")
    if not items:
        problems.append("nothing came out: not a read, not a failure")
    return problems, items


# --- running each case in a worker process ------------------------------------------------------------------------


class Crashed(Exception):
    """The worker process died (a crash in C code) or did not answer in time (a hang). `where` is the innermost
    Python frame it was in (file:line in function: source), from faulthandler."""

    def __init__(self, message: str, where: str):
        super().__init__(f"{message}, in {where or 'an unknown place'}")
        self.where = where

    @property
    def known(self) -> str | None:
        """Which of the KNOWN_UNFIXED faults this is, if any."""
        return next((fault for fault, place in KNOWN_UNFIXED.items() if place in self.where), None)


KNOWN_UNFIXED = {  # faults in C code below the readers, that no reader code can prevent (fuzz/README.md): where
    "slow5lib crashes on a damaged record (svb-zd decoding, slow5 text parsing)": "for record in handle.seq_reads(",
    "HDF5 2.0 loops forever on a damaged global heap (vlen string attribute)": "h5py/_hl/attrs.py",
    "the VBZ HDF5 filter aborts or segfaults decoding a damaged signal chunk": "h5py/_hl/dataset.py",
}


def _serve(connection, memory_limit: int, trace_path: str) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))  # a huge allocation fails, not the machine
    trace = open(trace_path, "w")  # noqa: SIM115 - open for the life of the process
    faulthandler.enable(trace)  # where a crash happened
    faulthandler.register(signal.SIGUSR1, trace)  # where a hang is
    while True:
        path = connection.recv()
        connection.send(contract_problems(Path(path)))


def innermost_frame(trace: str) -> str:
    """'file:line in function: source' of the innermost frame of faulthandler's last traceback, or ''."""
    found = re.search(r'File "(.+)", line (\d+) in (\S+)', trace.rpartition("most recent call first):")[2])
    if not found:
        return ""
    path, line, function = found.groups()
    return f"{path}:{line} in {function}: {linecache.getline(path, int(line)).strip()}"


class Sandbox:
    """A worker process that reads files with `contract_problems`; a case that kills it or hangs raises Crashed.
    Memory is limited to `memory_limit` bytes, so a runaway allocation fails instead of starving the machine."""

    def __init__(self, timeout_s: float = 5.0, memory_limit: int = 4 << 30):
        self.timeout_s, self.memory_limit = timeout_s, memory_limit
        self._trace = Path(tempfile.mkdtemp()) / "faulthandler.txt"
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, self.memory_limit, str(self._trace)), daemon=True)
        self._process.start()

    def check(self, path: Path) -> tuple[list[str], list[tuple[str, str | None]]]:
        self._connection.send(str(path))
        try:
            if self._connection.poll(self.timeout_s):
                return self._connection.recv()
            os.kill(self._process.pid, signal.SIGUSR1)
            time.sleep(0.5)
            why = f"no answer in {self.timeout_s:g} s (hang)"
        except (EOFError, ConnectionResetError):  # the worker died
            self._process.join(5)
            why = f"worker died (exit code {self._process.exitcode})"
        self.close()
        where = innermost_frame(self._trace.read_text(errors="replace") if self._trace.exists() else "")
        self._start()
        raise Crashed(f"{path}: {why}", where)

    def close(self) -> None:
        self._process.kill()
        self._process.join()


# --- readers: damaged files ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox():
    box = Sandbox()
    yield box
    box.close()


class Seeds(dict):
    def __repr__(self) -> str:  # not the files' bytes in hypothesis' reports
        return f"Seeds({', '.join(self)})"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, bytes, list[str]]]:
    """kind → (file suffix, bytes, read ids) of a small file of each kind (three reads; single-read fast5: one)."""
    reads = seed_reads()
    folder = tmp_path_factory.mktemp("seeds")
    found = Seeds()
    for kind in SEED_KINDS:
        (folder / kind).mkdir()
        path = write_seed(kind, folder / kind, reads)
        found[kind] = (path.suffix, path.read_bytes(), [r.read_id for r in (reads[:1] if "single" in kind else reads)])
    return found


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cases")


def test_seed_files_read_back_whole(seeds, sandbox, cases):
    """The unmutated seeds hold the reads: so a mutation's Failures come from the damage, not the seed."""
    for kind, (suffix, data, read_ids) in seeds.items():
        path = cases / f"{kind}{suffix}"
        path.write_bytes(data)
        problems, items = sandbox.check(path)
        assert problems == [] and sorted(items) == sorted(("read", read_id) for read_id in read_ids), kind


@settings(
    max_examples=1000, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(SEED_KINDS),
    how=st.sampled_from(MUTATIONS),
    at=st.floats(0, 1),
    size=st.sampled_from([1, 4, 16, 256, 4096]),
    seed=st.integers(0, 2**32 - 1),
)
def test_damaged_files_give_reads_and_failures_only(seeds, sandbox, cases, kind, how, at, size, seed):
    """Deadline None: Sandbox limits each case to 5 s (a hang) and 4 GB (a runaway allocation)."""
    suffix, data, read_ids = seeds[kind]
    path = cases / f"case{suffix}"
    path.write_bytes(mutate(data, how, at, size, seed))
    try:
        problems, items = sandbox.check(path)
    except Crashed as crash:
        assume(not crash.known)  # below Python, listed in fuzz/README.md (the atheris runs count them)
        raise
    assert problems == []
    if not (how == "truncate" and kind == "slow5"):  # text slow5 has no end marker: cut at a line end, it is shorter
        assert ("failure", None) in items or len(items) >= len(read_ids), "reads lost without a failure"


def saved_input(name: str | Path, folder: Path) -> Path:
    """A saved fuzz input (in fuzz/crashes unless a path; fuzz_readers.py's format: a byte for the file type, then
    the file) written to `folder` as a file of that type."""
    data = (CRASHES / name).read_bytes()
    path = folder / f"{Path(name).name}{SUFFIXES[data[0] % len(SUFFIXES)]}"
    path.write_bytes(data[1:])
    return path


@pytest.mark.parametrize("name", sorted(p.name for p in CRASHES.glob("*")) if CRASHES.is_dir() else [])
def test_inputs_fuzzing_found(sandbox, cases, name: str):
    """Every input fuzzing found that broke the contract (fuzz/crashes, fuzz/README.md) now reads cleanly, except
    `unfixed-*`: faults in C code below the readers, which must still be the known fault (a library upgrade that
    fixes one is noticed: rename it `fixed-*`)."""
    path = saved_input(name, cases)
    if not name.startswith("unfixed-"):
        problems, items = sandbox.check(path)
        assert problems == [] and items
        return
    box = Sandbox(timeout_s=2)  # the known hang costs this much
    try:
        with pytest.raises(Crashed) as crash:
            box.check(path)
        assert crash.value.known, crash.value
    finally:
        box.close()


def test_empty_and_foreign_slow5_files_fail_without_crashing(sandbox, cases, seeds):
    """pyslow5.Open crashed the process on any file slow5lib cannot open, even an empty one."""
    for suffix in (".blow5", ".slow5"):
        for name, data in {"empty": b"", "text": b"not slow5\n", "pod5": seeds["pod5"][1], "bad": b"BLOW5"}.items():
            path = cases / f"{name}{suffix}"
            path.write_bytes(data)
            assert sandbox.check(path) == ([], [("failure", None)]), path


def test_blow5_declaring_huge_read_group_count_fails_fast(sandbox, cases, seeds):
    """slow5lib sets up every declared read group first: 2^28 groups in a 2 KB file took 47 s and 15 GB."""
    data = bytearray(seeds["blow5-zlib"][1])
    data[10:14] = (2**28 + 1).to_bytes(4, "little")
    path = cases / "groups.blow5"
    path.write_bytes(bytes(data))
    box = Sandbox(timeout_s=5, memory_limit=1 << 30)
    try:
        assert box.check(path) == ([], [("failure", None)])
    finally:
        box.close()


def test_slow5_cut_inside_a_record_is_a_failure_not_a_shorter_file(sandbox, cases, seeds):
    """pyslow5 stops at a record it cannot parse as if at the end of the file, only logging an error."""
    for kind in ("blow5-zlib", "slow5"):
        suffix, data, read_ids = seeds[kind]
        path = cases / f"cut{suffix}"
        path.write_bytes(data[: len(data) * 2 // 3])  # inside the last of three records of about the same size
        problems, items = sandbox.check(path)
        assert problems == []
        assert items[-1] == ("failure", None) and items[:-1] == [("read", i) for i in read_ids[: len(items) - 1]], kind


def test_files_without_reads_are_failures(sandbox, cases, seeds):
    """A file that holds no reads says so (fast5 always did), so an emptied file is never a silent success."""
    from basecall.rawfiles import write_pod5

    write_pod5([], cases / "none.pod5")
    header = [line for line in seeds["slow5"][1].split(b"\n") if line.startswith((b"#", b"@"))]
    (cases / "none.slow5").write_bytes(b"\n".join(header) + b"\n")
    for name in ("none.pod5", "none.slow5"):
        assert sandbox.check(cases / name) == ([], [("failure", None)]), name


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"sample_rate_hz": 0.0}, "impossible sample rate"),
        ({"sample_rate_hz": math.nan}, "impossible sample rate"),
        ({"start_sample": 2**63}, "impossible start time"),
        ({"run_id": "run\udcff"}, "not UTF-8 text"),
        ({"read_id": "r\u00e9ad"}, "not one printable ASCII word"),
        ({"signal": np.zeros((2, 3), np.int16)}, "dimensions"),
    ],
)
def test_checked_refuses_values_the_writers_cannot_use(change: dict, reason: str):
    with pytest.raises(ValueError, match=reason):
        checked(replace(seed_reads(1)[0], **change))
    checked(seed_reads(1)[0])  # and the unchanged read passes


# --- writers --------------------------------------------------------------------------------------------------------

ODD = "\t\n\r \x00\x0b\x1c\x7f\x85\xa0\u2028é漢=@+"  # whitespace and line breaks of every kind, controls, non-ASCII
ANY_TEXT = st.text(st.sampled_from(ODD) | st.characters(exclude_categories=()), max_size=12)  # surrogates too
READ_IDS = st.uuids().map(str) | st.text(st.sampled_from(ODD) | st.characters(), max_size=10)


@st.composite
def called_reads(draw, read_ids=READ_IDS, texts=ANY_TEXT) -> CalledRead:
    """A called read with any sequence and qualities (0-93) and any metadata a damaged file could give."""
    sequence = draw(st.text("ACGT", max_size=30))
    qualities = draw(st.lists(st.integers(0, 93), min_size=len(sequence), max_size=len(sequence)))
    start = st.datetimes(datetime(1970, 1, 2), datetime(2100, 1, 1), timezones=st.just(UTC))
    read = Read(
        read_id=draw(read_ids), signal=np.empty(0, np.int16), calibration=Calibration(0.0, 1.0),
        sample_rate_hz=draw(st.sampled_from([4000.0, 5000.0, 0.5])), run_id=draw(texts),
        channel=draw(st.integers(-5, 5000)), start_sample=draw(st.integers(0, 2**40)), path=draw(texts),
        read_number=draw(st.none() | st.integers(0, 2**32)), acquisition_start=draw(st.none() | start),
        flow_cell_id=draw(st.none() | texts), sequencing_kit=draw(st.none() | texts),
    )  # fmt: skip
    return CalledRead(read, draw(st.integers(0, 10**7)), sequence, np.array(qualities, np.uint8), np.zeros(0, np.uint8))


def reaches_the_writers(read: Read) -> bool:
    """What `open_reads` lets through: values the format readers accept (`checked`), then a valid read id."""
    try:
        checked(read)
    except ValueError:
        return False
    return _read_id_problem(read.read_id, {}) is None


def fastq_qualities(called: CalledRead) -> str:
    return "".join(chr(q + 33) for q in called.qualities)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(items=st.lists(called_reads(), max_size=5), model=ANY_TEXT, suffix=st.sampled_from([".fastq", ".fastq.gz"]))
def test_fastq_parses_back_to_what_was_written(items: list[CalledRead], model: str, suffix: str):
    """Whatever metadata the readers let through, dnaio reads back each id, sequence and qualities, and the header
    tags are key=value words of printable ASCII."""
    written = [called for called in items if reaches_the_writers(called.read)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"calls{suffix}"
        with FastqWriter(str(path), model) as fastq:
            for called in written:
                fastq.write(called)
        with dnaio.open(path) as records:
            parsed = [(record.id, record.sequence, record.qualities, record.name) for record in records]
    assert [p[:3] for p in parsed] == [(c.read.read_id, c.sequence, fastq_qualities(c)) for c in written]
    for *_, name in parsed:
        tags = [word.partition("=") for word in name.split(" ")[1:]]
        assert all(key and sep and value.isascii() and value.isprintable() for key, sep, value in tags), name
        assert len({key for key, _, _ in tags}) == len(tags)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(items=st.lists(called_reads(), max_size=5), model=ANY_TEXT, suffix=st.sampled_from([".bam", ".sam"]))
def test_bam_and_sam_parse_back_to_what_was_written(items: list[CalledRead], model: str, suffix: str):
    """Whatever metadata the readers let through, pysam reads back each id, sequence, qualities and the file name tag
    (printable ASCII, as SAM text fields must be)."""
    import pysam

    written = [called for called in items if reaches_the_writers(called.read) and called.sequence]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"calls{suffix}"
        with BamWriter(str(path), model, emit_moves=True) as out:
            for called in written:
                out.write(called)
        with pysam.AlignmentFile(str(path), check_sq=False) as records:
            parsed = list(records.fetch(until_eof=True))
    assert [(r.query_name, r.query_sequence, pysam.qualities_to_qualitystring(r.query_qualities)) for r in parsed] == [
        (c.read.read_id, c.sequence, fastq_qualities(c)) for c in written
    ]
    for record, called in zip(parsed, written):
        assert record.get_tag("fn").isascii() and record.get_tag("fn").isprintable()
        assert list(record.get_tag("mv")) == [called.stride, *called.moves.tolist()]


def passes_the_format_readers(called: CalledRead) -> bool:
    """`checked` passes the read (its read id aside: a Failure can carry a read whose id open_reads refused)."""
    try:
        checked(replace(called.read, read_id="r"))
    except ValueError:
        return False
    return True


SUMMARY_READS = called_reads().filter(passes_the_format_readers)


def failures(texts=ANY_TEXT):
    reads = SUMMARY_READS.map(lambda called: called.read)
    return st.builds(Failure, texts, texts, st.none() | texts, st.none() | reads, st.none() | st.integers(0, 10**7))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    items=st.lists(st.tuples(SUMMARY_READS | failures(), st.sampled_from(["called", "failed"]), ANY_TEXT), max_size=6)
)
def test_summary_has_one_field_per_column_on_every_line(items: list[tuple[CalledRead | Failure, str, str]]):
    """Any text in any field (file names that are not UTF-8 bring surrogates): one line per item, len(COLUMNS)
    fields per line, valid UTF-8, and the lines `recover` reads (newline="") are the same lines."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "summary.tsv"
        with SummaryWriter(str(path)) as summary:
            for item, status, reason in items:
                summary.write(item, status, reason)
        lines = path.read_bytes().decode("utf-8").split("\n")
        with path.open(newline="") as handle:
            assert [line.rstrip("\n") for line in handle] == lines[:-1]
    assert lines[-1] == "" and len(lines) == len(items) + 2
    assert all(len(line.split("\t")) == len(COLUMNS) for line in lines[:-1])
    assert [line.split("\t")[COLUMNS.index("status")] for line in lines[1:-1]] == [status for _, status, _ in items]


def complete_records(text: str) -> int:
    """How many FASTQ records of `text` are whole (the last one may lack only its final newline)."""
    lines = text.split("\n")
    return sum(1 for end in range(4, len(lines) + 1, 4) if end < len(lines) or len(lines[-1]) == len(lines[-3]))


ASCII_TEXT = st.text(st.characters(max_codepoint=127), max_size=12)


def written_reads() -> st.SearchStrategy[list[CalledRead]]:
    """1-8 called reads with distinct ids and ASCII metadata, each one the writers write."""
    reads = called_reads(read_ids=st.uuids().map(str), texts=ASCII_TEXT).filter(lambda c: reaches_the_writers(c.read))
    return st.lists(reads, min_size=1, max_size=8, unique_by=lambda c: c.read.read_id)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(
    items=written_reads(),
    fastq_cut=st.floats(0, 1),
    summary_cut=st.floats(0, 1),
    suffix=st.sampled_from([".fastq", ".fastq.gz"]),
)
def test_recover_keeps_a_prefix_of_any_truncation(
    items: list[CalledRead], fastq_cut: float, summary_cut: float, suffix: str
):
    """A run killed at any moment leaves the FASTQ and the summary cut anywhere; `recover` keeps a prefix of the
    records that both files agree on, the summary rows of exactly the reads it says are done, and (plain FASTQ) every
    record it can: all records that are whole and have their `called` row. (ASCII metadata: a summary cut inside a
    UTF-8 character is `test_recover_summary_cut_inside_a_character`.)"""
    with tempfile.TemporaryDirectory() as folder:
        fastq_path, summary_path = Path(folder) / f"calls{suffix}", Path(folder) / "calls.summary.tsv"
        with FastqWriter(str(fastq_path), "m") as fastq, SummaryWriter(str(summary_path)) as summary:
            write_results(items, fastq, summary, min_qscore=10)
        with dnaio.open(fastq_path) as records:
            original = [(r.name, r.sequence, r.qualities) for r in records]
        rows = summary_path.read_text().split("\n")[1:-1]
        for path, fraction in ((fastq_path, fastq_cut), (summary_path, summary_cut)):
            data = path.read_bytes()
            path.write_bytes(data[: int(len(data) * fraction)])
        cut_text = "" if suffix == ".fastq.gz" else fastq_path.read_text()
        whole_rows = summary_path.read_text().split("\n")[1:-1]  # a last line without its newline is cut short

        done = recover(str(fastq_path), str(summary_path))

        with dnaio.open(fastq_path) as records:
            kept = [(r.name, r.sequence, r.qualities) for r in records]
        kept_rows = summary_path.read_text().split("\n")
    assert kept == original[: len(kept)]
    row_of = {row.split("\t")[1]: row.split("\t")[COLUMNS.index("status")] for row in whole_rows}
    kept_ids = [name.split(" ")[0] for name, _, _ in kept]
    assert done == set(kept_ids) | {read_id for read_id, status in row_of.items() if status == FILTERED}
    assert kept_rows[0] == "\t".join(COLUMNS) and kept_rows[-1] == ""
    assert kept_rows[1:-1] == [row for row in rows[: len(whole_rows)] if row.split("\t")[1] in done]
    if suffix == ".fastq":
        n_called = sum(status == CALLED for status in row_of.values())
        assert len(kept) == min(complete_records(cut_text), n_called)


def sam_records(path: Path) -> list[tuple[str, str, str]]:
    """(read id, sequence, qualities) of each record of a SAM or BAM file."""
    import pysam

    with pysam.AlignmentFile(str(path), check_sq=False) as records:
        return [
            (r.query_name, r.query_sequence or "", pysam.qualities_to_qualitystring(r.query_qualities) or "")
            for r in records.fetch(until_eof=True)
        ]


@settings(max_examples=120, deadline=None, derandomize=True)
@given(
    items=written_reads(),
    output_cut=st.floats(0, 1),
    summary_cut=st.floats(0, 1),
    suffix=st.sampled_from([".bam", ".sam"]),
)
def test_recover_keeps_a_prefix_of_any_sam_or_bam_truncation(
    items: list[CalledRead], output_cut: float, summary_cut: float, suffix: str
):
    """`test_recover_keeps_a_prefix_of_any_truncation` for SAM and BAM outputs cut at any byte (a BAM killed mid-block,
    a SAM mid-line): `recover` keeps a prefix of the records, each with a whole `called` row in the summary, says
    exactly those (and the filtered reads) are done, keeps exactly their rows, and (SAM) every record it can."""
    with tempfile.TemporaryDirectory() as folder:
        out_path, summary_path = Path(folder) / f"calls{suffix}", Path(folder) / "calls.summary.tsv"
        with BamWriter(str(out_path), "m") as out, SummaryWriter(str(summary_path)) as summary:
            write_results(items, out, summary, min_qscore=10)
        original = sam_records(out_path)
        rows = summary_path.read_text().split("\n")[1:-1]
        for path, fraction in ((out_path, output_cut), (summary_path, summary_cut)):
            data = path.read_bytes()
            path.write_bytes(data[: int(len(data) * fraction)])
        cut_lines = out_path.read_text().split("\n")[:-1] if suffix == ".sam" else []  # whole lines only
        whole_rows = summary_path.read_text().split("\n")[1:-1]  # a last line without its newline is cut short

        done = recover(str(out_path), str(summary_path))

        kept = sam_records(out_path) if out_path.exists() else []  # a file cut inside its header is removed
        kept_rows = summary_path.read_text().split("\n")
    assert kept == original[: len(kept)]
    row_of = {row.split("\t")[1]: row.split("\t")[COLUMNS.index("status")] for row in whole_rows}
    kept_ids = [read_id for read_id, _, _ in kept]
    assert all(row_of.get(read_id) == CALLED for read_id in kept_ids), "a record without its called row was kept"
    assert done == set(kept_ids) | {read_id for read_id, status in row_of.items() if status == FILTERED}
    assert kept_rows[0] == "\t".join(COLUMNS) and kept_rows[-1] == ""
    assert kept_rows[1:-1] == [row for row in rows[: len(whole_rows)] if row.split("\t")[1] in done]
    if suffix == ".sam" and any(line.startswith("@PG") for line in cut_lines):  # the header is whole
        n_called = sum(status == CALLED for status in row_of.values())
        assert len(kept) == min(sum(not line.startswith("@") for line in cut_lines), n_called)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    fastq=st.binary(max_size=300) | ANY_TEXT.map(lambda text: ("@" + text + "\n").encode(errors="surrogatepass")),
    summary=ANY_TEXT.map(lambda text: text.encode(errors="replace")),  # "replace": st.characters() can give
    # surrogates under fuzz_one_input (hypothesis 6.170), as ANY_TEXT does on purpose
    suffix=st.sampled_from([".fastq", ".fastq.gz"]),
)
def test_recover_on_any_bytes_raises_nothing_but_input_error(fastq: bytes, summary: bytes, suffix: str):
    """Any FASTQ bytes (any summary text; a summary that is not UTF-8: the test below)."""
    with tempfile.TemporaryDirectory() as folder:
        fastq_path, summary_path = Path(folder) / f"calls{suffix}", Path(folder) / "calls.summary.tsv"
        fastq_path.write_bytes(fastq)
        summary_path.write_bytes(summary)
        try:
            recover(str(fastq_path), str(summary_path))
        except InputError as e:
            assert str(fastq_path.parent) in str(e)


def test_recover_summary_cut_inside_a_character(tmp_path: Path):
    """A summary cut inside a UTF-8 character (a partial write: disk full): the cut line is dropped, no error."""
    called = CalledRead(
        replace(seed_reads(1)[0], path="données.pod5"), 400, "ACGT", np.full(4, 20, np.uint8), np.zeros(0)
    )
    fastq_path, summary_path = tmp_path / "calls.fastq", tmp_path / "calls.summary.tsv"
    with FastqWriter(str(fastq_path), "m") as fastq, SummaryWriter(str(summary_path)) as summary:
        write_results([called], fastq, summary)
    data = summary_path.read_bytes()
    summary_path.write_bytes(data[: data.index("é".encode()) + 1])
    assert recover(str(fastq_path), str(summary_path)) == set()
