"""The shipped models: complete model directories with a card, and the default one for each chemistry basecalls real
reads as its card says."""

from __future__ import annotations

import re

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
def test_the_default_for_r941_reads_is_the_accurate_model_and_calls_as_its_card_says(tmp_path) -> None:
    """SARS-CoV-2 R9.4.1 reads (no --model: chosen by the reads), a genome no shipped model trained on."""
    reads = shared_data("r941_sarscov2_slorado/corona_r9.blow5")
    out = tmp_path / "calls.fastq"
    result = CliRunner().invoke(cli, ["basecaller", str(reads), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "no --model given: using r9.4.1-accurate" in result.output
    summary = _sarscov2_summary(out)
    assert summary.n_reads == 100
    card = load_config(shipped_models()["r9.4.1-accurate"] / "config.toml").info
    assert summary.median_identity >= card.identity_sarscov2 - 0.015 and summary.mapped_fraction >= 0.95


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(shipped_models()))
def test_every_shipped_model_calls_within_its_cards_accuracy(tmp_path, name: str) -> None:
    """The identity each card (and `basecall models`) states, measured with benchmarks/accuracy.py, holds to 0.015:
    an R9.4.1 model's on the SARS-CoV-2 reads (config.toml [info] identity_sarscov2), an R10.4.1 model's on the real
    R10.4.1 reads it never trained on ([info] identity_held_out: at 4 kHz the 4 held-out canonical reads, at 5 kHz the
    one real 5 kHz read with truth)."""
    info = load_config(shipped_models()[name] / "config.toml").info
    if info.chemistry == "r10.4.1":
        stated = _held_out_identity(name)
        held_out = _r1041_held_out_summary if info.sample_rate_hz == 4000 else _r1041_5khz_summary
        measured = held_out(tmp_path, ["--model", name])[0].median_identity
    else:
        assert info.chemistry == "r9.4.1", f"{name}: no reads to check a {info.chemistry} model on"
        assert info.identity_sarscov2 > 0, f"{name}: no measured SARS-CoV-2 identity in config.toml [info]"
        out = tmp_path / "calls.fastq"
        reads = shared_data("r941_sarscov2_slorado/corona_r9.blow5")
        result = CliRunner().invoke(cli, ["basecaller", str(reads), "-o", str(out), "--model", name])
        assert result.exit_code == 0, result.output
        stated, measured = info.identity_sarscov2, _sarscov2_summary(out).median_identity
    assert abs(measured - stated) <= 0.015, (name, measured, stated)


def _sarscov2_summary(calls):
    with dnaio.open(calls) as records:
        called = [(record.id, record.sequence) for record in records]
    return summarise(evaluate_calls(called, Evaluator(shared_data("r941_sarscov2_slorado/nCoV-2019.reference.fasta"))))


R1041_HELD_OUT = [  # the real 4 kHz R10.4.1 reads benchmarks/recipes/r1041.sh keeps out of training: the first 4 by id
    "0a1744e6-ce36-46fd-b4c0-ceaad48f80ce", "0a79767d-6812-41a0-b57c-70494818c81d",
    "14112545-c5c6-4cac-92dd-831b18d85314", "27a1ff34-3c0b-4f8f-8a6b-08887e3e57ac",
]  # fmt: skip


def _held_out_identity(name: str) -> float:
    """The median identity on its held-out reads an R10.4.1 model's config.toml states ([info] identity_held_out)."""
    stated = load_config(shipped_models()[name] / "config.toml").info.identity_held_out
    assert stated > 0, f"{name}: no measured identity_held_out in config.toml [info]"
    return stated


def _r1041_held_out_summary(tmp_path, model_args: list[str]):
    """`basecall basecaller` (with `model_args`) on the held-out R10.4.1 reads, scored against their truth."""
    ids = tmp_path / "held_out.txt"
    ids.write_text("\n".join(R1041_HELD_OUT) + "\n")
    out = tmp_path / "r1041.fastq"
    reads = shared_data("r1041_remora/can_reads.pod5")
    result = CliRunner().invoke(cli, ["basecaller", str(reads), "-o", str(out), "--read-ids", str(ids), *model_args])
    assert result.exit_code == 0, result.output
    with dnaio.open(out) as records:
        called = [(record.id, record.sequence) for record in records]
    assert sorted(read_id for read_id, _ in called) == R1041_HELD_OUT
    summary = summarise(evaluate_calls(called, Evaluator(shared_data("derived/r1041_remora_can.truth.fasta"))))
    return summary, result


def _r1041_5khz_summary(tmp_path, model_args: list[str]):
    """`basecall basecaller` (with `model_args`) on the one real 5 kHz R10.4.1 read with truth (1,123 bases)."""
    out = tmp_path / "r1041_5khz.fastq"
    reads = shared_data("r1041_slorado/5khz_r10/one_5khz.blow5")
    result = CliRunner().invoke(cli, ["basecaller", str(reads), "-o", str(out), *model_args])
    assert result.exit_code == 0, result.output
    with dnaio.open(out) as records:
        called = [(record.id, record.sequence) for record in records]
    assert len(called) == 1
    summary = summarise(evaluate_calls(called, Evaluator(shared_data("derived/r1041_slorado_one_5khz.truth.fasta"))))
    return summary, result


@pytest.mark.parametrize("rate", ["4000 Hz", "5000 Hz"])
def test_the_r1041_models_are_listed_with_their_chemistry_sample_rate_and_identity(rate: str) -> None:
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.output.splitlines()]
    listed = [row for row in rows if row[0].startswith("r10.4.1-") and row[1:3] == ["r10.4.1", rate]]
    assert listed, result.output
    assert all(re.fullmatch(r"held-out r10\.4\.1 reads 0\.\d{3}", row[3]) for row in listed), result.output


def _chosen_r1041_model(output: str) -> str:
    """The shipped R10.4.1 model a run without --model names on stderr."""
    (name,) = re.findall(r"no --model given: using (r10\.4\.1-\S+), the shipped model for r10\.4\.1 reads", output)
    return name


@pytest.mark.shared_data
def test_the_default_for_r1041_reads_is_the_r1041_model(tmp_path) -> None:
    """Real R10.4.1 reads (FLO-PRO114M, SQK-LSK114, 4 kHz) without --model get the shipped R10.4.1 model, named on
    stderr, and it calls the reads it never trained on as its card says."""
    summary, result = _r1041_held_out_summary(tmp_path, [])
    name = _chosen_r1041_model(result.output)
    assert summary.mapped_fraction == 1.0
    assert summary.median_identity >= _held_out_identity(name) - 0.015


@pytest.mark.shared_data
def test_the_default_for_5khz_r1041_reads_is_the_5khz_model(tmp_path) -> None:
    """The real 5 kHz R10.4.1 read (FLO-PRO114M, SQK-LSK114) without --model gets the 5 kHz starter."""
    summary, result = _r1041_5khz_summary(tmp_path, [])
    name = _chosen_r1041_model(result.output)
    assert load_config(shipped_models()[name] / "config.toml").info.sample_rate_hz == 5000
    assert summary.mapped_fraction == 1.0
    assert summary.median_identity >= _held_out_identity(name) - 0.015


@pytest.mark.shared_data
def test_bf16_forward_calls_as_accurately_as_fp32(tmp_path, monkeypatch) -> None:
    """`--precision auto` runs the CPU forward pass in bf16 where the CPU has it (forced here, so CPUs without it
    check the same arithmetic, emulated) for LSTM models (GRU ones run in fp32: oneDNN has no fast bf16 GRU here).
    Measured on the SARS-CoV-2 reads with r9.4.1-small: median identity 0.798 (91% mapped) in bf16, 0.797 (91%) in
    fp32."""
    import torch

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    reads = shared_data("r941_sarscov2_slorado/corona_r9.blow5")
    evaluator = Evaluator(shared_data("r941_sarscov2_slorado/nCoV-2019.reference.fasta"))
    summaries = {}
    for precision in ("auto", "fp32"):
        out = tmp_path / f"{precision}.fastq"
        args = ["basecaller", str(reads), "-o", str(out), "--precision", precision, "-v", "--model", "r9.4.1-small"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert ("bfloat16" if precision == "auto" else "float32") in result.output
        with dnaio.open(out) as records:
            summaries[precision] = summarise(evaluate_calls([(r.id, r.sequence) for r in records], evaluator))
    assert abs(summaries["auto"].median_identity - summaries["fp32"].median_identity) <= 0.01
    assert abs(summaries["auto"].mapped_fraction - summaries["fp32"].mapped_fraction) <= 0.05


@pytest.mark.shared_data
def test_the_r1041_starter_fine_tunes_on_a_dorado_bam_in_one_command(tmp_path) -> None:
    """The model card's recipe: a folder of pod5 files + the aligned Dorado BAM with move tables, fine-tuned from the
    shipped name; the result is a model directory for the same chemistry that calls the reads."""
    pod5s = tmp_path / "pod5s"
    pod5s.mkdir()
    (pod5s / "reads.pod5").symlink_to(shared_data("r1041_remora/can_reads.pod5"))
    bam, out = shared_data("r1041_remora/can_mappings.bam"), tmp_path / "my-r10"
    args = ["train", str(pod5s), str(bam), "--model", "r10.4.1-4khz-starter", "-o", str(out), "--epochs", "2",
            "--lr", "1e-3", "--warmup-steps", "2", "--valid-fraction", "0.2", "-q"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    info = load_config(out / "config.toml").info
    assert (info.chemistry, info.sample_rate_hz) == ("r10.4.1", 4000)
    assert len((out / "training.csv").read_text().splitlines()) == 3  # header + 2 epochs
    summary, _ = _r1041_held_out_summary(tmp_path, ["--model", str(out)])
    assert summary.mapped_fraction > 0.5
