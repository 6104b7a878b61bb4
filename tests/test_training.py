"""Training: labelled-data readers, training chunks, the schedule, and short real training runs."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from basecall.cli import cli
from basecall.errors import ExitCode
from basecall.records import Calibration
from basecall.training.data import ChunkSet, LabelledRead, open_labelled, read_chunks
from basecall.training.loop import ctc_loss, learning_rate
from tests.conftest import shared_data


def labelled(n_bases: int = 600, dwell: int = 9, seed: int = 0) -> LabelledRead:
    rng = np.random.default_rng(seed)
    reference = rng.integers(1, 5, n_bases).astype(np.uint8)
    lead = 300  # unmapped samples before the first base
    ref_to_signal = lead + np.arange(n_bases + 1, dtype=np.int64) * dwell
    signal = rng.normal(0, 200, ref_to_signal[-1] + 100).astype(np.int16)
    return LabelledRead("r", signal, Calibration(0, 0.1), reference, ref_to_signal)


def test_chunks_carry_exactly_the_bases_that_start_inside_them() -> None:
    read = labelled()
    chunks = read_chunks(read, chunksize=900, stride=5)
    assert chunks.chunks.shape == (len(chunks), 900) and chunks.chunks.dtype == np.float32
    begin = int(read.ref_to_signal[0])
    for row in range(len(chunks)):
        start = begin + row * 900
        inside = (read.ref_to_signal[:-1] >= start) & (read.ref_to_signal[:-1] < start + 900)
        assert np.array_equal(chunks.references[row, : chunks.lengths[row]], read.reference[inside])
        assert not chunks.references[row, chunks.lengths[row] :].any()


def test_chunks_ctc_cannot_fit_are_dropped() -> None:
    read = labelled(dwell=6)  # 150 bases per 900-sample chunk (+ a blank between equal neighbours)
    assert len(read_chunks(read, chunksize=900, stride=8)) == 0  # 112 timesteps
    assert len(read_chunks(read, chunksize=900, stride=4)) > 0  # 225 timesteps


def test_random_offsets_change_chunks_between_epochs() -> None:
    read = labelled(n_bases=2000)
    a = read_chunks(read, 900, 5, np.random.default_rng(1))
    b = read_chunks(read, 900, 5, np.random.default_rng(2))
    assert not np.array_equal(a.chunks[0], b.chunks[0])


def test_chunk_folder_round_trip(tmp_path) -> None:
    chunks = read_chunks(labelled(), 900, 5)
    chunks.save(tmp_path / "prepared")
    (loaded,) = list(open_labelled([tmp_path / "prepared"]))
    assert isinstance(loaded, ChunkSet)
    assert np.array_equal(loaded.chunks, chunks.chunks) and np.array_equal(loaded.references, chunks.references)


def test_prepared_chunks_of_another_chunksize_are_a_one_line_error(tmp_path) -> None:
    read_chunks(labelled(), 900, 5).save(tmp_path / "prepared")
    config = tmp_path / "config.toml"
    config.write_text(
        "version = 1\n[model]\nstride = 5\ncnn_channels = 8\nresidual_blocks = 1\nrnn_layers = 1\nrnn_size = 8\n"
        "[basecaller]\nchunksize = 1000\noverlap = 100\nbatch_size = 8\n"
    )
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "prepared"), "--config", str(config), "-o", str(tmp_path / "m"), "-q"])
    assert result.exit_code == ExitCode.ERROR
    assert len(result.output.strip().splitlines()) == 1
    assert "are 900 samples long, but the model's chunksize is 1000" in result.output


def test_learning_rate_schedule() -> None:
    assert learning_rate(0, 1000, 1.0, 100) == pytest.approx(0.01)
    assert learning_rate(99, 1000, 1.0, 100) == pytest.approx(1.0)
    assert learning_rate(100, 1000, 1.0, 100) == pytest.approx(1.0)
    assert learning_rate(550, 1000, 1.0, 100) == pytest.approx(0.01 + 0.99 * 0.5)
    assert learning_rate(1000, 1000, 1.0, 100) == pytest.approx(0.01)
    values = [learning_rate(s, 1000, 1.0, 100) for s in range(100, 1001)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_ctc_loss_prefers_the_right_labels() -> None:
    labels = torch.tensor([[1, 2, 3, 0]])
    path = torch.tensor([1, 0, 2, 0, 3, 0])  # T = 6
    good = torch.full((6, 1, 5), -10.0).scatter_(2, path[:, None, None], 0.0).log_softmax(-1)
    assert ctc_loss(good, labels, torch.tensor([3])) < 0.01
    assert ctc_loss(good, torch.tensor([[4, 4, 1, 0]]), torch.tensor([3])) > 1.0


@pytest.mark.shared_data
def test_real_labelled_readers_agree_with_their_truth() -> None:
    from basecall.evaluate import read_calls

    tombo = list(open_labelled([shared_data("r941_lambda_marcpaga/fast5")]))
    assert len(tombo) == 50
    truth = dict(read_calls(shared_data("derived/r941_lambda_marcpaga.tombo_truth.fasta")))
    for read in tombo:
        assert read.sequence == truth[read.read_id]
        assert np.all(np.diff(read.ref_to_signal) > 0) and read.ref_to_signal[-1] <= len(read.signal)
    per_read = list(open_labelled([shared_data("r941_taiyaki/mapped_signal_file/mapped_reads_0.hdf5")]))
    batched = list(open_labelled([shared_data("r941_remora_mapsig_2021/can_tai_map_sig.hdf5")]))
    assert len(batched) == 10 and sum(len(r.reference) for r in batched) == 58_825
    for read in per_read + batched:
        assert set(np.unique(read.reference)) <= {1, 2, 3, 4}
        assert len(read.ref_to_signal) == len(read.reference) + 1
        assert read.ref_to_signal[-1] <= len(read.signal)
        assert len(read_chunks(read, 4000, 5)) > 0


def test_train_cli_trains_resumes_and_writes_a_usable_model(tmp_path) -> None:
    """Simulate labelled reads with a k-mer table written here, train two epochs, resume for a third, basecall."""
    import dnaio

    kmers = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT"]
    table = tmp_path / "3mer.model"
    rows = [f"{kmer}\t{60 + i}\t1.5\t1.2\t0.7" for i, kmer in enumerate(kmers)]
    table.write_text("kmer\tlevel_mean\tlevel_stdv\tsd_mean\tsd_stdv\n" + "\n".join(rows) + "\n")
    sim = tmp_path / "sim"
    args = ["simulate", "--pore-model", str(table), "--random-genome-length", "20000", "-n", "12",
            "--mean-read-length", "1500", "--seed", "3", "-o", str(sim), "-q"]  # fmt: skip
    assert CliRunner().invoke(cli, args).exit_code == 0
    config = tmp_path / "config.toml"
    config.write_text(
        "version = 1\n[model]\nstride = 5\ncnn_channels = 8\nresidual_blocks = 1\nrnn_layers = 1\nrnn_size = 8\n"
        "[basecaller]\nchunksize = 1000\noverlap = 100\nbatch_size = 8\n"
    )
    out = tmp_path / "model"
    common = [str(sim / "labels.hdf5"), "--config", str(config), "-o", str(out), "--batch-size", "4", "-q"]
    result = CliRunner().invoke(cli, ["train", *common, "--epochs", "2", "--valid-fraction", "0.25"])
    assert result.exit_code == 0, result.output
    log = list(csv.DictReader((out / "training.csv").open()))
    assert [row["epoch"] for row in log] == ["1", "2"]
    assert {"train_loss", "valid_loss", "valid_median_accuracy", "valid_median_identity"} <= set(log[0])
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and state["config"]["model"]["rnn_size"] == 8 and state["train_config"]["batch_size"] == 4
    again = CliRunner().invoke(cli, ["train", *common, "--epochs", "2"])  # a new run must not overwrite that one
    assert again.exit_code == 1 and "--resume" in again.output and len(again.output.strip().splitlines()) == 1
    assert len(list(csv.DictReader((out / "training.csv").open()))) == 2
    nothing = CliRunner().invoke(cli, ["train", *common[:3], "-o", str(tmp_path / "new"), "--resume"])
    assert nothing.exit_code == 1 and "no checkpoint.pt to resume from" in nothing.output
    result = CliRunner().invoke(cli, ["train", *common, "--epochs", "3", "--valid-fraction", "0.25", "--resume"])
    assert result.exit_code == 0, result.output
    log = list(csv.DictReader((out / "training.csv").open()))
    assert [row["epoch"] for row in log] == ["1", "2", "3"]
    assert int(log[2]["step"]) > int(log[1]["step"])
    train_losses = [float(row["train_loss"]) for row in log]  # measured: 1.764, 1.734, 1.679 (resumed for the third)
    valid_losses = [float(row["valid_loss"]) for row in log]  # measured: 1.745, 1.678, 1.597
    assert train_losses[0] > train_losses[1] > train_losses[2] and train_losses[2] < 0.97 * train_losses[0]
    assert valid_losses[0] > valid_losses[1] > valid_losses[2] and valid_losses[2] < 0.95 * valid_losses[0]
    finished = CliRunner().invoke(cli, ["train", *common, "--epochs", "3", "--valid-fraction", "0.25", "--resume"])
    assert finished.exit_code == 0 and "already holds all 3 epochs: nothing to train" in finished.output
    assert len(list(csv.DictReader((out / "training.csv").open()))) == 3
    calls = tmp_path / "calls.fastq"
    result = CliRunner().invoke(cli, ["basecaller", "-m", str(out), str(sim), "-o", str(calls), "-q"])
    assert result.exit_code == 0, result.output
    with dnaio.open(calls) as records:
        called = {record.id for record in records}
    rows = [line.split("\t") for line in (tmp_path / "calls.summary.tsv").read_text().splitlines()[1:]]
    assert len([row for row in rows if row[9] != "skipped"]) == 12  # every simulated read accounted for
    assert {row[1] for row in rows if row[9] == "called"} == called
    bigger = tmp_path / "bigger.toml"
    bigger.write_text(config.read_text().replace("rnn_size = 8", "rnn_size = 16"))
    common[2] = str(bigger)
    result = CliRunner().invoke(cli, ["train", *common, "--epochs", "4", "--resume"])
    assert result.exit_code == 1 and "architecture differs" in result.output


def test_best_model_is_picked_by_loss_while_median_accuracy_ties(tmp_path) -> None:
    """Until half the validation reads map, every epoch's median accuracy is 0: the lowest validation loss must then
    pick the saved model (it used to stay at epoch 1 however much later epochs improved)."""
    from basecall.config import BasecallerConfig, Config, ModelConfig, TrainConfig
    from basecall.model import load_model
    from basecall.training.loop import TrainingData, _valid_loss, train

    config = Config(
        model=ModelConfig(stride=5, cnn_channels=8, residual_blocks=1, rnn_layers=1, rnn_size=8),
        basecaller=BasecallerConfig(chunksize=900, overlap=100, batch_size=8),
    ).check()
    reads = [labelled(n_bases=1500, seed=seed) for seed in range(10)]
    recipe = TrainConfig(epochs=4, batch_size=4, lr=1e-2, warmup_steps=0, seed=2)
    never_mapped = lambda model, valid: {"valid_median_accuracy": 0.0}  # noqa: E731
    train(config, recipe, TrainingData(reads[:8], []), reads[8:], tmp_path, torch.device("cpu"), validate=never_mapped)
    losses = [float(row["valid_loss"]) for row in csv.DictReader((tmp_path / "training.csv").open())]
    assert min(losses) < losses[0]  # otherwise this run cannot tell the rules apart
    valid = ChunkSet.concatenate([read_chunks(r, 900, 5) for r in reads[8:]])
    with torch.no_grad():
        saved = _valid_loss(load_model(str(tmp_path)).model, valid, torch.device("cpu"))
    assert saved == pytest.approx(min(losses), rel=1e-5)
