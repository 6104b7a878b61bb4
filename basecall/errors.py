"""Our exceptions and the process exit codes they map to (the mapping lives in `basecall.cli`)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # every read was called or filtered
    ERROR = 1  # the run could not start or stopped (bad model, bad config, unexpected error)
    USAGE = 2  # bad command line (click's own code)
    READS_FAILED = 3  # the run finished, but at least one file or read failed (see the summary)
    INTERRUPTED = 130  # Ctrl-C


class BasecallError(Exception):
    """Base class for errors the CLI reports as one line."""

    exit_code = ExitCode.ERROR


class InputError(BasecallError):
    """A read file or a read cannot be used; the message names the file (and read)."""


class ReadsFailed(BasecallError):
    """A file or read failed and the run was asked to stop at the first failure (--strict)."""

    exit_code = ExitCode.READS_FAILED


class ConfigError(BasecallError):
    """A config file or a combination of settings is invalid."""


class ModelError(BasecallError):
    """A model cannot be found or loaded."""


def one_line(error: BaseException) -> str:
    """The first line of an exception's message (or its type name), for one-line reports."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
