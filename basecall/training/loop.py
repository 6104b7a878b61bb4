"""The training loop: CTC loss, AdamW, warm-up then cosine learning rate, gradient clipping, validation read
identity each epoch, self-describing checkpoints, resume.

Output folder:
  config.toml + weights.safetensors   the best model so far (by validation median accuracy, then loss): a model directory
  checkpoint.pt                       last state, for --resume (model, optimiser, step, epoch, configs, best metric)
  training.csv                        one row per epoch

Under torchrun (see `basecall.training.distributed`) each process trains on its share of every epoch's chunks, so
`batch_size` is per process; only rank 0 validates and writes the output folder.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from basecall.atomic import atomic_path
from basecall.config import Config, TrainConfig, config_from_dict
from basecall.errors import ConfigError
from basecall.model import WEIGHTS, Model, save_model
from basecall.training import distributed
from basecall.training.data import ChunkSet, LabelledRead, read_chunks

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
LOG = "training.csv"


def check_out_dir(out_dir: str | Path, resume: bool) -> None:
    """A new run needs a folder without an earlier run in it (it would overwrite that model and mix the logs);
    --resume needs that run's checkpoint."""
    out_dir = Path(out_dir)
    if resume and not (out_dir / CHECKPOINT).is_file():
        raise ConfigError(f"{out_dir}: no {CHECKPOINT} to resume from")
    earlier = [name for name in (CHECKPOINT, LOG, WEIGHTS) if (out_dir / name).exists()]
    if not resume and earlier:
        raise ConfigError(
            f"{out_dir}: holds an earlier training run ({', '.join(earlier)}): add --resume to continue it, "
            "or give a new folder"
        )


def learning_rate(step: int, total_steps: int, peak: float, warmup_steps: int) -> float:
    """Linear warm-up to `peak`, then cosine decay to peak / 100 at `total_steps`."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def ctc_loss(log_probs: torch.Tensor, references: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """log_probs (T, N, 5), references (N, max_len) 1-4 padded with 0, lengths (N,) → mean loss per base."""
    n_timesteps = torch.full((log_probs.shape[1],), log_probs.shape[0], dtype=torch.long)
    return torch.nn.functional.ctc_loss(
        log_probs.float(), references.long(), n_timesteps, lengths, blank=0, reduction="mean", zero_infinity=True
    )


def teacher_divergence(log_probs: torch.Tensor, posteriors: torch.Tensor) -> torch.Tensor:
    """Mean KL(teacher ‖ model) per timestep over the chunks that have teacher posteriors (rows of zeros: none).

    log_probs (T, N, 5) the model's; posteriors (N, T, 5) the teacher's probabilities."""
    teacher = posteriors.float().transpose(0, 1)  # (T, N, 5)
    has = teacher.sum(dim=(0, 2)) > 0  # (N,)
    if not has.any():
        return log_probs.new_zeros(())
    teacher, model = teacher[:, has], log_probs.float()[:, has]  # (T, n, 5)
    return (teacher * (teacher.clamp(min=1e-6).log() - model)).sum(dim=-1).mean()


@dataclass
class TrainingData:
    """Labelled reads (re-chunked at a random offset each epoch) plus fixed prepared chunks."""

    reads: list[LabelledRead]
    prepared: list[ChunkSet]

    def epoch_chunks(self, chunksize: int, stride: int, rng: np.random.Generator | None) -> ChunkSet:
        sets = [read_chunks(read, chunksize, stride, rng) for read in self.reads]
        return ChunkSet.concatenate(sets + self.prepared)


def train(
    config: Config,
    train_config: TrainConfig,
    data: TrainingData,
    valid_reads: list[LabelledRead],
    out_dir: str | Path,
    device: torch.device,
    initial_weights: dict[str, torch.Tensor] | None = None,
    resume: bool = False,
    validate: Callable[[Model, list[LabelledRead]], dict[str, float]] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> dict[str, float]:
    """Train a model; return the last epoch's metrics (on rank 0; none on the others). The best model is saved in
    `out_dir`. Epoch e's chunks and their order depend only on the seed and e, so a resumed run trains like an
    uninterrupted one."""
    out_dir = Path(out_dir)
    main = distributed.rank() == 0
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(train_config.seed)
    model = Model(config.model).to(device)
    if initial_weights is not None:
        model.load_state_dict(initial_weights)
    optimiser = torch.optim.AdamW(model.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay)
    chunksize, stride = config.basecaller.chunksize, config.model.stride
    for prepared in data.prepared:
        if prepared.chunks.shape[1] != chunksize:
            raise ConfigError(
                f"prepared chunks ({len(prepared)}) are {prepared.chunks.shape[1]} samples long, but the model's "
                f"chunksize is {chunksize}: cut them again with that chunksize (e.g. basecall basecaller --save-ctc "
                f"with --chunksize {chunksize})"
            )
    valid_reads = valid_reads if main else []  # only rank 0 validates
    valid = ChunkSet.concatenate([read_chunks(r, chunksize, stride) for r in valid_reads]) if valid_reads else None

    start_epoch, step, best = 0, 0, [-math.inf, -math.inf]
    if resume:
        state = torch.load(out_dir / CHECKPOINT, map_location=device, weights_only=True)
        if config_from_dict(state["config"]).model != config.model:
            raise ConfigError(f"{out_dir / CHECKPOINT}: the checkpoint's architecture differs from the config's")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        start_epoch, step, best = state["epoch"], state["step"], [float(x) for x in np.atleast_1d(state["best"])]
        log.info("resumed from epoch %d, step %d", start_epoch, step)

    network = distributed.wrap(model, device)
    world_size = distributed.world_size()
    steps_per_epoch = len(data.epoch_chunks(chunksize, stride, None)) // world_size // train_config.batch_size
    total_steps = steps_per_epoch * train_config.epochs
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    metrics: dict[str, float] = {}
    for epoch in range(start_epoch, train_config.epochs):
        started = time.perf_counter()
        chunks = data.epoch_chunks(chunksize, stride, np.random.default_rng([train_config.seed, epoch]))
        order = distributed.shard(len(chunks), train_config.seed, epoch)
        network.train()
        losses = []
        for first in range(0, len(order) - train_config.batch_size + 1, train_config.batch_size):
            batch = chunks.subset(order[first : first + train_config.batch_size])
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(step, total_steps, train_config.lr, train_config.warmup_steps)
            x = torch.from_numpy(batch.chunks).to(device).unsqueeze(1)  # (B, 1, chunksize)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                log_probs = network(x)  # (T, B, 5)
            references, lengths = (torch.from_numpy(a).to(device) for a in (batch.references, batch.lengths))
            loss = ctc_loss(log_probs, references, lengths)
            if train_config.teacher_weight and batch.posteriors is not None:
                posteriors = torch.from_numpy(batch.posteriors).to(device)  # (B, T', 5)
                loss = loss + train_config.teacher_weight * teacher_divergence(log_probs, posteriors)
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimiser)
            torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip)
            scaler.step(optimiser)
            scaler.update()
            losses.append(loss.item())
            step += 1
            if on_step:
                on_step(step, losses[-1])
        seconds = time.perf_counter() - started
        train_loss = distributed.mean(float(np.mean(losses)) if losses else float("nan"), device)
        if main:
            model.eval()
            metrics = {
                "epoch": epoch + 1,
                "step": step,
                "train_loss": train_loss,
                "valid_loss": _valid_loss(model, valid, device) if valid is not None else float("nan"),
                "lr": optimiser.param_groups[0]["lr"],
                "train_samples_per_s": len(losses) * train_config.batch_size * chunksize * world_size / seconds,
                "seconds": seconds,
            }
            if validate is not None and valid_reads:
                metrics.update(validate(model, valid_reads))
            # median accuracy is 0 until half the validation reads map (and ties often): the loss breaks ties
            loss = metrics["valid_loss"] if valid is not None else metrics["train_loss"]
            score = [metrics.get("valid_median_accuracy", -loss), -loss]
            if score > best:
                best = score
                save_model(model, config, out_dir)
            _append_log(out_dir / LOG, metrics)
            with atomic_path(out_dir / CHECKPOINT) as temporary:
                torch.save(
                    {
                        "model": model.state_dict(),
                        "optimiser": optimiser.state_dict(),
                        "epoch": epoch + 1,
                        "step": step,
                        "best": best,
                        "config": config.to_dict(),
                        "train_config": asdict(train_config),
                    },
                    temporary,
                )
            log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        distributed.barrier()  # the other ranks wait while rank 0 validates and writes
    return metrics


@torch.inference_mode()
def _valid_loss(model: Model, valid: ChunkSet, device: torch.device, batch_size: int = 64) -> float:
    total, n = 0.0, 0
    for first in range(0, len(valid), batch_size):
        batch = valid.subset(np.arange(first, min(first + batch_size, len(valid))))
        log_probs = model(torch.from_numpy(batch.chunks).to(device).unsqueeze(1))
        loss = ctc_loss(log_probs, torch.from_numpy(batch.references), torch.from_numpy(batch.lengths))
        total += loss.item() * len(batch)
        n += len(batch)
    return total / max(n, 1)


def _append_log(path: Path, row: dict[str, float]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
