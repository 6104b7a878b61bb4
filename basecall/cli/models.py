"""`basecall models`: list the shipped models; `basecall models import`: make a model directory from published weights."""

from __future__ import annotations

import click

from basecall.cli import configure_logging, logging_options


@click.group(invoke_without_command=True)
@logging_options
@click.pass_context
def models(ctx: click.Context, quiet: bool, verbose: bool, debug: bool) -> None:
    """List the shipped models: name, chemistry, sample rate, measured median read identity (R9.4.1 SARS-CoV-2 reads
    no model trained on, and lambda reads), whole-run speed on a 2-core CPU, each with the model's own run settings
    (beam search where its card shows a gain), and description."""
    configure_logging(quiet, verbose)
    if ctx.invoked_subcommand is not None:
        return
    from basecall.config import load_config
    from basecall.model import shipped_models

    shipped = shipped_models()
    if not shipped:
        click.echo("no models shipped yet: pass a model directory with --model DIR", err=True)
    for name, path in shipped.items():
        click.echo(f"{name}\t{load_config(path / 'config.toml').info.listing()}")


@models.command("import")
@click.argument("kind", type=click.Choice(["deepnano-blitz"]))
@click.argument("weights", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, metavar="DIR", help="Model directory to write.")
def import_(kind: str, weights: str, out_dir: str) -> None:
    """Make a model directory (config.toml, weights.safetensors, LICENSE, MODEL_CARD.md) from the published
    WEIGHTS of another basecaller: `deepnano-blitz` reads DeepNano-blitz's rnnNN.txt files (R9.4.1, MIT)."""
    from basecall.importing import import_blitz

    out = import_blitz(weights, out_dir)
    click.echo(f"basecall: wrote {out}; call reads with `basecall basecaller --model {out} ...`", err=True)
