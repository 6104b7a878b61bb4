"""The helpers of the training recipes in benchmarks/recipes/ that made shipped models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from basecall.cli import cli
from basecall.readers import open_reads
from basecall.records import Read
from basecall.training.data import read_taiyaki

RESAMPLE = Path(__file__).resolve().parents[1] / "benchmarks" / "recipes" / "resample_reads.py"


def test_resampled_reads_keep_their_bases_on_the_new_time_grid(tmp_path, three_mer_table) -> None:
    """4 kHz labelled and raw reads resampled to 5 kHz: 1.25 times the samples, each base starting 1.25 times as far
    in, the same bases and calibration, the signal at a base start what it was (linear interpolation), and the new
    rate in the pod5's run information."""
    sim = tmp_path / "sim"
    args = ["simulate", "--pore-model", str(three_mer_table), "--random-genome-length", "20000", "-n", "3",
            "--mean-read-length", "800", "--seed", "3", "--sample-rate", "4000", "-o", str(sim), "-q"]  # fmt: skip
    assert CliRunner().invoke(cli, args).exit_code == 0
    for output, inputs in ((tmp_path / "labels.hdf5", [sim / "labels.hdf5"]), (tmp_path / "reads.pod5", [sim])):
        command = [sys.executable, str(RESAMPLE), "--rate", "5000", "-o", str(output), *map(str, inputs)]
        subprocess.run(command, check=True, capture_output=True)

    before = {read.read_id: read for read in read_taiyaki(sim / "labels.hdf5")}
    after = {read.read_id: read for read in read_taiyaki(tmp_path / "labels.hdf5")}
    assert sorted(after) == sorted(before) and len(after) == 3
    for read_id, old in before.items():
        new = after[read_id]
        assert len(new.signal) == round(len(old.signal) * 1.25)
        assert np.array_equal(new.reference, old.reference) and new.calibration == old.calibration
        assert np.abs(new.ref_to_signal - old.ref_to_signal * 1.25).max() <= 0.5
        on_grid = old.ref_to_signal[:-1][old.ref_to_signal[:-1] % 4 == 0]  # base starts at a shared instant
        assert np.array_equal(new.signal[on_grid * 5 // 4], old.signal[on_grid])

    raw = {r.read_id: r for r in open_reads([tmp_path / "reads.pod5"]) if isinstance(r, Read)}
    assert sorted(raw) == sorted(before)
    for read_id, read in raw.items():
        assert read.sample_rate_hz == 5000 and read.n_samples == round(len(before[read_id].signal) * 1.25)
