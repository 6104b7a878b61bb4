"""The shipped models: complete model directories with a card, and the default one basecalls real reads."""

from __future__ import annotations

import dnaio
import pytest
from click.testing import CliRunner

from basecall.cli import cli
from basecall.config import load_config
from basecall.evaluate import Evaluator, evaluate_calls, summarise
from basecall.model import load_model, shipped_models
from tests.conftest import shared_data


def test_a_default_r941_model_is_shipped_with_its_card() -> None:
    shipped = shipped_models()
    assert any(load_config(path / "config.toml").info.chemistry == "r9.4.1" for path in shipped.values())
    for name, path in shipped.items():
        load_model(name)  # config and weights agree
        card = (path / "MODEL_CARD.md").read_text()
        for section in ("## Data", "## Reproduce", "## Accuracy", "## Speed"):
            assert section in card, (name, section)


@pytest.mark.shared_data
def test_the_default_model_calls_reads_of_a_genome_it_never_saw(tmp_path) -> None:
    """SARS-CoV-2 R9.4.1 reads (no --model: chosen by the reads). Measured 0.798 median identity (91% mapped) with
    the weights of 2026-11-27; this guards against a broken model or pipeline, it is not the accuracy claim (see the
    model card)."""
    reads = shared_data("r941_sarscov2_slorado/corona_r9.blow5")
    out = tmp_path / "calls.fastq"
    result = CliRunner().invoke(cli, ["basecaller", str(reads), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "no --model given: using r9.4.1-" in result.output
    with dnaio.open(out) as records:
        calls = [(record.id, record.sequence) for record in records]
    summary = summarise(evaluate_calls(calls, Evaluator(shared_data("r941_sarscov2_slorado/nCoV-2019.reference.fasta"))))
    assert summary.n_reads >= 95
    assert summary.mapped_fraction >= 0.75 and summary.median_identity >= 0.72


@pytest.mark.shared_data
def test_bf16_forward_calls_as_accurately_as_fp32(tmp_path, monkeypatch) -> None:
    """`--precision auto` runs the CPU forward pass in bf16 where the CPU has it (forced here, so CPUs without it
    check the same arithmetic, emulated). Measured on the SARS-CoV-2 reads with r9.4.1-small: median identity 0.798
    (91% mapped) in bf16, 0.797 (91%) in fp32."""
    import torch

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    reads = shared_data("r941_sarscov2_slorado/corona_r9.blow5")
    evaluator = Evaluator(shared_data("r941_sarscov2_slorado/nCoV-2019.reference.fasta"))
    summaries = {}
    for precision in ("auto", "fp32"):
        out = tmp_path / f"{precision}.fastq"
        result = CliRunner().invoke(cli, ["basecaller", str(reads), "-o", str(out), "--precision", precision, "-v"])
        assert result.exit_code == 0, result.output
        assert ("bfloat16" if precision == "auto" else "float32") in result.output
        with dnaio.open(out) as records:
            summaries[precision] = summarise(evaluate_calls([(r.id, r.sequence) for r in records], evaluator))
    assert abs(summaries["auto"].median_identity - summaries["fp32"].median_identity) <= 0.01
    assert abs(summaries["auto"].mapped_fraction - summaries["fp32"].mapped_fraction) <= 0.05
