"""Training on two processes under torchrun (gloo on CPU): the ranks stay in step, train on different chunks, only
rank 0 writes, and a resumed run trains exactly like an uninterrupted one.

torchrun runs this file as each rank's program (`_rank_main`): the `basecall` command, plus a record of the rank's
training losses and final weights, and a failure if any rank but 0 writes a checkpoint or model.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from basecall.cli import cli

DUMP = "BASECALL_TEST_DDP_DUMP"


def _rank_main() -> None:
    import safetensors.torch

    from basecall.cli import main
    from basecall.training import loop

    rank = int(os.environ["RANK"])
    models: list[torch.nn.Module] = []
    losses: list[float] = []
    ctc_loss, save = loop.ctc_loss, torch.save

    class RecordedModel(loop.Model):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            models.append(self)

    def recorded_loss(*args: torch.Tensor) -> torch.Tensor:
        loss = ctc_loss(*args)
        if torch.is_grad_enabled():  # a training step, not validation
            losses.append(loss.item())
        return loss

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"rank {rank} wrote a file")

    loop.Model, loop.ctc_loss = RecordedModel, recorded_loss
    if rank != 0:
        torch.save = safetensors.torch.save_file = refuse
    try:
        main()
    except SystemExit as e:
        if e.code:
            raise
    params = {name: p.detach() for name, p in models[-1].named_parameters()}
    save({"params": params, "losses": losses}, Path(os.environ[DUMP]) / f"rank{rank}.pt")


def torchrun(args: list[str], dump: Path) -> list[dict]:
    """Run `basecall ARGS` on two ranks; return each rank's record."""
    dump.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", DUMP: str(dump)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", __file__, *args]
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return [torch.load(dump / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[name], b[name]) for name in a)


@pytest.fixture
def labelled_data(tmp_path: Path, three_mer_table: Path) -> tuple[Path, Path]:
    """Simulated labelled reads (12 reads of a 3-mer pore model) and a tiny config."""
    args = ["simulate", "--pore-model", str(three_mer_table), "--random-genome-length", "20000", "-n", "12",
            "--mean-read-length", "1500", "--seed", "3", "-o", str(tmp_path / "sim"), "--format", "pod5", "-q"]  # fmt: skip
    assert CliRunner().invoke(cli, args).exit_code == 0
    config = tmp_path / "config.toml"
    config.write_text(
        "version = 1\n[model]\nstride = 5\ncnn_channels = 8\nresidual_blocks = 1\nrnn_layers = 1\nrnn_size = 8\n"
        "[basecaller]\nchunksize = 1000\noverlap = 100\nbatch_size = 8\n"
    )
    return tmp_path / "sim" / "labels.hdf5", config


def test_two_ranks_train_in_step_write_once_and_resume_exactly(tmp_path: Path, labelled_data) -> None:
    labels, config = labelled_data
    common = ["train", str(labels), "--config", str(config), "--batch-size", "4", "--valid-fraction", "0.25", "-q"]
    out = tmp_path / "model"

    rank0, rank1 = torchrun([*common, "-o", str(out), "--epochs", "1"], tmp_path / "first")
    assert_same_weights(rank0["params"], rank1["params"])  # gradients are averaged over the ranks
    assert len(rank0["losses"]) == len(rank1["losses"]) > 0
    assert rank0["losses"] != rank1["losses"]  # each rank trains on its own share of the chunks
    (row,) = csv.DictReader((out / "training.csv").open())  # rank 0 alone logs
    assert int(row["step"]) == len(rank0["losses"])
    assert float(row["train_loss"]) == pytest.approx(sum(rank0["losses"] + rank1["losses"]) / (2 * int(row["step"])))
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1
    assert_same_weights({name: state["model"][name] for name in rank0["params"]}, rank0["params"])

    rank0, rank1 = torchrun([*common, "-o", str(out), "--epochs", "2", "--resume"], tmp_path / "resumed")
    assert_same_weights(rank0["params"], rank1["params"])
    log = list(csv.DictReader((out / "training.csv").open()))
    assert [row["epoch"] for row in log] == ["1", "2"]
    assert int(log[1]["step"]) == int(log[0]["step"]) + len(rank0["losses"])

    straight = tmp_path / "straight"
    torchrun([*common, "-o", str(straight), "--epochs", "2"], tmp_path / "straight-dump")
    resumed, uninterrupted = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (out, straight))
    assert resumed["step"] == uninterrupted["step"] == int(log[1]["step"]) and uninterrupted["epoch"] == 2
    assert_same_weights(resumed["model"], uninterrupted["model"])
    straight_log = list(csv.DictReader((straight / "training.csv").open()))
    assert [row["train_loss"] for row in straight_log] == [row["train_loss"] for row in log]


if __name__ == "__main__":
    _rank_main()
