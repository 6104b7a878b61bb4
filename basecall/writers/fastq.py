"""FASTQ output: a path, a path ending in .gz, or '-' for stdout (see `basecall.writers.output`)."""

from __future__ import annotations

from basecall.records import CalledRead
from basecall.sequence import quality_text
from basecall.writers.output import RecordFile


def format_fastq(header: str, sequence: str, quality: str) -> str:
    """One FASTQ record from its header line (without the '@'), bases and quality line (Phred+33)."""
    return f"@{header}\n{sequence}\n+\n{quality}\n"


def fastq_record(called: CalledRead, model_name: str) -> str:
    """One FASTQ record: ``@read_id key=value ...``, sequence, ``+``, Phred+33 qualities."""
    read = called.read
    tags = {
        "runid": read.run_id,
        "read": read.read_number,
        "ch": read.channel,
        "start_time": read.start_time_iso,
        "flow_cell_id": read.flow_cell_id,
        "model": model_name,
        "mean_qscore": f"{called.mean_qscore:.2f}",
        "samples": called.n_samples,
    }
    words = {key: printable_word(value) for key, value in tags.items() if value is not None}
    header = " ".join([read.read_id] + [f"{key}={word}" for key, word in words.items() if word])
    return format_fastq(header, called.sequence, quality_text(called.qualities))


def printable_word(value: object) -> str:
    """A tag value as one word of printable ASCII (what FASTQ parsers accept): whitespace runs become '_', other
    characters are backslash-escaped. Metadata from files can hold anything (found by fuzzing: see fuzz/README.md)."""
    text = "_".join(str(value).split())
    if text.isascii() and text.isprintable():  # nearly always: no per-character work
        return text
    return "".join(c if c.isascii() and c.isprintable() else ascii(c)[1:-1] for c in text)


class FastqWriter:
    def __init__(self, path: str, model_name: str, append: bool = False):
        self.path = path
        self.model_name = model_name
        self._out = RecordFile(path, append)

    def write(self, called: CalledRead) -> None:
        self._out.write(fastq_record(called, self.model_name))

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> FastqWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
