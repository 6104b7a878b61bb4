"""workflow/Snakefile run for real with Snakemake: the merged shards are exactly what one `basecall basecaller` run
over the same files writes, a shard whose reads partly failed (exit 3) still merges, any other failure stops it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dnaio
import pytest
import snakemake  # noqa: F401  (in the test extra; the workflow runs through its command line below)
import yaml

from tests.conftest import shared_data

SNAKEFILE = Path(__file__).resolve().parents[1] / "workflow" / "Snakefile"
BIN = Path(sys.executable).parent  # `basecall` for the workflow's jobs, whether or not the venv is activated
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}


@pytest.fixture
def reads(tmp_path: Path) -> Path:
    """A folder of mixed real files, some in sub-folders, and one file that is not a pod5 at all."""
    folder = tmp_path / "reads"
    (folder / "lambda").mkdir(parents=True)
    (folder / "r1041").mkdir()
    for path in sorted(shared_data("r941_lambda_marcpaga", "fast5").glob("*.fast5"))[:6]:
        (folder / "lambda" / path.name).symlink_to(path)
    (folder / "batch0.fast5").symlink_to(shared_data("misc_formats", "batch0.fast5"))
    (folder / "r1041" / "can_reads.pod5").symlink_to(shared_data("r1041_remora", "can_reads.pod5"))
    (folder / "broken.pod5").write_bytes(b"not a pod5 file")
    return folder


def run_workflow(tmp_path: Path, **config) -> subprocess.CompletedProcess:
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump({"threads": 1, **config}))
    command = [sys.executable, "-m", "snakemake", "-s", SNAKEFILE, "--configfile", configfile, "--cores", "2"]
    command += ["--directory", tmp_path]
    return subprocess.run(command, check=False, env=ENV, capture_output=True, text=True, timeout=300)


def fastq_records(path: Path) -> list[tuple[str, str, str]]:
    """(read id, sequence, qualities) of each FASTQ (or BAM) record."""
    with dnaio.open(path) as records:
        return [(record.name.split()[0], record.sequence, record.qualities) for record in records]


@pytest.mark.shared_data
@pytest.mark.parametrize("calls_format", ["fastq", "bam"])
def test_sharded_calls_merge_into_one_runs_calls(
    reads: Path, tmp_path: Path, calling_model_dir: Path, calls_format: str
) -> None:
    """With a trained model's calls (each read's own: `calling_model_dir`), so records merged out of order or paired
    with the wrong read show."""
    out, suffix = tmp_path / "out", ".bam" if calls_format == "bam" else ".fastq.gz"
    config = {"inputs": [str(reads)], "model": str(calling_model_dir), "shards": 3, "outdir": str(out)}
    result = run_workflow(tmp_path, **config, format=calls_format)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((out / "shards").glob(f"*{suffix}"))) == 3

    single = tmp_path / f"single{suffix}"
    command = [BIN / "basecall", "basecaller", "--model", calling_model_dir, reads, "-o", single, "-q"]
    assert subprocess.run(command, check=False, env=ENV, capture_output=True).returncode == 3  # broken.pod5 failed

    merged = fastq_records(out / f"calls{suffix}")  # three gzip members (or BAM shards), one after another
    assert merged and merged == fastq_records(single)  # same reads, sequences, qualities and order
    assert len({sequence for _, sequence, _ in merged}) == len(merged)  # every read its own call

    summary = (out / "calls.summary.tsv").read_text()
    assert summary == (tmp_path / "single.summary.tsv").read_text()
    header, *rows = [line.split("\t") for line in summary.splitlines()]
    read_id, status = header.index("read_id"), header.index("status")
    assert header[0] == "filename" and all(row[0] != "filename" for row in rows)  # one header
    assert [Path(row[0]).name for row in rows if row[status] == "failed"] == ["broken.pod5"]  # its shard exited 3
    reads_rows = [row[read_id] for row in rows if row[status] != "failed"]
    assert len(reads_rows) == len(set(reads_rows))  # one row per read
    assert [row[read_id] for row in rows if row[status] == "called"] == [name for name, _, _ in merged]


@pytest.mark.shared_data
@pytest.mark.parametrize("strict", [False, True], ids=["no such model: exit 1", "--strict, broken.pod5: exit 3"])
def test_an_unfinished_shard_fails_the_workflow(
    strict: bool, reads: Path, tmp_path: Path, tiny_model_dir: Path
) -> None:
    out = tmp_path / "out"
    model, args = (tiny_model_dir, "--strict") if strict else (tmp_path / "no_model", "")
    config = {"inputs": [str(reads)], "model": str(model), "basecaller_args": args, "shards": 2, "outdir": str(out)}
    result = run_workflow(tmp_path, **config)
    assert result.returncode != 0
    assert "Error in rule basecall_shard" in result.stderr
    logs = "".join(log.read_text() for log in (out / "logs").glob("*.log"))
    assert ("broken.pod5" if strict else "no_model") in logs  # basecall said why
    assert not (out / "calls.fastq.gz").exists() and not (out / "calls.summary.tsv").exists()
