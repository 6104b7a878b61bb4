"""The command line, through click's CliRunner and the installed console script."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import dnaio
import numpy as np
import pytest
from click.testing import CliRunner

from basecall.cli import SUBCOMMANDS, cli
from basecall.errors import ExitCode

README = Path(__file__).resolve().parents[1] / "README.md"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def commands() -> dict[str, click.Command]:
    """Every subcommand by its words after `basecall` ("basecaller", "models import", ...)."""
    found = {}
    with click.Context(cli) as ctx:
        for name in cli.list_commands(ctx):
            command = cli.get_command(ctx, name)
            found[name] = command
            if isinstance(command, click.Group):
                for sub in command.list_commands(ctx):
                    found[f"{name} {sub}"] = command.get_command(ctx, sub)
    return found


def shown_options(command: click.Command) -> dict[str, set[str]]:
    """The options --help shows, by parameter name: their spellings (old names, kept working but hidden, left out)."""
    return {
        param.name: {*param.opts, *param.secondary_opts} - set(getattr(param, "old_names", ()))
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and param.name != "help"
    }


@pytest.mark.parametrize("words", [[]] + [name.split() for name in sorted(commands())])
def test_help_of_every_subcommand_shows_help_and_a_default_for_every_option(words: list[str]) -> None:
    result = CliRunner().invoke(cli, [*words, "--help"], prog_name="basecall", catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output.startswith(f"Usage: basecall {' '.join(words)}".rstrip())
    command = commands()[" ".join(words)] if words else cli
    with click.Context(command, info_name=" ".join(words)) as ctx:
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden or param.name in ("help", "version"):
                continue
            record = param.get_help_record(ctx)
            assert record and param.help, f"{words} {param.opts}: no help"
            takes_a_value = not (param.is_flag or param.count)
            if takes_a_value and not param.required:
                assert "[default:" in record[1], f"{words} {param.opts}: no default shown"
            for old in getattr(param, "old_names", ()):
                assert not re.search(re.escape(old) + r"(?![\w-])", result.output), f"{words}: {old} is shown"


def readme_usage() -> dict[str, set[str]]:
    """The options each `basecall ...` line of the README's usage block names, by subcommand."""
    text = README.read_text()
    block = re.search(r"## Usage\n+```text\n(.*?)```", text, re.S)
    assert block, "README.md has no ```text block under ## Usage"
    usage: dict[str, set[str]] = {}
    name = None
    for line in block.group(1).splitlines():
        if line.startswith("basecall "):
            name = line.split()[1]
            usage[name] = set()
        assert name, f"usage line before the first `basecall ...`: {line!r}"
        for option in re.findall(r"(?<![\w.-])(--?[A-Za-z][\w-]*)", line):
            usage[name].add("-v" if option == "-vv" else option)
    return usage


def test_readme_usage_names_every_option_of_every_subcommand_and_no_other() -> None:
    usage = readme_usage()
    assert sorted(usage) == sorted(SUBCOMMANDS)
    for name, written in usage.items():
        found = [command for words, command in commands().items() if words.split()[0] == name]
        options = {key: spellings for command in found for key, spellings in shown_options(command).items()}
        missing = [sorted(spellings) for spellings in options.values() if not spellings & written]
        assert not missing, f"README usage of `basecall {name}` lacks {missing}"
        known = set().union(*options.values())
        assert written <= known, f"README usage of `basecall {name}` names {sorted(written - known)}, not in --help"


def test_old_option_names_still_work(tmp_path, tiny_model_dir) -> None:
    """-o/--output everywhere (train and simulate had --out), --model-copies (was --threads), -vv (was --debug)."""
    from basecall.rawfiles import random_reads, write_pod5

    write_pod5(random_reads(2, seed=1), tmp_path / "reads.pod5")
    for option in ("--model-copies", "--threads"):
        out = tmp_path / f"{option}.fastq"
        args = ["basecaller", "-m", str(tiny_model_dir), str(tmp_path / "reads.pod5"), option, "1", "-o", str(out)]
        assert run(*args, "-q").exit_code == 0 and out.exists()
    for option in ("-o", "--output", "--out"):  # simulate's and train's output: a required option
        args = ["simulate", "--pore-model", str(tmp_path / "reads.pod5"), "--random-genome-length", "100", option, "x"]
        result = CliRunner().invoke(cli, args)
        assert "Missing option" not in result.output and "not a usable pore model" in result.output
        args = ["train", str(tmp_path), "--config", str(tmp_path / "reads.pod5"), option, "x"]
        result = CliRunner().invoke(cli, args)
        assert "Missing option" not in result.output


@pytest.mark.parametrize("verbosity", [[], ["-v"], ["-vv"], ["--debug"]])
def test_v_gives_debug_messages_and_vv_tracebacks(tmp_path, verbosity: list[str]) -> None:
    result = CliRunner().invoke(cli, ["basecaller", "--model", str(tmp_path / "nope"), str(tmp_path), *verbosity])
    level = logging.getLogger("basecall").level
    assert level == (logging.INFO if not verbosity else logging.DEBUG)
    if verbosity in ([], ["-v"]):
        assert result.exit_code == ExitCode.ERROR and "nope: no such model directory" in result.output.strip()
    else:  # the error itself, with its traceback
        assert "no such model" in str(result.exception) and "basecall: error" not in result.output


def test_top_level_help_does_not_import_torch() -> None:
    code = "import sys; from basecall.cli import cli; cli(['--help'], standalone_mode=False); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("basecall")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "basecall" in result.stdout


def test_models_lists_shipped_models_or_says_there_are_none() -> None:
    from basecall.model import shipped_models

    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0
    for name in shipped_models():
        assert name in result.output


def test_without_a_model_one_is_chosen_by_the_reads_or_each_read_fails(tmp_path) -> None:
    from basecall.rawfiles import random_reads, write_pod5

    result = CliRunner().invoke(cli, ["basecaller", str(tmp_path)])
    assert result.exit_code == ExitCode.ERROR
    assert result.output.strip().splitlines()[-1] == (
        "basecall: error: no model given and no readable read to choose one by: pass --model NAME|DIR"
    )
    write_pod5(random_reads(2, seed=1, sample_rate_hz=6000.0), tmp_path / "odd.pod5")  # no model is for 6 kHz
    result = CliRunner().invoke(cli, ["basecaller", str(tmp_path), "-q", "-o", os.devnull])
    assert result.exit_code == ExitCode.READS_FAILED
    reason = "no shipped model for r9.4.1 reads (FLO-MIN106, SQK-RAD004, 6000 Hz); pass --model"
    assert [line.rsplit(": ", 1)[-1] for line in result.stderr.splitlines()] == [reason] * 2


def test_without_a_model_failures_are_still_recorded_and_a_finished_run_resumes(tmp_path) -> None:
    from basecall.rawfiles import random_reads, write_pod5

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "garbage.pod5").write_bytes(b"not a pod5 file")
    calls = tmp_path / "calls.fastq"
    result = CliRunner().invoke(cli, ["basecaller", str(tmp_path / "in"), "-o", str(calls)])
    assert result.exit_code == ExitCode.READS_FAILED, result.output
    summary = (tmp_path / "calls.summary.tsv").read_text()
    assert "garbage.pod5" in summary and "\tfailed\t" in summary
    (tmp_path / "in" / "garbage.pod5").unlink()
    write_pod5(random_reads(2, seed=1), tmp_path / "in" / "reads.pod5")
    assert CliRunner().invoke(cli, ["basecaller", str(tmp_path / "in"), "-o", str(calls)]).exit_code == 0
    before = calls.read_text()
    result = CliRunner().invoke(cli, ["basecaller", str(tmp_path / "in"), "-o", str(calls), "--resume"])
    assert result.exit_code == 0, result.output
    assert "0 reads called" in result.output and "2 already done" in result.output
    assert calls.read_text() == before


def test_bad_model_dir_and_bad_settings_are_one_line_errors(tmp_path, tiny_model_dir) -> None:
    result = CliRunner().invoke(cli, ["basecaller", "--model", str(tmp_path / "nope"), str(tmp_path)])
    assert result.exit_code == ExitCode.ERROR and "nope: no such model" in result.output
    result = CliRunner().invoke(cli, ["basecaller", "--model", str(tiny_model_dir), "--chunksize", "1001", str(tmp_path)])
    assert result.exit_code == ExitCode.ERROR
    assert len(result.output.strip().splitlines()) == 1 and "multiples of the model stride" in result.output
    result = CliRunner().invoke(cli, ["basecaller", "--model", str(tiny_model_dir), "--device", "tpu", str(tmp_path)])
    assert result.exit_code == ExitCode.ERROR and "unknown device" in result.output


def test_usage_errors_exit_2() -> None:
    assert CliRunner().invoke(cli, ["basecaller"]).exit_code == ExitCode.USAGE
    assert CliRunner().invoke(cli, ["basecaller", "x", "--batch-size", "0"]).exit_code == ExitCode.USAGE
    assert CliRunner().invoke(cli, ["nosuchcommand"]).exit_code == ExitCode.USAGE


@pytest.fixture()
def simulated_inputs(tmp_path) -> tuple[Path, list[str]]:
    """A folder with a pod5 file and a multi-read fast5 written by the simulator's file writers."""
    from basecall.rawfiles import random_reads, write_fast5, write_pod5

    reads = random_reads(6, seed=3)
    folder = tmp_path / "reads"
    (folder / "nested").mkdir(parents=True)
    write_pod5(reads[:3], folder / "a.pod5")
    write_fast5(reads[3:], folder / "nested" / "b.fast5", layout="multi", compression="vbz")
    return folder, [r.read_id for r in reads]


def read_fastq(path: Path) -> list[dnaio.SequenceRecord]:
    with dnaio.open(path) as records:
        return list(records)


def test_basecaller_writes_one_record_per_read_and_a_summary(tmp_path, tiny_model_dir, simulated_inputs) -> None:
    folder, read_ids = simulated_inputs
    out = tmp_path / "calls.fastq"
    result = CliRunner().invoke(cli, ["basecaller", "-m", str(tiny_model_dir), str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    records = read_fastq(out)
    assert sorted(r.id for r in records) == sorted(read_ids)
    for record in records:
        fields = dict(tag.split("=", 1) for tag in record.name.split()[1:])
        assert {"runid", "ch", "model", "mean_qscore", "samples", "start_time"} <= set(fields)
        assert fields["model"] == "tiny"
        assert len(record.qualities) == len(record.sequence)
    rows = (tmp_path / "calls.summary.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:2] == ["filename", "read_id"]
    assert sorted(row.split("\t")[1] for row in rows[1:]) == sorted(read_ids)
    assert {row.split("\t")[9] for row in rows[1:]} <= {"called", "filtered"}
    assert "reads called" in result.output  # the final line on stderr


def test_gzip_and_stdout_outputs(tmp_path, tiny_model_dir, simulated_inputs) -> None:
    folder, read_ids = simulated_inputs
    gz = tmp_path / "calls.fastq.gz"
    assert CliRunner().invoke(cli, ["basecaller", "-m", str(tiny_model_dir), str(folder), "-o", str(gz), "-q"]).exit_code == 0
    assert sorted(r.id for r in read_fastq(gz)) == sorted(read_ids)
    assert (tmp_path / "calls.summary.tsv").exists()
    result = subprocess.run(
        [sys.executable, "-m", "basecall", "basecaller", "-m", str(tiny_model_dir), str(folder), "-q"],
        capture_output=True, check=True,
    )  # fmt: skip
    (tmp_path / "stdout.fastq").write_bytes(result.stdout)
    assert sorted(r.id for r in read_fastq(tmp_path / "stdout.fastq")) == sorted(read_ids)
    assert result.stderr == b""  # -q: nothing but data


@pytest.mark.parametrize("suffix", [".bam", ".sam"])
def test_bam_and_sam_outputs_hold_the_fastq_records_and_the_move_table(
    tmp_path, calling_model_dir, simulated_inputs, suffix
) -> None:
    """A trained model's calls (each read's own: `calling_model_dir`), so a record paired with another read shows."""
    import pysam

    folder, read_ids = simulated_inputs
    fastq, out = tmp_path / "calls.fastq", tmp_path / f"calls{suffix}"
    common = ["basecaller", "-m", str(calling_model_dir), str(folder)]
    assert CliRunner().invoke(cli, [*common, "-o", str(fastq), "-q"]).exit_code == 0
    result = CliRunner().invoke(cli, [*common, "-o", str(out), "--emit-moves"])
    assert result.exit_code == 0, result.output
    expected = {r.id: r for r in read_fastq(fastq)}
    with pysam.AlignmentFile(str(out), check_sq=False) as records:
        assert records.header.to_dict()["PG"][0]["PN"] == "basecall"
        bam = {record.query_name: record for record in records.fetch(until_eof=True)}
    assert sorted(bam) == sorted(expected) and sorted(bam) == sorted(read_ids)
    for read_id, record in bam.items():
        fields = dict(tag.split("=", 1) for tag in expected[read_id].name.split()[1:])
        assert record.is_unmapped and record.query_sequence == expected[read_id].sequence
        assert pysam.qualities_to_qualitystring(record.query_qualities) == expected[read_id].qualities
        assert record.get_tag("ns") == int(fields["samples"]) and record.get_tag("ts") == 0
        assert record.get_tag("ch") == int(fields["ch"]) and record.get_tag("st") == fields["start_time"]
        assert record.get_tag("qs") == pytest.approx(float(fields["mean_qscore"]), abs=0.01)
        moves = record.get_tag("mv")  # the stride, then one flag per model timestep; a 1 starts each base
        stride = moves[0]
        assert stride == 3 and len(moves) - 1 == -(-record.get_tag("ns") // stride)
        assert sum(moves[1:]) == len(record.query_sequence)
    assert len({record.query_sequence for record in bam.values()}) == len(bam)  # every read its own call
    assert (tmp_path / "calls.summary.tsv").exists()


def test_bam_move_table_places_each_base_where_the_read_alone_calls_it(tmp_path, calling_model_dir) -> None:
    """The move table of a read called among others (batched across reads, stitched from chunks) is the one the
    pipeline gives for that read alone: each base at the timestep that called it."""
    import pysam

    from basecall.model import load_model
    from basecall.pipeline import basecall_reads
    from basecall.rawfiles import random_reads, write_pod5

    reads = random_reads(5, seed=8)
    write_pod5(reads, tmp_path / "reads.pod5")
    out = tmp_path / "calls.bam"
    run("basecaller", "-m", str(calling_model_dir), str(tmp_path / "reads.pod5"), "-o", str(out), "--emit-moves", "-q")
    with pysam.AlignmentFile(str(out), check_sq=False) as records:
        moves = {record.query_name: list(record.get_tag("mv"))[1:] for record in records.fetch(until_eof=True)}
    loaded = load_model(str(calling_model_dir))
    for read in reads:
        (alone,) = basecall_reads(loaded.model, [read], loaded.config.basecaller)
        assert moves[read.read_id] == alone.moves.tolist()


def test_emit_moves_needs_a_bam_or_sam_output(tmp_path, tiny_model_dir, simulated_inputs) -> None:
    folder, _ = simulated_inputs
    result = CliRunner().invoke(
        cli, ["basecaller", "-m", str(tiny_model_dir), str(folder), "-o", str(tmp_path / "c.fastq"), "--emit-moves"]
    )
    assert result.exit_code == 2 and "--emit-moves needs a BAM or SAM output" in result.output


@pytest.mark.parametrize("readers", [[], ["--readers", "3"]])
def test_bad_inputs_are_named_and_the_run_goes_on(tmp_path, tiny_model_dir, simulated_inputs, readers) -> None:
    folder, read_ids = simulated_inputs
    (tmp_path / "junk.fast5").write_text("this is not HDF5\n")
    (tmp_path / "notes.txt").write_text("hello\n")
    out, summary = tmp_path / "calls.fastq", tmp_path / "summary.tsv"
    args = [str(folder), str(tmp_path / "junk.fast5"), str(tmp_path / "notes.txt"), str(tmp_path / "missing.pod5")]
    result = CliRunner().invoke(
        cli, ["basecaller", "-m", str(tiny_model_dir), *args, "-o", str(out), "--summary", str(summary), *readers]
    )
    assert result.exit_code == ExitCode.READS_FAILED
    errors = [line for line in result.output.splitlines() if line.startswith("basecall: ERROR")]
    assert len(errors) == 3
    for name in ("junk.fast5", "notes.txt", "missing.pod5"):
        assert sum(name in line for line in errors) == 1
    assert sorted(r.id for r in read_fastq(out)) == sorted(read_ids)
    rows = [row.split("\t") for row in summary.read_text().splitlines()[1:]]
    failed = [row for row in rows if row[9] == "failed"]
    assert sorted(Path(row[0]).name for row in failed) == ["junk.fast5", "missing.pod5", "notes.txt"]
    assert all(row[10] for row in failed)  # a reason for each


def test_read_ids(tmp_path, tiny_model_dir, simulated_inputs) -> None:
    folder, read_ids = simulated_inputs
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"{read_ids[0]}\n{read_ids[4]}\n")
    out = tmp_path / "sel.fastq"
    result = CliRunner().invoke(cli, ["basecaller", "-m", str(tiny_model_dir), str(folder), "-o", str(out), "--read-ids", str(ids_file)])
    assert result.exit_code == 0
    assert sorted(r.id for r in read_fastq(out)) == sorted([read_ids[0], read_ids[4]])


def test_min_qscore_partitions_reads_exactly_at_the_threshold(tmp_path, calling_model_dir) -> None:
    """Two real calls with different mean qscores (measured: 5.04 and 5.25): a threshold between them keeps only
    the better read; a threshold equal to a read's mean qscore keeps that read (only a lower one is filtered), and
    the next float above it filters it. Filtered reads are in the summary, not the output, and are not failures."""
    from basecall.rawfiles import random_reads, write_pod5
    from basecall.sequence import mean_qscore, quality_values

    reads = random_reads(3, seed=3)[1:]
    write_pod5(reads, tmp_path / "reads.pod5")
    common = ["basecaller", "-m", str(calling_model_dir), str(tmp_path / "reads.pod5"), "-q"]

    def kept(min_qscore: float | None, name: str) -> tuple[set[str], dict[str, str]]:
        out = tmp_path / f"{name}.fastq"
        threshold = [] if min_qscore is None else ["--min-qscore", repr(min_qscore)]
        assert run(*common, "-o", str(out), *threshold).exit_code == 0  # filtered reads are not failures
        rows = [row.split("\t") for row in (tmp_path / f"{name}.summary.tsv").read_text().splitlines()[1:]]
        return {record.id for record in read_fastq(out)}, {row[1]: row[9] for row in rows}

    kept(None, "all")
    with dnaio.open(tmp_path / "all.fastq") as records:
        qscores = {record.id: mean_qscore(quality_values(record.qualities)) for record in records}
    low, high = sorted(qscores, key=qscores.get)
    assert qscores[high] - qscores[low] > 0.1, qscores
    for i, (threshold, expected) in enumerate([
        ((qscores[low] + qscores[high]) / 2, {high}),
        (qscores[low], {low, high}),
        (float(np.nextafter(qscores[low], np.inf)), {high}),
        (qscores[high], {high}),
        (float(np.nextafter(qscores[high], np.inf)), set()),
    ]):
        output, statuses = kept(threshold, f"threshold{i}")
        assert output == expected, (threshold, qscores)
        assert statuses == {read_id: "called" if read_id in expected else "filtered" for read_id in qscores}
