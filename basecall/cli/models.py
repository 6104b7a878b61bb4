"""`basecall models`: list the shipped models."""

from __future__ import annotations

import click

from basecall.cli import configure_logging, logging_options


@click.command()
@logging_options
def models(quiet: bool, verbose: bool, debug: bool) -> None:
    """List the shipped models (name, chemistry, sample rate, description)."""
    from basecall.config import load_config
    from basecall.model import shipped_models

    configure_logging(quiet, verbose)
    shipped = shipped_models()
    if not shipped:
        click.echo("no models shipped yet: pass a model directory with --model DIR", err=True)
    for name, path in shipped.items():
        info = load_config(path / "config.toml").info
        click.echo(f"{name}\t{info.chemistry}\t{info.sample_rate_hz} Hz\t{info.description}")
