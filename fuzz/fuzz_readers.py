"""Atheris (libFuzzer) harness for the readers: `open_reads` over any bytes in a read file yields only Reads and
Failures (the contract of `tests.test_fuzz.contract_problems`), never raises, never crashes, never hangs.

Run from the repository root (one worker; see fuzz/README.md):

    python fuzz/fuzz_readers.py -atheris_runs=3000
    python fuzz/fuzz_readers.py fuzz/crashes/<file>     # run one saved input again, in process
    python fuzz/fuzz_readers.py --triage fuzz/crashes/*  # each in a worker process: clean, or which fault

An input is one byte choosing the file type (.pod5, .fast5, .blow5, .slow5: byte % 4) followed by the file's bytes.
The seed corpus, written to a temporary folder (or to the corpus folder given, when it is empty), is the simulated
files of every kind in tests.test_fuzz.SEED_KINDS. A broken contract raises AssertionError; libFuzzer saves the input
that broke it (or crashed, or ran past -timeout seconds) under fuzz/crashes/new-*. Coverage guidance comes from the
Python code of basecall and pod5 (the C libraries below are not instrumented).
"""

from __future__ import annotations

import resource
import sys
import tempfile
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

if __name__ == "__main__" and sys.argv[1:2] != ["--triage"]:  # not in triage's worker processes
    with atheris.instrument_imports(include=["basecall", "pod5"]):  # imported here to be instrumented
        import pod5  # noqa: F401  (its Python layer drives pyarrow)

        import basecall.readers.fast5
        import basecall.readers.pod5
        import basecall.readers.slow5  # noqa: F401  (what open_reads runs)

from tests.test_fuzz import (
    SEED_KINDS,
    SUFFIXES,
    Crashed,
    Sandbox,
    contract_problems,
    saved_input,
    seed_reads,
    write_seed,
)

SCRATCH = Path(tempfile.mkdtemp(prefix="fuzz_readers."))


def encode(suffix: str, data: bytes) -> bytes:
    return bytes([SUFFIXES.index(suffix)]) + data


def test_one_input(data: bytes) -> None:
    if not data:
        return
    path = SCRATCH / f"case{SUFFIXES[data[0] % len(SUFFIXES)]}"
    path.write_bytes(data[1:])
    problems, items = contract_problems(path)
    if problems:
        raise AssertionError(f"{len(items)} items; " + "; ".join(problems))


def seed_corpus(folder: Path) -> None:
    reads = seed_reads()
    for kind in SEED_KINDS:
        made = write_seed(kind, Path(tempfile.mkdtemp(dir=SCRATCH)), reads)
        (folder / kind).write_bytes(encode(made.suffix, made.read_bytes()))


def triage(paths: list[str]) -> None:
    """Run saved inputs in a worker process, one line each: clean, the broken contract, or the crash and where."""
    box = Sandbox()
    for name in paths:
        try:
            problems, items = box.check(saved_input(Path(name).resolve(), SCRATCH))
            print(f"{name}: {'; '.join(problems) or f'clean ({len(items)} items)'}")
        except Crashed as crash:
            print(f"{name}: {crash.known or 'NEW'}: {crash}")
    box.close()


def main() -> None:
    if sys.argv[1:2] == ["--triage"]:
        return triage(sys.argv[2:])
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a runaway allocation fails here, not the machine
    args = [arg for arg in sys.argv[1:] if arg.startswith("-")]
    inputs = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    if not inputs:
        inputs = [tempfile.mkdtemp(prefix="corpus.", dir=SCRATCH)]
    if Path(inputs[0]).is_dir() and not any(Path(inputs[0]).iterdir()):  # a new corpus folder starts from the seeds
        seed_corpus(Path(inputs[0]))
    (ROOT / "fuzz" / "crashes").mkdir(exist_ok=True)
    defaults = ["-timeout=10", "-rss_limit_mb=3072", f"-artifact_prefix={ROOT / 'fuzz' / 'crashes'}/new-"]
    given = {arg.split("=")[0] for arg in args}
    argv = [sys.argv[0], *[d for d in defaults if d.split("=")[0] not in given], *args, *inputs]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
