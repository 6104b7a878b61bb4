"""`basecall train`: train (or fine-tune) a model from labelled reads."""

from __future__ import annotations

import logging
import sys

import click

from basecall.cli import Option, configure_logging, logging_options
from basecall.config import TrainConfig

log = logging.getLogger("basecall.cli")
RECIPE = TrainConfig()  # the recipe's defaults, shown in --help


@click.command()
@click.argument("data", nargs=-1, required=True)
@click.option("-o", "--output", "out_dir", cls=Option, old_names=["--out"], required=True, metavar="DIR", help="Output model directory (best model, checkpoint, training log).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="config.toml of the architecture to train from scratch. [default: none; give this or --model]")
@click.option("-m", "--model", "model_name", metavar="NAME|DIR", help="Fine-tune this model (its architecture and weights). [default: none; give this or --config]")
@click.option("--valid", "valid_data", multiple=True, metavar="DATA", help="Labelled reads to validate on (repeatable). [default: hold out --valid-fraction of DATA's reads]")
@click.option("--epochs", type=click.IntRange(min=1), help=f"Passes over the training chunks. [default: {RECIPE.epochs}]")
@click.option("--batch-size", type=click.IntRange(min=1), help=f"Chunks per training step (per process under torchrun). [default: {RECIPE.batch_size}]")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help=f"Peak learning rate, reached after the warm-up, then cosine decay to lr / 100. [default: {RECIPE.lr:g}]")
@click.option("--warmup-steps", type=click.IntRange(min=0), help=f"Steps of linear learning-rate warm-up. [default: {RECIPE.warmup_steps}]")
@click.option("--seed", type=int, help=f"Seed of the initial weights, the held-out reads and the chunk offsets. [default: {RECIPE.seed}]")
@click.option("--valid-fraction", type=click.FloatRange(0, 1, max_open=True), help=f"Share of DATA's labelled reads held out for validation when --valid is not given. [default: {RECIPE.valid_fraction:g}]")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--resume", is_flag=True, help="Continue from OUTPUT/checkpoint.pt.")
@click.option("--reference", type=click.Path(exists=True, dir_okay=False), metavar="FASTA", help="FASTA that a BAM in DATA was aligned to. [default: rebuilt from the records' MD tags]")
@click.option("--teacher", "teacher_name", metavar="NAME|DIR", help="Distil: this model calls the reads in DATA that carry no labels (pod5 without a BAM, blow5/slow5, fast5 without a Tombo resquiggle), chunk by chunk, and the model learns those calls too. [default: none; reads without labels are an error]")
@click.option("--teacher-beam-width", type=click.IntRange(min=0), default=5, show_default=True, help="Beam width of the teacher's calls (0 or 1: greedy).")
@click.option("--teacher-weight", type=click.FloatRange(min=0), help=f"Also learn the teacher's posteriors at each timestep (KL divergence, this weight beside the CTC loss per base); needs a model with the teacher's stride. [default: {RECIPE.teacher_weight:g}: its calls only]")
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
    teacher_name: str | None,
    teacher_beam_width: int,
    quiet: bool,
    verbose: int,
    debug: bool,
    **recipe: object,
) -> None:
    """Train a model on labelled reads in DATA: Tombo-resquiggled fast5, Taiyaki mapped-signal .hdf5 (also what
    `basecall simulate` writes), an aligned Dorado BAM with move tables (`--emit-moves`) given with the pod5 files
    or folder it was called from (`basecall train pod5_dir/ calls.bam`), or prepared chunk folders (chunks.npy,
    references.npy, reference_lengths.npy).

    Give the architecture with --config (from scratch) or --model (fine-tune). After every epoch the validation
    reads are called and aligned to their labels; the epoch with the best median accuracy (matches / (alignment
    columns + label bases left unaligned): unlike identity, it counts what a call misses; ties go to the lower loss)
    is written to OUTPUT as a model directory, usable with `basecall basecaller --model OUTPUT`.

    With --teacher MODEL (distillation), DATA may also hold reads without labels: the teacher calls each chunk of
    them with beam search, and those calls are the chunks' labels (made once, kept in OUTPUT/teacher_chunks).

    Started by torchrun (`torchrun --nproc-per-node N -m basecall train ...`), it trains on N processes (one per GPU,
    or gloo on CPU): --batch-size is per process, and rank 0 validates and writes OUTPUT.
    """
    from basecall.errors import ConfigError
    from basecall.training import distributed
    from basecall.training.loop import check_out_dir

    if (config_path is None) == (model_name is None):
        raise ConfigError("give exactly one of --config (train from scratch) or --model (fine-tune)")
    check_out_dir(out_dir, resume)
    with distributed.process_group(device) as torch_device:
        main = distributed.rank() == 0
        quiet = quiet or not main  # one process reports
        configure_logging(quiet, verbose)
        config, initial_weights = _architecture(config_path, model_name)
        train_config = _recipe(recipe)
        reads, prepared = _training_data(
            data, reference, teacher_name, teacher_beam_width, train_config.teacher_weight > 0, out_dir, config,
            torch_device,
        )
        reads, valid_reads = _validation_reads(reads, valid_data, reference, train_config)
        log.info(
            "training on %d labelled reads and %d prepared chunks, validating on %d reads; %s",
            len(reads), sum(len(p) for p in prepared), len(valid_reads), torch_device,
        )  # fmt: skip
        metrics = _run(
            config, train_config, reads, prepared, valid_reads, out_dir, torch_device, initial_weights, resume, quiet
        )
    if main:
        click.echo(_final_line(metrics, out_dir, train_config), err=True)


def _architecture(config_path: str | None, model_name: str | None):
    """(Config, initial weights): a config file's architecture with fresh weights (None), or a model's own."""
    from basecall.config import load_config
    from basecall.model import load_model

    if model_name:
        loaded = load_model(model_name)
        return loaded.config, loaded.model.state_dict()
    return load_config(config_path), None


def _recipe(options: dict[str, object]) -> TrainConfig:
    """The training recipe: `TrainConfig`'s defaults with the options given on the command line."""
    from dataclasses import replace

    return replace(RECIPE, **{key: value for key, value in options.items() if value is not None}).check()


def _training_data(data, reference, teacher_name, teacher_beam_width, posteriors, out_dir, config, torch_device):
    """(labelled reads, prepared chunk sets) from DATA; with a teacher, the reads without labels are labelled by its
    calls (and, with `posteriors`, its probabilities) into one more chunk set (made once, kept in
    OUTPUT/teacher_chunks)."""
    from basecall.training.data import ChunkSet, LabelledRead, open_labelled

    items = list(open_labelled(data, reference=reference, unlabelled=teacher_name is not None))
    reads = [i for i in items if isinstance(i, LabelledRead)]
    prepared = [i for i in items if isinstance(i, ChunkSet)]
    if teacher_name is not None:
        from basecall.training.distill import labels_for_training

        unlabelled = [i for i in items if not isinstance(i, (LabelledRead, ChunkSet))]
        prepared.append(labels_for_training(
            out_dir, teacher_name, unlabelled, config.basecaller.chunksize, config.model.stride,
            teacher_beam_width, torch_device, posteriors,
        ))  # fmt: skip
    return reads, prepared


def _validation_reads(reads, valid_data, reference, train_config: TrainConfig):
    """(training reads, validation reads): --valid's labelled reads, else a seeded `valid_fraction` of `reads`."""
    import numpy as np

    from basecall.training.data import LabelledRead, open_labelled

    if valid_data:
        return reads, [i for i in open_labelled(valid_data, reference=reference) if isinstance(i, LabelledRead)]
    held_out = np.random.default_rng(train_config.seed).random(len(reads)) < train_config.valid_fraction
    return [r for r, h in zip(reads, held_out) if not h], [r for r, h in zip(reads, held_out) if h]


def _run(config, train_config, reads, prepared, valid_reads, out_dir, torch_device, initial_weights, resume, quiet):
    """The training loop with a progress bar (step, loss) on a terminal; the last epoch's metrics."""
    from tqdm import tqdm

    from basecall.training.loop import TrainingData
    from basecall.training.loop import train as run_training
    from basecall.training.validate import validation_metrics

    with tqdm(unit="step", file=sys.stderr, disable=quiet or not sys.stderr.isatty(), leave=False) as progress:

        def on_step(step: int, loss: float) -> None:
            progress.update()
            progress.set_postfix(loss=f"{loss:.3f}", refresh=False)

        return run_training(
            config, train_config, TrainingData(reads, prepared), valid_reads, out_dir, torch_device,
            initial_weights=initial_weights, resume=resume, validate=validation_metrics(config, torch_device),
            on_step=on_step,
        )  # fmt: skip


def _final_line(metrics: dict[str, float], out_dir: str, train_config: TrainConfig) -> str:
    if not metrics:
        return f"basecall: {out_dir} already holds all {train_config.epochs} epochs: nothing to train"
    return f"basecall: trained {metrics.get('epoch')} epochs; last validation: " + ", ".join(
        f"{k} {v:.4g}" for k, v in metrics.items() if k.startswith("valid")
    )
