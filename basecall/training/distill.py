"""Distillation: a teacher model labels chunks of reads that have no labels, and a student learns those calls.

The teacher sees exactly the chunk the student will see (the student's chunksize; any teacher stride works, as only
the called bases are kept) and calls it with beam search; the chunk is labelled with those bases. Chunks are cut
every half chunk, so each stretch of signal appears at two offsets. Chunks whose call is implausible for their length
(as `read_chunks` judges labelled chunks: stalls, open pore, adapters) or longer than CTC fits at the student's stride
are dropped. The result is an ordinary `ChunkSet`, mixed with labelled and simulated reads by the training loop.
When the student has the teacher's stride, the teacher's posteriors at each timestep can be kept too (float16), for
the student to learn them beside the calls (`TrainConfig.teacher_weight`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from basecall.atomic import atomic_path
from basecall.decoder import make_decoder
from basecall.errors import ConfigError, InputError
from basecall.model import LoadedModel, forward_dtype, load_model
from basecall.records import Failure, Read
from basecall.signal import scaled_signal
from basecall.training import distributed
from basecall.training.data import SAMPLES_PER_BASE, ChunkSet, ctc_steps

log = logging.getLogger(__name__)


def _chunks(reads: Iterable[Read | Failure], chunksize: int, counts: Counter) -> Iterator[np.ndarray]:
    """Normalised chunks (chunksize,) float32 of every usable read, one every chunksize / 2 samples."""
    for read in reads:
        if isinstance(read, Failure):
            log.warning("%s", read.message())
            counts["reads failed"] += 1
            continue
        try:
            signal = scaled_signal(read)
        except InputError as e:
            log.warning("%s: read %s: %s", read.path, read.read_id, e)
            counts["reads failed"] += 1
            continue
        counts["reads"] += 1
        for start in range(0, len(signal) - chunksize + 1, chunksize // 2):
            yield signal[start : start + chunksize]


def _batches(chunks: Iterator[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    batch: list[np.ndarray] = []
    for chunk in chunks:
        batch.append(chunk)
        if len(batch) == batch_size:
            yield np.stack(batch)  # (batch_size, chunksize)
            batch = []
    if batch:
        yield np.stack(batch)


@torch.inference_mode()
def teacher_labels(
    teacher: LoadedModel,
    reads: Iterable[Read | Failure],
    chunksize: int,
    student_stride: int,
    beam_width: int = 5,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
    posteriors: bool = False,
) -> ChunkSet:
    """Chunks of `reads` labelled with the teacher's calls (see the module docstring); with `posteriors`, also the
    teacher's probabilities (N, chunksize / stride, 5) float16."""
    device = torch.device(device)
    model = teacher.model.to(device).eval()
    dtype = forward_dtype(device, "auto", model)
    decode = make_decoder(beam_width)
    expected = chunksize / SAMPLES_PER_BASE * teacher.config.info.sample_rate_hz / 4000
    counts: Counter = Counter()
    kept_chunks, labels, kept_posteriors = [], [], []
    for batch in _batches(_chunks(reads, chunksize, counts), batch_size):
        x = torch.from_numpy(batch).to(device).unsqueeze(1)  # (B, 1, chunksize)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            log_probs = model(x).float()  # (T', B, 5)
        moves, bases, _ = (t.cpu().numpy() for t in decode(log_probs))  # each (B, T')
        probabilities = log_probs.exp().transpose(0, 1).half().cpu().numpy() if posteriors else [None] * len(batch)
        for chunk, chunk_moves, chunk_bases, chunk_probabilities in zip(batch, moves, bases, probabilities):
            label = chunk_bases[chunk_moves.astype(bool)]  # (n_bases,) 1-4
            if not expected / 5 <= len(label) <= 2 * expected:
                counts["chunks dropped (implausible call)"] += 1
            elif ctc_steps(label) > chunksize // student_stride:
                counts["chunks dropped (more bases than CTC fits)"] += 1
            else:
                kept_chunks.append(chunk)
                labels.append(label)
                if posteriors:
                    kept_posteriors.append(chunk_probabilities)
                counts["chunks kept"] += 1
    log.info("teacher %s labelled %s", teacher.name, ", ".join(f"{n} {what}" for what, n in sorted(counts.items())))
    if not labels:
        raise InputError(f"teacher {teacher.name} labelled no usable chunk of {chunksize} samples in the reads given")
    lengths = np.array([len(label) for label in labels], np.int64)
    references = np.zeros((len(labels), int(lengths.max())), np.uint8)
    for row, label in enumerate(labels):
        references[row, : len(label)] = label
    return ChunkSet(np.stack(kept_chunks), references, lengths, np.stack(kept_posteriors) if posteriors else None)


TEACHER_CHUNKS = "teacher_chunks"  # the labelled chunks, kept in the training output folder for --resume


def labels_for_training(
    out_dir: str | Path,
    teacher_name: str,
    reads: list[Read | Failure],
    chunksize: int,
    student_stride: int,
    beam_width: int,
    device: torch.device,
    posteriors: bool = False,
) -> ChunkSet:
    """`teacher_labels` for a training run, made once: by rank 0 under torchrun (the others wait, then load them),
    saved in OUT/teacher_chunks with what made them, and loaded from there when a run with the same teacher, beam
    width, chunksize, posteriors and reads is resumed. Posteriors need the student to have the teacher's stride."""
    folder = Path(out_dir) / TEACHER_CHUNKS
    made_by = {"teacher": str(teacher_name), "beam_width": beam_width, "chunksize": chunksize,
               "posteriors": posteriors, "reads": sorted(r.read_id or r.path for r in reads)}  # fmt: skip
    if distributed.rank() == 0 and not _made_by(folder, made_by):
        teacher = load_model(teacher_name, device)
        if posteriors and teacher.model.stride != student_stride:
            raise ConfigError(
                f"the teacher's posteriors need a student of its stride ({teacher.model.stride}), not {student_stride}"
            )
        labelled = teacher_labels(teacher, reads, chunksize, student_stride, beam_width, device, posteriors=posteriors)
        labelled.save(folder)
        with atomic_path(folder / "made_by.json") as temporary:
            temporary.write_text(json.dumps(made_by))
    distributed.barrier()
    return ChunkSet.load(folder)


def _made_by(folder: Path, made_by: dict) -> bool:
    try:
        return json.loads((folder / "made_by.json").read_text()) == made_by
    except (OSError, ValueError):
        return False
