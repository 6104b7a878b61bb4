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
    """SARS-CoV-2 R9.4.1 reads (no --model: chosen by the reads). Measured 0.77 median identity when shipped; this
    guards against a broken model or pipeline, it is not the accuracy claim (see the model card)."""
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
