"""Basecall the real files in ../shared/data end to end: every read comes out exactly once, as valid FASTQ."""

from __future__ import annotations

from collections import Counter

import dnaio
import pytest
from click.testing import CliRunner

from basecall.cli import cli
from tests.conftest import shared_data

SETS = {
    "lambda single-read gzip fast5, 4 kHz": (["r941_lambda_marcpaga/fast5"], 50),
    "R10.4.1 pod5, 4 kHz": (["r1041_remora/can_reads.pod5"], 14),
    "VBZ multi-read fast5": (["misc_formats/batch0.fast5"], 8),
    "gzip multi-read fast5": (["misc_formats/multi_fast5_zip.fast5"], 10),
    "single and multi fast5 of the same reads": (["r941_taiyaki/reads", "r941_taiyaki/multireads"], 10),
    "pod5, 5 kHz": (["r1041_dorado/duplex/pod5"], 4),
    "blow5, 4 kHz": (["r941_sarscov2_slorado/corona_r9.blow5"], 100),
}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", list(SETS))
def test_every_read_out_exactly_once(name: str, tmp_path, tiny_model_dir) -> None:
    parts, expected = SETS[name]
    inputs = [str(shared_data(part)) for part in parts]
    out, summary = tmp_path / "calls.fastq", tmp_path / "summary.tsv"
    result = CliRunner().invoke(
        cli, ["basecaller", "-m", str(tiny_model_dir), *inputs, "-o", str(out), "--summary", str(summary), "-q"]
    )
    duplicated = name == "single and multi fast5 of the same reads"  # the same 5 reads in two layouts
    assert result.exit_code == (3 if duplicated else 0), result.output
    with dnaio.open(out) as records:
        ids = Counter(record.id for record in records)
    rows = [line.split("\t") for line in summary.read_text().splitlines()[1:]]
    summary_ids = Counter(row[1] for row in rows)
    assert sum(summary_ids.values()) == expected
    called = Counter(row[1] for row in rows if row[9] == "called")
    assert ids == called  # every called read is in the FASTQ, nothing else is
    assert set(ids.values()) == {1}  # and only once
    if duplicated:  # the first copy is called, the second fails as a duplicate naming the first file
        assert set(summary_ids.values()) == {2} and len(ids) == 5
        second = [row for row in rows if row[9] == "failed"]
        assert len(second) == 5 and all("duplicate read id: already read from" in row[10] for row in second)
    else:
        assert set(summary_ids.values()) == {1}
        assert all(row[9] in ("called", "filtered") for row in rows)
