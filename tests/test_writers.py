"""FASTQ records and summary rows, checked against a real FASTQ parser."""

from __future__ import annotations

import gzip
from datetime import datetime, timezone

import dnaio
import numpy as np

from basecall.records import Calibration, CalledRead, Failure, Read
from basecall.writers import filter_reason, write_results
from basecall.writers.fastq import FastqWriter, fastq_record
from basecall.writers.summary import COLUMNS, SummaryWriter

READ = Read(
    read_id="0a79767d-6812-41a0-b57c-70494818c81d",
    signal=np.empty(0, np.int16),
    calibration=Calibration(-253.0, 0.146),
    sample_rate_hz=4000.0,
    run_id="20520af6",
    channel=907,
    start_sample=8000,
    path="reads/x.pod5",
    read_number=14643,
    acquisition_start=datetime(2022, 5, 16, 21, 31, 54, tzinfo=timezone.utc),
    flow_cell_id="PAK29931",
)


def called(sequence: str = "ACGTTGCA", quality: int = 20) -> CalledRead:
    return CalledRead(READ, 4000, sequence, np.full(len(sequence), quality, np.uint8), np.zeros(800, np.uint8), 5)


def test_fastq_record_format() -> None:
    assert fastq_record(called(), "r9.4.1-fast") == (
        "@0a79767d-6812-41a0-b57c-70494818c81d runid=20520af6 read=14643 ch=907 start_time=2022-05-16T21:31:56Z "
        "flow_cell_id=PAK29931 model=r9.4.1-fast mean_qscore=20.00 samples=4000\n"
        "ACGTTGCA\n+\n55555555\n"
    )


def test_mean_qscore_averages_error_probabilities() -> None:
    read = CalledRead(READ, 100, "AC", np.array([10, 30], np.uint8), np.zeros(20, np.uint8))
    assert abs(read.mean_qscore - (-10 * np.log10((0.1 + 0.001) / 2))) < 1e-9


def test_write_results_accounts_for_every_read(tmp_path) -> None:
    items = [called(), Failure("bad.fast5", "not a readable fast5"), called(""), called("ACGT", 5)]
    out, summary_path = tmp_path / "calls.fastq.gz", tmp_path / "summary.tsv"
    with FastqWriter(str(out), "m") as fastq, SummaryWriter(str(summary_path)) as summary:
        tally = write_results(items, fastq, summary, min_qscore=7)
    assert (tally.called, tally.filtered, tally.failed) == (1, 2, 1)
    with gzip.open(out, "rt") as handle:  # really gzip
        assert handle.readline().startswith("@0a79767d")
    with dnaio.open(out) as records:
        assert [r.sequence for r in records] == ["ACGTTGCA"]
    rows = [dict(zip(COLUMNS, line.split("\t"))) for line in summary_path.read_text().splitlines()[1:]]
    assert [r["status"] for r in rows] == ["called", "failed", "filtered", "filtered"]
    assert rows[1]["filename"] == "bad.fast5" and rows[1]["reason"] == "not a readable fast5"
    assert rows[2]["reason"] == "no bases called"
    assert rows[3]["reason"] == "mean_qscore 5.00 < min_qscore 7"
    assert rows[0]["duration"] == "1.000" and rows[0]["sequence_length"] == "8"
    assert all(len(line.split("\t")) == len(COLUMNS) for line in summary_path.read_text().splitlines())


def test_filter_reason() -> None:
    assert filter_reason(called(), 0) is None
    assert filter_reason(called(quality=9), 10) == "mean_qscore 9.00 < min_qscore 10"
