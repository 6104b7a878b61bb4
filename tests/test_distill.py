"""Distillation: `basecall train --teacher` labels reads without labels with a teacher's calls and trains on them."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import dnaio
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from basecall.cli import cli
from basecall.config import BasecallerConfig, Config, ModelConfig, save_config
from basecall.decoder import greedy
from basecall.errors import InputError
from basecall.model import load_model
from basecall.records import Read
from basecall.signal import scaled_signal
from basecall.rawfiles import random_reads, write_pod5
from basecall.training.data import open_labelled
from basecall.training.distill import teacher_labels
from tests.conftest import shared_data

TEACHER = "r9.4.1-fast"  # shipped: every clone has it
CHUNKSIZE = 1000


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory) -> tuple[Path, list[Read]]:
    """A pod5 file of synthetic reads without labels, and its reads."""
    reads = random_reads(6, seed=11)
    return write_pod5(reads, tmp_path_factory.mktemp("reads") / "reads.pod5"), reads


def test_each_chunk_is_labelled_with_the_teachers_call_of_that_chunk(unlabelled) -> None:
    _, reads = unlabelled
    teacher = load_model(TEACHER)
    labelled = teacher_labels(teacher, reads, CHUNKSIZE, student_stride=5, beam_width=0)
    expected_chunks = []
    for read in reads:  # a chunk every half chunk
        signal = scaled_signal(read)
        expected_chunks += [signal[s : s + CHUNKSIZE] for s in range(0, len(signal) - CHUNKSIZE + 1, CHUNKSIZE // 2)]
    kept = [i for i, chunk in enumerate(expected_chunks) if any(np.array_equal(chunk, c) for c in labelled.chunks)]
    assert len(labelled) == len(kept) >= 0.8 * len(expected_chunks)
    for row in range(0, len(labelled), 7):
        with torch.inference_mode():
            moves, bases, _ = greedy(teacher.model(torch.from_numpy(labelled.chunks[row])[None, None]))
        call = bases[0][moves[0].bool()].numpy()
        assert np.array_equal(labelled.references[row, : labelled.lengths[row]], call)
        assert not labelled.references[row, labelled.lengths[row] :].any()


def test_reads_without_labels_need_a_teacher(unlabelled) -> None:
    pod5_file, reads = unlabelled
    with pytest.raises(InputError, match="pod5 has no labels.*--teacher"):
        list(open_labelled([pod5_file]))
    assert [r.read_id for r in open_labelled([pod5_file], unlabelled=True)] == [r.read_id for r in reads]


def test_train_with_a_teacher_learns_its_calls_and_resumes_without_labelling_again(unlabelled, tmp_path) -> None:
    folder, _ = unlabelled
    config = tmp_path / "student.toml"
    save_config(Config(
        model=ModelConfig(stride=5, stride_kernel=15, cnn_channels=16, residual_blocks=1, rnn_layers=1, rnn_size=32),
        basecaller=BasecallerConfig(chunksize=CHUNKSIZE, overlap=100),
    ).check(), config)  # fmt: skip
    out = tmp_path / "student"
    args = ["train", str(folder), "--teacher", TEACHER, "--teacher-beam-width", "0", "--config", str(config),
            "-o", str(out), "--epochs", "4", "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "5"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "chunks kept" in result.output
    load_model(str(out))
    with open(out / "training.csv") as handle:
        losses = [float(row["train_loss"]) for row in csv.DictReader(handle)]
    assert len(losses) == 4 and losses[-1] < 0.9 * losses[0]
    labels = (out / "teacher_chunks" / "references.npy").stat().st_mtime_ns
    result = CliRunner().invoke(cli, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert "nothing to train" in result.output and "chunks kept" not in result.output
    assert (out / "teacher_chunks" / "references.npy").stat().st_mtime_ns == labels


@pytest.mark.shared_data
def test_a_real_teachers_chunk_labels_match_its_published_calls_of_those_reads(tmp_path) -> None:
    """Two Klebsiella reads: r9.4.1-accurate (DeepNano-blitz rnn96, beam 5) labels chunks of 4,000 samples; each
    label aligns to DeepNano-blitz's own published call of the whole read (rnn64, beam 5)."""
    from basecall.evaluate import Evaluator
    from basecall.readers import open_reads

    folder = shared_data("r941_deepnano_blitz/klebsiella_fast5")
    reads = [r for r in open_reads(sorted(folder.glob("*.fast5"))[:2])]
    with dnaio.open(shared_data("r941_deepnano_blitz/klebsiella_expected_rnn64_beam5_2020.fastq")) as records:
        published = {r.id: r.sequence for r in records}
    teacher = load_model("r9.4.1-accurate")
    identities = []
    for read in reads:
        labelled = teacher_labels(teacher, [read], 4000, student_stride=5, beam_width=5)
        fasta = tmp_path / f"{read.read_id}.fasta"
        fasta.write_text(f">{read.read_id}\n{published[read.read_id]}\n")
        evaluator = Evaluator(fasta)
        for row in range(len(labelled)):
            label = "".join("NACGT"[b] for b in labelled.references[row, : labelled.lengths[row]])
            identities.append(evaluator.evaluate(f"chunk{row}", label).identity)
    assert len(identities) >= 20
    assert statistics.median(identities) >= 0.85


def test_teacher_posteriors_are_kept_per_timestep_and_learnt_by_kl_divergence(unlabelled) -> None:
    from basecall.training.loop import teacher_divergence

    _, reads = unlabelled
    teacher = load_model(TEACHER)  # stride 3
    labelled = teacher_labels(teacher, reads[:3], 1200, student_stride=3, beam_width=0, posteriors=True)
    assert labelled.posteriors.shape == (len(labelled), 400, 5) and labelled.posteriors.dtype == np.float16
    with torch.inference_mode():
        log_probs = teacher.model(torch.from_numpy(labelled.chunks[:4]).unsqueeze(1))  # (400, 4, 5)
    assert np.allclose(labelled.posteriors[:4], log_probs.exp().transpose(0, 1).numpy(), atol=1e-3)
    posteriors = torch.from_numpy(labelled.posteriors[:4])
    assert teacher_divergence(log_probs, posteriors) < 1e-2  # the teacher against itself: float16 rounding only
    uniform = torch.full_like(log_probs, -np.log(5.0))
    assert teacher_divergence(uniform, posteriors) > 0.5
    without = posteriors.clone()
    without[1:] = 0  # rows of zeros: chunks without posteriors (labelled reads) do not count
    assert torch.isclose(teacher_divergence(uniform, without), teacher_divergence(uniform[:, :1], posteriors[:1]))


def test_teacher_posteriors_need_the_teachers_stride(unlabelled, tmp_path) -> None:
    folder, _ = unlabelled
    config = tmp_path / "student.toml"
    save_config(Config(model=ModelConfig(stride=5, cnn_channels=8, residual_blocks=1, rnn_layers=1, rnn_size=8),
                       basecaller=BasecallerConfig(chunksize=CHUNKSIZE, overlap=100)).check(), config)  # fmt: skip
    args = ["train", str(folder), "--teacher", TEACHER, "--teacher-weight", "1", "--config", str(config),
            "-o", str(tmp_path / "out"), "--epochs", "1"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "basecall: error: the teacher's posteriors need a student of its stride (3), not 5"
    )
