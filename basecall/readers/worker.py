"""Read files in a worker process, so a crash or hang inside a C library (HDF5, VBZ, slow5lib) costs one file.

Fuzzing found damaged files that make slow5lib segfault or corrupt its heap and HDF5 loop forever (fuzz/README.md);
no Python code can catch those. The worker reads one file at a time and sends each Read (or Failure) back through
a pipe. If it dies, the rest of that file is one Failure naming the signal; if it sends nothing for `timeout_s`, it
is killed and the file fails as hung. A new worker then carries on with the next file.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

from basecall.records import Failure, Read

_DONE = "done"
HANG_SECONDS = 300.0  # nothing from the worker for this long: the file is declared hung


def _serve(connection, read_ids: Collection[str] | None) -> None:
    from basecall.readers import read_file

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops this worker
    try:
        while True:
            path = connection.recv()
            for item in read_file(Path(path), read_ids):
                connection.send(item)
            connection.send(_DONE)
    except (EOFError, BrokenPipeError):
        return  # the parent has gone


class _Worker:
    def __init__(self, read_ids: Collection[str] | None):
        context = multiprocessing.get_context("spawn")  # no fork: the parent has threads and torch
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, read_ids), daemon=True, name="basecall-reader")
        self.process.start()
        child.close()

    def stop(self) -> None:
        self.process.kill()
        self.process.join()
        self.connection.close()


def read_isolated(
    files: Iterable[Path | Failure], read_ids: Collection[str] | None, timeout_s: float = HANG_SECONDS
) -> Iterator[Read | Failure]:
    """`read_file` for each file, in a worker process; Failures in `files` pass through."""
    worker: _Worker | None = None
    try:
        for file in files:
            if isinstance(file, Failure):
                yield file
                continue
            worker = worker or _Worker(read_ids)
            worker.connection.send(str(file))
            n_reads = 0
            while True:
                item, problem = _receive(worker, timeout_s)
                if problem is not None:
                    worker.stop()
                    worker = None
                    yield Failure(str(file), f"{problem} (after {n_reads} reads of this file)" if n_reads else problem)
                    break
                if item == _DONE:
                    break
                n_reads += isinstance(item, Read)
                yield item
    finally:
        if worker is not None:
            worker.stop()


def _receive(worker: _Worker, timeout_s: float) -> tuple[object, str | None]:
    """(what the worker sent, None), or (None, why it never will)."""
    if not worker.connection.poll(timeout_s):
        return None, f"the reader hung in a C library: nothing for {timeout_s:g} s (damaged file?)"
    try:
        return worker.connection.recv(), None
    except Exception:  # noqa: BLE001 - the pipe closed, maybe mid-message: the worker died
        worker.process.join(5)
    code = worker.process.exitcode
    if code is not None and code < 0:
        return None, f"the reader crashed in a C library ({signal.Signals(-code).name}): the file is damaged"
    return None, f"the reader process ended unexpectedly (exit status {code})"
