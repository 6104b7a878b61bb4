"""Unaligned SAM/BAM output (by the path's suffix), with Dorado's read tags, written through pysam.

Each read is an unmapped record (flag 4) with its sequence and qualities and the tags
  qs:f mean qscore · du:f duration (s) · ns:i samples · ts:i samples trimmed from the start (0) · ch:i channel ·
  rn:i read number · st:Z start time (ISO 8601 UTC) · fn:Z file name
and, with `emit_moves`, the move table mv:B:c (the model stride, then one 0/1 per model timestep: 1 where a base
starts), as Remora and Dorado's tools read it. There is no read group (RG): the header is written before the run ids
are known; the summary carries them.

A BAM is compressed in blocks: a run killed with SIGKILL leaves a file whose last block is cut short, and
`basecall.writers.resume` keeps every whole record before it. With --resume the kept records are copied into the new
file first (pysam cannot append to a BAM).
"""

from __future__ import annotations

import array
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from basecall import __version__
from basecall.errors import InputError
from basecall.records import CalledRead
from basecall.writers.fastq import printable_word

if TYPE_CHECKING:
    import pysam

SUFFIXES = (".bam", ".sam")


def is_sam_or_bam(path: str) -> bool:
    return path.endswith(SUFFIXES)


def write_mode(path: str) -> str:
    """pysam's mode for writing `path`: compressed BAM, or SAM text."""
    return "wb" if path.endswith(".bam") else "w"


def header(model_name: str) -> pysam.AlignmentHeader:
    import pysam  # here, not at the top: the CLI checks suffixes before loading anything heavy

    command = " ".join(printable_word(word) for word in ["basecall", *sys.argv[1:]])  # no tab may reach the header
    program = {"ID": "basecall", "PN": "basecall", "VN": __version__, "CL": command}
    program["DS"] = f"model={printable_word(model_name)}"
    return pysam.AlignmentHeader.from_dict({"HD": {"VN": "1.6", "SO": "unknown"}, "PG": [program]})


def bam_record(called: CalledRead, head: pysam.AlignmentHeader, emit_moves: bool) -> pysam.AlignedSegment:
    import pysam

    read = called.read
    record = pysam.AlignedSegment(head)
    record.query_name = read.read_id
    record.flag = 4  # unmapped
    record.query_sequence = called.sequence
    record.query_qualities = array.array("B", called.qualities.tobytes())
    record.set_tag("qs", round(called.mean_qscore, 3), "f")
    record.set_tag("du", round(called.n_samples / read.sample_rate_hz, 4), "f")
    record.set_tag("fn", printable_word(Path(read.path).name), "Z")  # SAM text fields are printable ASCII
    if read.start_time_iso:
        record.set_tag("st", read.start_time_iso, "Z")
    integers = {"ns": called.n_samples, "ts": 0, "ch": read.channel, "rn": read.read_number}
    for tag, value in integers.items():
        if value is not None and -(2**31) <= value < 2**32:  # what BAM can hold (pysam picks the type)
            record.set_tag(tag, value)
    if emit_moves:  # (1 + n_timesteps,) the stride, then the moves
        record.set_tag("mv", array.array("b", [called.stride, *called.moves.tolist()]))
    return record


class BamWriter:
    """Unaligned BAM (or SAM, for a .sam path) of the called reads. `append=True` keeps the records already in
    `path` (as left by `basecall.writers.resume`), copying them into the new file first."""

    def __init__(self, path: str, model_name: str, append: bool = False, emit_moves: bool = False):
        import pysam

        self.path = path
        self.emit_moves = emit_moves
        self._header = header(model_name)
        earlier = Path(path).with_name(f".{Path(path).name}.earlier-{os.getpid()}")
        if append and Path(path).exists():
            os.replace(path, earlier)
        try:
            self._out = pysam.AlignmentFile(path, write_mode(path), header=self._header)
        except OSError as e:
            raise InputError(f"{path}: cannot write: {e.strerror or e}") from e
        if earlier.exists():
            with pysam.AlignmentFile(str(earlier), check_sq=False) as kept:
                for record in kept.fetch(until_eof=True):
                    self._out.write(record)
            earlier.unlink()

    def write(self, called: CalledRead) -> None:
        self._out.write(bam_record(called, self._header, self.emit_moves))

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> BamWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
