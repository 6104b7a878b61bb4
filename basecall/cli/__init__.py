"""The `basecall` command: a click group whose subcommands are imported only when used (torch takes seconds).

Errors are mapped to exit codes here, in one place: a BasecallError prints one line and exits with its code,
Ctrl-C exits 130, anything unexpected prints one line (a traceback with --debug) and exits 1.
"""

from __future__ import annotations

import importlib
import logging
import sys

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
            if ctx.meta.get("debug"):
                raise
            click.echo(f"basecall: error: {e}", err=True)
            ctx.exit(e.exit_code)
        except Exception as e:
            if ctx.meta.get("debug"):
                raise
            click.echo(f"basecall: error: {type(e).__name__}: {one_line(e)} (run with --debug for details)", err=True)
            ctx.exit(ExitCode.ERROR)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="basecall")
def cli() -> None:
    """basecall: a nanopore basecaller (pod5 and fast5 in, FASTQ out)."""


def logging_options(command: click.Command) -> click.Command:
    """-q / -v / --debug for a subcommand: set up logging on stderr and remember --debug for error reporting."""

    def setup(ctx: click.Context, param: click.Parameter, value: object) -> object:
        ctx.meta[param.name] = value
        return value

    for option in reversed(
        [
            click.option("-q", "--quiet", is_flag=True, callback=setup, expose_value=True, help="Only errors and warnings; no progress bar."),
            click.option("-v", "--verbose", is_flag=True, callback=setup, help="Debug messages."),
            click.option("--debug", is_flag=True, callback=setup, help="Show tracebacks for errors."),
        ]
    ):
        command = option(command)
    return command


def configure_logging(quiet: bool, verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("basecall: %(levelname)s: %(message)s"))
    root = logging.getLogger("basecall")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    root.propagate = False


def main() -> None:
    cli(prog_name="basecall")
