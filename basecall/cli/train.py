"""`basecall train`: train (or fine-tune) a model from labelled reads."""

from __future__ import annotations

import logging
import sys

import click

from basecall.cli import configure_logging, logging_options

log = logging.getLogger("basecall.cli")


@click.command()
@click.argument("data", nargs=-1, required=True)
@click.option("-o", "--out", "out_dir", required=True, help="Output model directory (best model, checkpoint, log).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="config.toml of the architecture to train from scratch.")
@click.option("-m", "--model", "model_name", metavar="NAME|DIR", help="Fine-tune this model (its architecture and weights).")
@click.option("--valid", "valid_data", multiple=True, help="Labelled reads to validate on. [default: hold out --valid-fraction of DATA's reads]")
@click.option("--epochs", type=click.IntRange(min=1))
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Peak learning rate.")
@click.option("--warmup-steps", type=click.IntRange(min=0))
@click.option("--seed", type=int)
@click.option("--valid-fraction", type=click.FloatRange(0, 1, max_open=True))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
@click.option("--reference", type=click.Path(exists=True, dir_okay=False), help="FASTA that a BAM in DATA was aligned to. [default: rebuilt from the records' MD tags]")
@logging_options
def train(
    data: tuple[str, ...],
    out_dir: str,
    config_path: str | None,
    model_name: str | None,
    valid_data: tuple[str, ...],
    device: str,
    resume: bool,
    reference: str | None,
    quiet: bool,
    verbose: bool,
    debug: bool,
    **recipe: object,
) -> None:
    """Train a model on labelled reads in DATA: Tombo-resquiggled fast5, Taiyaki mapped-signal .hdf5 (also what
    `basecall simulate` writes), an aligned Dorado BAM with move tables (`--emit-moves`) given with the pod5 files
    or folder it was called from (`basecall train pod5_dir/ calls.bam`), or prepared chunk folders (chunks.npy,
    references.npy, reference_lengths.npy).

    Give the architecture with --config (from scratch) or --model (fine-tune). The best model by validation read
    identity is written to OUT as a model directory, usable with `basecall basecaller --model OUT`.

    Started by torchrun (`torchrun --nproc-per-node N -m basecall train ...`), it trains on N processes (one per GPU,
    or gloo on CPU): --batch-size is per process, and rank 0 validates and writes OUT.
    """
    from dataclasses import replace

    import numpy as np
    from tqdm import tqdm

    from basecall.config import TrainConfig, load_config
    from basecall.errors import ConfigError
    from basecall.model import load_model
    from basecall.training import distributed
    from basecall.training.data import ChunkSet, open_labelled
    from basecall.training.loop import TrainingData, check_out_dir
    from basecall.training.loop import train as run_training
    from basecall.training.validate import read_identity

    if (config_path is None) == (model_name is None):
        raise ConfigError("give exactly one of --config (train from scratch) or --model (fine-tune)")
    check_out_dir(out_dir, resume)
    with distributed.process_group(device) as torch_device:
        main = distributed.rank() == 0
        quiet = quiet or not main  # one process reports
        configure_logging(quiet, verbose)
        initial_weights = None
        if model_name:
            loaded = load_model(model_name)
            config, initial_weights = loaded.config, loaded.model.state_dict()
        else:
            config = load_config(config_path)
        train_config = replace(TrainConfig(), **{k: v for k, v in recipe.items() if v is not None}).check()

        items = list(open_labelled(data, reference=reference))
        reads = [i for i in items if not isinstance(i, ChunkSet)]
        prepared = [i for i in items if isinstance(i, ChunkSet)]
        if valid_data:
            valid_reads = [i for i in open_labelled(valid_data, reference=reference) if not isinstance(i, ChunkSet)]
        else:
            held_out = np.random.default_rng(train_config.seed).random(len(reads)) < train_config.valid_fraction
            valid_reads = [r for r, h in zip(reads, held_out) if h]
            reads = [r for r, h in zip(reads, held_out) if not h]
        log.info(
            "training on %d labelled reads and %d prepared chunks, validating on %d reads; %s",
            len(reads), sum(len(p) for p in prepared), len(valid_reads), torch_device,
        )  # fmt: skip
        with tqdm(unit="step", file=sys.stderr, disable=quiet or not sys.stderr.isatty(), leave=False) as progress:

            def on_step(step: int, loss: float) -> None:
                progress.update()
                progress.set_postfix(loss=f"{loss:.3f}", refresh=False)

            metrics = run_training(
                config, train_config, TrainingData(reads, prepared), valid_reads, out_dir, torch_device,
                initial_weights=initial_weights, resume=resume, validate=read_identity(config, torch_device),
                on_step=on_step,
            )  # fmt: skip
    if main and not metrics:
        click.echo(f"basecall: {out_dir} already holds all {train_config.epochs} epochs: nothing to train", err=True)
    elif main:
        click.echo(
            f"basecall: trained {metrics.get('epoch')} epochs; last validation: "
            + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k.startswith("valid")),
            err=True,
        )
