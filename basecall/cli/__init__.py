"""The `basecall` command: a click group whose subcommands are imported only when used (torch takes seconds).

Errors are mapped to exit codes here, in one place: a BasecallError prints one line and exits with its code,
Ctrl-C exits 130, anything unexpected prints one line (a traceback with -vv) and exits 1. Options every subcommand
shares live here too: -q / -v / -vv (`logging_options`) and old option names kept working but hidden (`Option`).
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from collections.abc import Callable

import click

from basecall import __version__
from basecall.errors import BasecallError, ExitCode, one_line

SUBCOMMANDS = {
    "basecaller": ("basecall.cli.basecaller", "basecaller"),
    "evaluate": ("basecall.cli.evaluate", "evaluate"),
    "models": ("basecall.cli.models", "models"),
    "simulate": ("basecall.cli.simulate", "simulate"),
    "train": ("basecall.cli.train", "train"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module, attribute = SUBCOMMANDS[name]
        return getattr(importlib.import_module(module), attribute)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("basecall: interrupted", err=True)
            ctx.exit(ExitCode.INTERRUPTED)
        except BasecallError as e:
            if ctx.meta.get(TRACEBACKS):
                raise
            click.echo(f"basecall: error: {e}", err=True)
            ctx.exit(e.exit_code)
        except Exception as e:
            if ctx.meta.get(TRACEBACKS):
                raise
            click.echo(f"basecall: error: {type(e).__name__}: {one_line(e)} (run with -vv for details)", err=True)
            ctx.exit(ExitCode.ERROR)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="basecall")
def cli() -> None:
    """basecall: a nanopore basecaller (pod5 and fast5 in, FASTQ out)."""


TRACEBACKS = "basecall.tracebacks"  # ctx.meta key: errors raise with their traceback (-vv)


class Option(click.Option):
    """A click option that also answers to `old_names`: spellings kept so that scripts written for them still work,
    but not shown in --help (e.g. ``Option(["-o", "--output"], old_names=["--out"])``)."""

    def __init__(self, param_decls: list[str], old_names: tuple[str, ...] | list[str] = (), **attrs: object) -> None:
        super().__init__([*param_decls, *old_names], **attrs)
        self.old_names = tuple(old_names)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown, self.opts = self.opts, [name for name in self.opts if name not in self.old_names]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


def logging_options(command: Callable) -> Callable:
    """-q / -v / -vv for a subcommand (as Dorado's -v / -vv): `verbose` reaches the command as 0, 1 or 2, and from 2 on
    errors are shown with their traceback. The old --debug, hidden, is -vv. The command calls `configure_logging`."""

    @functools.wraps(command)
    def with_logging(*args: object, **kwargs: object) -> object:
        if kwargs["debug"]:
            kwargs["verbose"] = max(kwargs["verbose"], 2)
        click.get_current_context().meta[TRACEBACKS] = kwargs["verbose"] >= 2
        return command(*args, **kwargs)

    options = [
        click.option("-q", "--quiet", is_flag=True, help="Only errors and warnings: no progress bar, no final line."),
        click.option("-v", "--verbose", count=True, help="-v: debug messages too; -vv: and tracebacks of errors."),
        click.option("--debug", is_flag=True, hidden=True, help="The same as -vv (its old name)."),
    ]
    for option in reversed(options):
        with_logging = option(with_logging)
    return with_logging


def configure_logging(quiet: bool, verbose: int) -> None:
    """Log lines on stderr: warnings and errors with `quiet`, info by default, debug from `verbose` 1 on."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("basecall: %(levelname)s: %(message)s"))
    root = logging.getLogger("basecall")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    root.propagate = False


def main() -> None:
    cli(prog_name="basecall")
