"""Chemistry from what a file says, the model a run uses for it, and old fast5 files without read ids.

Without --model a run uses one shipped model and refuses, per read, the reads it does not fit; with --model every read
is called and a mismatch is one warning. Shipped models are stood in for by copies of the tiny test model (fast, and
independent of which models ship today), except where the real R10.4 file is refused.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner

from basecall.chemistry import Chemistry, check_fit, chemistry_of, choose_model, select_model
from basecall.cli import cli
from basecall.config import InfoConfig, load_config, save_config
from basecall.errors import ExitCode
from basecall.records import Failure, Read
from basecall.rawfiles import random_reads, write_fast5, write_pod5
from tests.conftest import shared_data
from tests.test_robustness import fastq_records, summary_rows


def a_read(flow_cell: str | None, kit: str | None, rate: float) -> Read:
    read = random_reads(1, seed=0)[0]
    return replace(read, flow_cell_product_code=flow_cell, sequencing_kit=kit, sample_rate_hz=float(rate))


@pytest.mark.parametrize(
    "flow_cell, kit, rate, chemistry",
    [
        ("FLO-MIN106", "sqk-lsk109", 4000, "r9.4.1"), ("FLO-FLG001", "sqk-lsk109", 4000, "r9.4.1"),
        ("FLO-PRO002", None, 4000, "r9.4.1"), ("flo-min106", None, 4000, "r9.4.1"),  # old fast5s: in lower case
        ("FLO-MIN111", "sqk-lsk109", 4000, "r10.3"),
        ("FLO-MIN112", None, 4000, "r10.4"), ("FLO-PRO112", "sqk-q20ea", 4000, "r10.4"),
        ("FLO-MIN114", None, 5000, "r10.4.1"), ("FLO-FLG114", None, 5000, "r10.4.1"),
        ("FLO-PRO114", None, 5000, "r10.4.1"), ("FLO-PRO114M", "sqk-lsk114", 4000, "r10.4.1"),
        ("FLO-MIN111", "sqk-lsk114", 5000, "r10.3"),  # the flow cell before the kit and the sample rate
        (None, "sqk-lsk114", 4000, "r10.4.1"), (None, "SQK-RBK114-96", 4000, "r10.4.1"),  # the kit before the rate
        (None, "sqk-nbd114-24", 5000, "r10.4.1"), (None, "sqk-lsk112", 4000, "r10.4"),
        (None, "sqk-q20ea", 4000, "r10.4"),
        (None, None, 5000, "r10.4.1"), (None, "sqk-lsk109", 5000, "r10.4.1"), ("FLO-NEW999", None, 5000, "r10.4.1"),
        (None, None, 6024, None), (None, "sqk-lsk109", 3012, None),  # nothing tells
    ],
)  # fmt: skip
def test_chemistry_from_flow_cell_then_kit_then_sample_rate(flow_cell, kit, rate, chemistry) -> None:
    assert chemistry_of(a_read(flow_cell, kit, rate)) == Chemistry(chemistry)


@pytest.mark.parametrize("flow_cell, kit", [(None, None), (None, "sqk-lsk109"), ("FLO-NEW999", "sqk-rad004")])
def test_4khz_alone_is_only_a_guess(flow_cell, kit) -> None:
    assert chemistry_of(a_read(flow_cell, kit, 4000)) == Chemistry("r9.4.1", guessed=True)


def test_the_accurate_model_is_preferred_and_none_fits_other_reads() -> None:
    r941, r1041 = InfoConfig("r9.4.1", 4000), InfoConfig("r10.4.1", 5000)
    shipped = {"r9.4.1-fast": r941, "r9.4.1-accurate": r941, "r10.4.1-fast": r1041}
    assert select_model(a_read("FLO-MIN106", None, 4000), shipped) == "r9.4.1-accurate"
    assert select_model(a_read(None, "sqk-lsk114", 5000), shipped) == "r10.4.1-fast"
    assert select_model(a_read("FLO-PRO114M", None, 4000), shipped) is None  # r10.4.1 at 4 kHz
    assert select_model(a_read("FLO-PRO112", None, 4000), shipped) is None


def test_a_mismatched_model_is_one_warning_naming_both(caplog: pytest.LogCaptureFixture) -> None:
    reads = [a_read("FLO-PRO112", "sqk-q20ea", 4000)] * 3 + [a_read(None, None, 4000)] * 2
    with caplog.at_level(logging.WARNING, logger="basecall"):
        assert list(check_fit(reads, "tiny", InfoConfig("r9.4.1", 4000))) == reads
    assert [record.getMessage().split(": ", 1)[1] for record in caplog.records] == [
        "r10.4 reads (FLO-PRO112, SQK-Q20EA, 4000 Hz), but the model tiny is for r9.4.1 reads at 4000 Hz",
        "probably r9.4.1 reads (no flow cell or kit recorded, 4000 Hz): the chemistry is guessed from the sample rate "
        "(R10.4 and early R10.4.1 runs were sampled at 4000 Hz too); if these are not r9.4.1 reads, pass --model",
    ]


@pytest.fixture()
def shipped(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Stand-in shipped models: the tiny model for R9.4.1 at 4 kHz (two of them) and R10.4.1 at 5 kHz."""
    models = {}
    for name, chemistry, rate in [
        ("r9.4.1-fast", "r9.4.1", 4000), ("r9.4.1-accurate", "r9.4.1", 4000), ("r10.4.1-fast", "r10.4.1", 5000)
    ]:  # fmt: skip
        models[name] = Path(shutil.copytree(tiny_model_dir, tmp_path / "models" / name))
        config = load_config(models[name] / "config.toml")
        save_config(replace(config, info=InfoConfig(chemistry, rate)), models[name] / "config.toml")
    monkeypatch.setattr("basecall.model.shipped_models", lambda: models)
    return models


def reads_of(seed: int, flow_cell: str | None, kit: str | None, rate: float = 4000.0, n: int = 2) -> list[Read]:
    reads = random_reads(n, seed, sample_rate_hz=rate)
    return [replace(read, flow_cell_product_code=flow_cell, sequencing_kit=kit) for read in reads]


def test_a_mixed_run_calls_the_reads_one_model_fits_and_refuses_the_others(tmp_path: Path, shipped) -> None:
    folder = tmp_path / "reads"
    folder.mkdir()
    r104 = write_pod5(reads_of(1, "FLO-PRO112", "sqk-q20ea"), folder / "a_r104.pod5")  # before the first fitting read
    r941 = reads_of(2, "FLO-MIN106", "sqk-lsk109", n=3)
    write_pod5(r941, folder / "b_r941.pod5")
    write_pod5(reads_of(3, "FLO-PRO114M", "sqk-lsk114", rate=5000.0), folder / "c_r1041.pod5")
    out = tmp_path / "calls.fastq"
    result = CliRunner().invoke(cli, ["basecaller", str(folder), "-o", str(out)])
    assert result.exit_code == ExitCode.READS_FAILED, result.output
    assert "no --model given: using r9.4.1-accurate" in result.stderr
    assert set(fastq_records(out)) == {read.read_id for read in r941}
    rows = summary_rows(tmp_path / "calls.summary.tsv")
    assert [(Path(row["filename"]).name, row["status"]) for row in rows] == [
        ("a_r104.pod5", "failed"), ("a_r104.pod5", "failed"), *[("b_r941.pod5", "called")] * 3,
        ("c_r1041.pod5", "failed"), ("c_r1041.pod5", "failed"),
    ]  # fmt: skip
    assert rows[0]["reason"] == "no shipped model for r10.4 reads (FLO-PRO112, SQK-Q20EA, 4000 Hz); pass --model"
    assert rows[0]["num_samples"] and rows[0]["run_id"]  # the refused read's metadata is in its row
    assert rows[-1]["reason"] == (
        "r10.4.1 reads (FLO-PRO114M, SQK-LSK114, 5000 Hz) need r10.4.1-fast, but this run uses r9.4.1-accurate "
        "(one model per run): call them in a run of their own"
    )
    assert f"{r104} read " in result.stderr  # each failed read is named on stderr, as every failure


@pytest.mark.shared_data
def test_real_r104_reads_are_refused_without_a_model(tmp_path: Path) -> None:
    """The issue's reads: R10.4 (FLO-PRO112, SQK-Q20EA, 4 kHz), which an R9.4.1 model turned into confident noise.
    No shipped model is for R10.4, so every read fails, and nothing is called."""
    reads = shared_data("r1041_dorado/multi_read_pod5/filtered.pod5")
    out = tmp_path / "calls.fastq"
    result = CliRunner().invoke(cli, ["basecaller", str(reads), "-o", str(out)])
    assert result.exit_code == ExitCode.READS_FAILED, result.output
    reason = "no shipped model for r10.4 reads (FLO-PRO112, SQK-Q20EA, 4000 Hz); pass --model"
    rows = summary_rows(tmp_path / "calls.summary.tsv")
    assert len(rows) == 4 and all(row["status"] == "failed" and row["reason"] == reason for row in rows)
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert errors == [f"basecall: ERROR: {reads} read {row['read_id']}: {reason}" for row in rows]
    assert out.read_text() == ""
    assert "0 reads called, 0 filtered, 4 failed" in result.stderr


@pytest.mark.shared_data
def test_real_r104_reads_with_a_mismatched_model_give_one_warning(tmp_path: Path, tiny_model_dir: Path) -> None:
    reads = shared_data("r1041_dorado/multi_read_pod5/filtered.pod5")
    out = tmp_path / "calls.fastq"
    result = CliRunner().invoke(cli, ["basecaller", "-m", str(tiny_model_dir), str(reads), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"basecall: WARNING: {reads}: r10.4 reads (FLO-PRO112, SQK-Q20EA, 4000 Hz), but the model tiny is for "
        "r9.4.1 reads at 4000 Hz"
    ]
    rows = summary_rows(tmp_path / "calls.summary.tsv")
    assert len(rows) == 4 and all(row["status"] in ("called", "filtered") for row in rows)


def test_a_run_nothing_fits_exits_3_without_a_model(tmp_path: Path, shipped) -> None:
    folder = tmp_path / "reads"
    folder.mkdir()
    write_pod5(reads_of(4, None, None, rate=6000.0), folder / "odd.pod5")
    out = tmp_path / "calls.bam"
    result = CliRunner().invoke(cli, ["basecaller", str(folder), "-o", str(out)])
    assert result.exit_code == ExitCode.READS_FAILED, result.output
    reason = "no shipped model for reads of unknown chemistry (no flow cell or kit recorded, 6000 Hz); pass --model"
    assert [row["reason"] for row in summary_rows(tmp_path / "calls.summary.tsv")] == [reason, reason]
    assert fastq_records(out) == {}
    assert "no read to call: nothing needs a model" in result.stderr


def old_fast5(read: Read, path: Path, run_id: bool = True) -> Path:
    """A single-read fast5 as old MinKNOW wrote it (file_version 1.0): Raw/Reads/Read_<n> without a read_id."""
    write_fast5([read], path, layout="single")
    with h5py.File(path, "r+") as handle:
        handle.attrs["file_version"] = "1.0"
        (raw,) = handle["Raw/Reads"].values()
        del raw.attrs["read_id"]
        if not run_id:
            del handle["UniqueGlobalKey/tracking_id"].attrs["run_id"]
    return path


def test_old_fast5_without_read_ids_are_named_and_called(tmp_path: Path, tiny_model_dir: Path) -> None:
    first, second = random_reads(2, seed=6, n_runs=2)
    folder = tmp_path / "reads"
    folder.mkdir()
    old_fast5(first, folder / "a.fast5")
    old_fast5(second, folder / "chiron_read.fast5", run_id=False)
    out = tmp_path / "calls.fastq"
    args = ["basecaller", "-m", str(tiny_model_dir), str(folder), "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    named = f"{first.run_id}_{first.read_number}"
    assert set(fastq_records(out)) == {named, "chiron_read"}
    assert f"a.fast5: an old fast5 file without a read_id: its read is named {named}" in result.stderr  # via the worker
    shutil.copy(folder / "a.fast5", folder / "b.fast5")  # another file with the same run id and read number
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == ExitCode.READS_FAILED
    rows = {Path(row["filename"]).name: row for row in summary_rows(tmp_path / "calls.summary.tsv")}
    assert rows["b.fast5"]["status"] == "failed" and "duplicate read id" in rows["b.fast5"]["reason"]


def test_choose_model_keeps_every_item_in_order(shipped) -> None:
    failure = Failure("x.pod5", "not a readable pod5 file")
    r104, r941 = reads_of(1, "FLO-PRO112", None, n=1), reads_of(2, "FLO-MIN106", None, n=1)
    r1041 = reads_of(3, None, "sqk-lsk114", 5000.0, n=1)
    name, items = choose_model([failure, *r104, *r941, *r1041, *r941])
    items = list(items)
    assert name == "r9.4.1-accurate"
    assert [type(item) for item in items] == [Failure, Failure, Read, Failure, Read]
    assert items[0] is failure and items[1].read.signal.size == 0  # refused reads hold no signal
    assert choose_model(r104)[0] is None


def test_reads_after_the_lookahead_are_refused_when_none_before_fits(shipped, monkeypatch) -> None:
    monkeypatch.setattr("basecall.chemistry.LOOKAHEAD", 2)
    r104, r941 = reads_of(1, "FLO-PRO112", None, n=2), reads_of(2, "FLO-MIN106", None, n=1)
    name, items = choose_model([*r104, *r941])
    assert name is None
    assert [item.reason for item in items][1:] == [
        "no shipped model for r10.4 reads (FLO-PRO112, 4000 Hz); pass --model",
        "r9.4.1 reads (FLO-MIN106, 4000 Hz) need r9.4.1-accurate, but this run calls no read (none of its first 2 "
        "reads fits a shipped model): call them in a run of their own",
    ]
