"""Per-read summary TSV: one row for every read that went in (and every file that could not be read)."""

from __future__ import annotations

from basecall.records import CalledRead, Failure
from basecall.writers.output import RecordFile

COLUMNS = (
    "filename", "read_id", "run_id", "channel", "start_time", "duration", "num_samples",
    "sequence_length", "mean_qscore", "status", "reason",
)  # fmt: skip

HEADER = "\t".join(COLUMNS) + "\n"
CALLED, FILTERED, FAILED, SKIPPED = "called", "filtered", "failed", "skipped"


class SummaryWriter:
    def __init__(self, path: str, append: bool = False):
        self.path = path
        self._out = RecordFile(path, append)
        if not append:
            self._out.write(HEADER)

    def write(self, item: CalledRead | Failure, status: str, reason: str = "") -> None:
        read = item.read
        row: dict[str, object] = {"filename": item.path if isinstance(item, Failure) else read.path}
        if read is not None:
            row.update(
                read_id=read.read_id,
                run_id=read.run_id,
                channel=read.channel,
                start_time=read.start_time_iso,
            )
        elif isinstance(item, Failure):
            row["read_id"] = item.read_id or ""
        n_samples = item.n_samples
        if n_samples is not None and read is not None:
            row.update(num_samples=n_samples, duration=f"{n_samples / read.sample_rate_hz:.3f}")
        if isinstance(item, CalledRead):
            row.update(sequence_length=len(item.sequence), mean_qscore=f"{item.mean_qscore:.2f}")
        row.update(status=status, reason=reason)
        self._out.write("\t".join(_clean(str(row.get(c, ""))) for c in COLUMNS) + "\n")

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _clean(text: str) -> str:
    """No tabs or line breaks inside a field, and valid UTF-8: a file name that is not UTF-8 (and metadata read from
    it) arrives with surrogates, which are escaped (found by fuzzing: see fuzz/README.md)."""
    return " ".join(text.split()).encode(errors="backslashreplace").decode()
