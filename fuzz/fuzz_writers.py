"""Atheris (libFuzzer) harness for the FASTQ and summary writers and `recover`: the hypothesis properties of
tests/test_fuzz.py, with atheris choosing the examples (hypothesis' `fuzz_one_input`: the input bytes drive the
strategies, so every input is a valid example and coverage of basecall.writers guides the search).

Run from the repository root (see fuzz/README.md):

    python fuzz/fuzz_writers.py -atheris_runs=5000

The first input byte picks the property (byte % 4, in the order of PROPERTIES); the rest drives its strategies.
A broken property raises its AssertionError; libFuzzer saves the input under fuzz/crashes/new-writers-*.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["basecall"]):
    from tests import test_fuzz

PROPERTIES = (
    test_fuzz.test_fastq_parses_back_to_what_was_written,
    test_fuzz.test_summary_has_one_field_per_column_on_every_line,
    test_fuzz.test_recover_keeps_a_prefix_of_any_truncation,
    test_fuzz.test_recover_on_any_bytes_raises_nothing_but_input_error,
)


def test_one_input(data: bytes) -> None:
    if data:
        PROPERTIES[data[0] % len(PROPERTIES)].hypothesis.fuzz_one_input(data[1:])


def main() -> None:
    args = [arg for arg in sys.argv[1:] if arg.startswith("-")]
    inputs = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    if not inputs:  # seeds: a few bytes per property, so it starts from small examples of each
        corpus = Path(tempfile.mkdtemp(prefix="fuzz_writers.corpus."))
        for index in range(len(PROPERTIES)):
            (corpus / f"seed{index}").write_bytes(bytes([index]) + bytes(64))
        inputs = [str(corpus)]
    (ROOT / "fuzz" / "crashes").mkdir(exist_ok=True)
    defaults = ["-timeout=30", "-max_len=4096", f"-artifact_prefix={ROOT / 'fuzz' / 'crashes'}/new-writers-"]
    given = {arg.split("=")[0] for arg in args}
    argv = [sys.argv[0], *[d for d in defaults if d.split("=")[0] not in given], *args, *inputs]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
