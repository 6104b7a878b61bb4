"""Text outputs that only ever hold whole records on disk: a path, a path ending in .gz, or '-' for stdout.

Records are buffered and handed to the operating system in single writes of whole records (for .gz, compressed and
sync-flushed first), at most about a second apart. A run killed at any moment, even with SIGKILL, leaves a file whose
readable part ends at a record boundary: `basecall.writers.resume` keeps it and `--resume` carries on from there.
"""

from __future__ import annotations

import os
import sys
import time
import zlib

from basecall.errors import InputError

FLUSH_SECONDS = 1.0
FLUSH_BYTES = 1 << 20


class RecordFile:
    """Append-only text output written in whole records. `append=True` adds to an existing file (a new gzip member);
    `compress` defaults to the path ending in .gz."""

    def __init__(self, path: str, append: bool = False, compress: bool | None = None):
        self.path = path
        self._pending: list[str] = []
        self._pending_chars = 0
        self._last_flush = time.monotonic()
        compress = path.endswith(".gz") if compress is None else compress
        self._gzip = zlib.compressobj(4, zlib.DEFLATED, 31) if compress else None  # wbits 31: gzip framing
        if path == "-":
            self._fd, self._close_fd = sys.stdout.fileno(), False
            sys.stdout.flush()
            return
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        try:
            self._fd, self._close_fd = os.open(path, flags, 0o644), True
        except OSError as e:
            raise InputError(f"{path}: cannot write: {e.strerror or e}") from e

    def write(self, record: str) -> None:
        """Add one whole record (one or more lines, ending in a newline)."""
        self._pending.append(record)
        self._pending_chars += len(record)
        if self._pending_chars >= FLUSH_BYTES or time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self, finish: bool = False) -> None:
        data = "".join(self._pending).encode()
        self._pending, self._pending_chars, self._last_flush = [], 0, time.monotonic()
        if self._gzip is not None:
            data = self._gzip.compress(data) + self._gzip.flush(zlib.Z_FINISH if finish else zlib.Z_SYNC_FLUSH)
        view = memoryview(data)
        while view:  # one write for a regular file; a pipe may take it in parts
            view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        try:
            self.flush(finish=True)
        finally:
            if self._close_fd:
                os.close(self._fd)

    def __enter__(self) -> RecordFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
