"""Read files in a worker process, so a crash or hang inside a C library (HDF5, VBZ, slow5lib) costs one file.

Fuzzing found damaged files that make slow5lib segfault or corrupt its heap and HDF5 loop forever (fuzz/README.md);
no Python code can catch those. A worker reads one file at a time and sends each Read (or Failure) back through
a pipe. If it dies, the rest of that file is one Failure naming the signal; if it sends nothing for `timeout_s`, it
is killed and the file fails as hung. A new worker then carries on with the next file. Several workers can read
several files at once (a GPU run needs more than one core's worth of reading); their reads still come out in file
order. What a worker logs (`basecall.*`) is sent back too and logged by the parent.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from multiprocessing import resource_tracker
from multiprocessing.connection import wait
from pathlib import Path

from basecall.records import Failure, Read

_DONE = "done"
HANG_SECONDS = 300.0  # nothing from the worker for this long: the file is declared hung


def _serve(connection, read_ids: Collection[str] | None, log_level: int) -> None:
    from basecall.readers import read_file

    _forward_logs(connection, log_level)
    try:
        while True:
            path = connection.recv()
            for item in read_file(Path(path), read_ids):
                connection.send(item)
            connection.send(_DONE)
    except (EOFError, ConnectionError):  # ConnectionError: BrokenPipeError, or ConnectionResetError mid-message
        return  # the parent has gone


class _LogSender(logging.Handler):
    """Sends each log record, its message formatted, to the parent."""

    def __init__(self, connection):
        super().__init__()
        self.connection = connection

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args, record.exc_info, record.exc_text = record.getMessage(), None, None, None
        self.connection.send(record)


def _forward_logs(connection, level: int) -> None:
    """In a worker: send what `basecall.*` logs at `level` (the parent's) or above to the parent."""
    root = logging.getLogger("basecall")
    root.handlers[:] = [_LogSender(connection)]
    root.setLevel(level)
    root.propagate = False


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread, so a process started here inherits it blocked."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _Worker:
    def __init__(self, read_ids: Collection[str] | None):
        context = multiprocessing.get_context("spawn")  # no fork: the parent has threads and torch
        self.connection, child = context.Pipe()
        level = logging.getLogger("basecall").getEffectiveLevel()
        self.process = context.Process(
            target=_serve, args=(child, read_ids, level), daemon=True, name="basecall-reader"
        )
        resource_tracker.ensure_running()  # now: started inside start(), it would unblock SIGINT there
        with _sigint_blocked():  # Ctrl-C (sent to the whole process group) is the parent's to handle, from the start:
            self.process.start()  # a worker interrupted while it imports would print a traceback; the parent stops it
        child.close()

    def stop(self) -> None:
        self.process.kill()
        self.process.join()
        self.connection.close()


def read_isolated(
    files: Iterable[Path | Failure],
    read_ids: Collection[str] | None,
    timeout_s: float = HANG_SECONDS,
    processes: int = 1,
) -> Iterator[Read | Failure]:
    """`read_file` for each file in worker processes, `processes` files at once, results in file order; Failures in
    `files` pass through.

    The file whose reads are being handed on (the head) is read without limit; the others read ahead until they hold
    `READ_AHEAD_SAMPLES` each, so memory stays bounded. A worker is declared hung when the head has sent nothing for
    `timeout_s` since it became the head or last sent something.
    """
    jobs: deque[_Job] = deque()  # files being read, in file order
    idle: list[_Worker] = []
    pending = iter(files)
    try:
        while True:
            while len(jobs) < processes and (file := next(pending, None)) is not None:
                jobs.append(
                    _Job.passing(file)
                    if isinstance(file, Failure)
                    else _Job(file, idle.pop() if idle else _Worker(read_ids))
                )
            if not jobs:
                return
            head = jobs[0]
            while head.items:
                yield head.take()
            if head.finished:  # its worker back to the pool, unless it was stopped
                jobs.popleft()
                if head.worker is not None:
                    idle.append(head.worker)
                if jobs:
                    jobs[0].heard = time.monotonic()  # the new head's hang clock starts now
                continue
            listening = {
                job.worker.connection: job
                for job in jobs
                if not job.finished and (job is head or job.ahead < READ_AHEAD_SAMPLES)
            }
            for connection in wait(list(listening), timeout=max(0.0, head.heard + timeout_s - time.monotonic())):
                listening[connection].receive()
            if not head.finished and time.monotonic() - head.heard >= timeout_s:
                head.fail(f"the reader hung in a C library: nothing for {timeout_s:g} s (damaged file?)")
    finally:
        for worker in idle + [job.worker for job in jobs if job.worker]:
            worker.stop()


READ_AHEAD_SAMPLES = 20_000_000  # per file read ahead of the head: 40 MB of int16 signal


class _Job:
    """One file being read by a worker: the items received so far, not yet handed on."""

    def __init__(self, file: Path, worker: _Worker | None):
        self.file = file
        self.worker = worker  # None for a passing Failure, or once the worker was stopped
        self.finished = worker is None  # the worker has sent all it will for this file
        self.items: deque[Read | Failure] = deque()
        self.ahead = 0  # samples held in `items`
        self.n_reads = 0
        self.heard = time.monotonic()
        if worker is not None:
            worker.connection.send(str(file))

    @classmethod
    def passing(cls, failure: Failure) -> _Job:
        job = cls(Path(failure.path), None)
        job.items.append(failure)
        return job

    def take(self) -> Read | Failure:
        item = self.items.popleft()
        self.ahead -= item.n_samples if isinstance(item, Read) else 0
        return item

    def receive(self) -> None:
        """One message from the worker: an item, the end of the file, or the news that the worker died."""
        self.heard = time.monotonic()
        try:
            item = self.worker.connection.recv()
        except Exception:  # noqa: BLE001 - the pipe closed, maybe mid-message: the worker died
            self.worker.process.join(5)
            code = self.worker.process.exitcode
            if code is not None and code < 0:
                self.fail(f"the reader crashed in a C library ({signal.Signals(-code).name}): the file is damaged")
            else:
                self.fail(f"the reader process ended unexpectedly (exit status {code})")
            return
        if item == _DONE:
            self.finished = True
            return
        if isinstance(item, logging.LogRecord):
            logging.getLogger(item.name).handle(item)
            return
        self.n_reads += isinstance(item, Read)
        self.ahead += item.n_samples if isinstance(item, Read) else 0
        self.items.append(item)

    def fail(self, problem: str) -> None:
        """Stop the worker; the rest of the file is one Failure."""
        self.worker.stop()
        self.worker, self.finished = None, True
        self.items.append(
            Failure(str(self.file), f"{problem} (after {self.n_reads} reads of this file)" if self.n_reads else problem)
        )
