"""Per-base errors from alignments, quality calibration (qscale/qbias) and its use by the decoder."""

from __future__ import annotations

import json
from pathlib import Path

import mappy
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from basecall.cli import cli
from basecall.config import Config, ModelConfig
from basecall.decoder import calibrate_qualities, greedy, make_decoder
from basecall.errors import ConfigError
from basecall.evaluate import Evaluator
from basecall.qscores import quality_calibration


@pytest.fixture(scope="module")
def genome(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    rng = np.random.default_rng(7)
    sequence = "".join(rng.choice(list("ACGT"), 20_000))
    path = tmp_path_factory.mktemp("ref") / "ref.fa"
    path.write_text(f">chr\n{sequence}\n")
    return sequence, path


@pytest.mark.parametrize("reverse", [False, True])
def test_base_errors_mark_exactly_the_mismatched_and_inserted_bases(genome, reverse: bool) -> None:
    sequence, path = genome
    read = list(sequence[5_000:8_000])
    read[1_000] = {"A": "C", "C": "G", "G": "T", "T": "A"}[read[1_000]]  # mismatch at read position 1000
    read.insert(2_000, "A" * 1 if read[1_999] != "A" and read[2_000] != "A" else "C")  # one inserted base at 2000
    read = "".join(read)
    expected = np.zeros(len(read), np.int8)
    expected[[1_000, 2_000]] = 1
    if reverse:
        read, expected = mappy.revcomp(read), expected[::-1]
    errors = Evaluator(path, preset="map-ont").base_errors(read)
    assert errors is not None and errors.shape == (len(read),)
    aligned = errors >= 0
    assert aligned.sum() > 0.99 * len(read)  # at most the ends are clipped
    assert np.array_equal(errors[aligned], expected[aligned])


def test_base_errors_of_an_unmapped_read_is_none(genome) -> None:
    _, path = genome
    junk = "".join(np.random.default_rng(3).choice(list("ACGT"), 3_000))
    assert Evaluator(path, preset="map-ont").base_errors(junk) is None


def test_calibration_recovers_a_known_miscalibration() -> None:
    rng = np.random.default_rng(0)
    reads = []
    for _ in range(200):
        predicted = rng.integers(3, 30, 1_000).astype(np.uint8)
        true_phred = 0.6 * predicted + 2.5  # the "decoder" is over-confident above Q6
        errors = (rng.random(1_000) < 10 ** (-true_phred / 10)).astype(np.int8)
        errors[:10] = -1  # clipped bases are ignored
        reads.append((predicted, errors))
    calibration = quality_calibration(reads)
    assert calibration.qscale == pytest.approx(0.6, abs=0.05)
    assert calibration.qbias == pytest.approx(2.5, abs=0.6)
    rows = calibration.rows()
    assert sum(row["bases"] for row in rows) == 200 * 990
    assert all(row["observed_q"] is None or row["observed_q"] > 0 for row in rows)


def test_decoder_applies_the_models_calibration() -> None:
    log_probs = torch.log_softmax(torch.randn(50, 4, 5) * 3, dim=-1)
    moves, bases, qualities = greedy(log_probs)
    _, _, calibrated = make_decoder(0, qscale=0.5, qbias=3.0)(log_probs)
    assert torch.equal(calibrated, calibrate_qualities(qualities, moves, 0.5, 3.0))
    starts = moves.bool()
    expected = (0.5 * qualities[starts].float() + 3.0).round().to(torch.uint8)
    assert torch.equal(calibrated[starts], expected) and not calibrated[~starts].any()
    assert make_decoder(0) is greedy  # identity calibration: no wrapper


def test_config_rejects_a_non_positive_qscale() -> None:
    with pytest.raises(ConfigError, match="qscale"):
        Config(model=ModelConfig(stride=5)).check().with_basecaller(qscale=0.0)


def test_evaluate_qscores_reports_the_table(genome, tmp_path: Path) -> None:
    sequence, path = genome
    rng = np.random.default_rng(1)
    records = []
    for i in range(20):
        start = int(rng.integers(0, 15_000))
        read = sequence[start : start + 3_000]
        qualities = "".join(chr(33 + q) for q in rng.integers(5, 25, len(read)))
        records.append(f"@r{i}\n{read}\n+\n{qualities}\n")
    calls = tmp_path / "calls.fastq"
    calls.write_text("".join(records))
    result = CliRunner().invoke(cli, ["evaluate", str(calls), "-r", str(path), "--qscores", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "predicted Q" in result.output
    report = json.loads((tmp_path / "r.json").read_text())["qscores"]
    assert sum(row["bases"] for row in report["table"]) == 20 * 3_000  # every base aligned, none an error
    assert all(row["errors"] == 0 for row in report["table"])
