"""`basecall.evaluate` and `basecall evaluate`: exact error counts on a seeded random genome, presets, file formats,
stored fast5 calls, the command line; and the published numbers on the real lambda reads (through `shared_data`)."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import dnaio
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from basecall.cli import cli
from basecall.errors import ExitCode, InputError
from basecall.evaluate import (
    AUTO_SENSITIVE_BELOW,
    HOMOPOLYMER_MIN,
    TSV_COLUMNS,
    Evaluator,
    ReadAccuracy,
    evaluate_calls,
    read_calls,
    shared_reads,
    summarise,
)
from basecall.stored_calls import stored_calls, write_fastq
from tests.conftest import shared_data

BASES = "ACGT"
GENOME_LENGTH = 20_000
CONTIG = "test_genome"


def revcomp(sequence: str) -> str:
    return sequence.translate(str.maketrans(BASES, "TGCA"))[::-1]


def random_sequence(rng: np.random.Generator, n_bases: int) -> str:
    return "".join(rng.choice(list(BASES), n_bases))


@pytest.fixture(scope="module")
def genome() -> str:
    return random_sequence(np.random.default_rng(2024), GENOME_LENGTH)


@pytest.fixture(scope="module")
def reference(genome: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "genome.fa"
    path.write_text(f">{CONTIG} seeded random genome\n{genome}\n")
    return path


@pytest.fixture(scope="module")
def evaluator(reference: Path) -> Evaluator:
    return Evaluator(reference)


class Truth:
    """A read sampled from the genome: reference span [start, end) and strand."""

    def __init__(self, genome: str, read_id: str, start: int, n_bases: int, strand: str) -> None:
        self.read_id, self.start, self.end, self.strand = read_id, start, start + n_bases, strand
        self.forward = genome[start : self.end]  # on the reference strand
        self.sequence = self.forward if strand == "+" else revcomp(self.forward)


@pytest.fixture(scope="module")
def truths(genome: str) -> list[Truth]:
    """12 reads of 2,000-4,000 bases (all aligned with map-ont under auto), alternating strands."""
    rng = np.random.default_rng(7)
    reads = []
    for i in range(12):
        n_bases = int(rng.integers(AUTO_SENSITIVE_BELOW, 2 * AUTO_SENSITIVE_BELOW))
        start = int(rng.integers(0, GENOME_LENGTH - n_bases))
        reads.append(Truth(genome, f"read{i}", start, n_bases, "+-"[i % 2]))
    return reads


def inject(forward: str, rng: np.random.Generator, n_sub: int, n_ins: int, n_del: int) -> str:
    """`forward` with isolated edits: >= 150 bases from the ends, >= 60 apart, each where its 7-base neighbourhood
    has no two equal neighbours (outside homopolymers), each new base unlike its neighbours (unambiguous to align)."""

    def isolated(p: int) -> bool:
        return all(a != b for a, b in itertools.pairwise(forward[p - 3 : p + 4]))

    candidates = [p for p in range(150, len(forward) - 150) if isolated(p)]
    positions: list[int] = []
    for p in rng.permutation(candidates):
        if all(abs(p - q) >= 60 for q in positions):
            positions.append(int(p))
        if len(positions) == n_sub + n_ins + n_del:
            break
    assert len(positions) == n_sub + n_ins + n_del
    kinds = ["sub"] * n_sub + ["ins"] * n_ins + ["del"] * n_del
    edits = sorted(zip(positions, kinds), reverse=True)  # right to left keeps the positions valid
    sequence = forward
    for p, kind in edits:
        fresh = next(b for b in BASES if b not in forward[p - 1 : p + 2])
        if kind == "sub":
            sequence = sequence[:p] + fresh + sequence[p + 1 :]
        elif kind == "ins":
            sequence = sequence[:p] + fresh + sequence[p:]
        else:
            sequence = sequence[:p] + sequence[p + 1 :]
    return sequence


def runs(sequence: str) -> list[tuple[int, int]]:
    """[start, end) of the maximal runs of >= HOMOPOLYMER_MIN equal bases that touch neither end."""
    spans, start = [], 0
    for base, group in itertools.groupby(sequence):
        end = start + len(list(group))
        if end - start >= HOMOPOLYMER_MIN and start > 0 and end < len(sequence):
            spans.append((start, end))
        start = end
    return spans


def test_truth_reads_have_identity_one_on_both_strands(evaluator: Evaluator, truths: list[Truth]) -> None:
    results = evaluate_calls(((t.read_id, t.sequence) for t in truths), evaluator)
    assert [r.read_id for r in results] == [t.read_id for t in truths]
    for result, truth in zip(results, truths):
        assert result.mapped and result.preset == "map-ont"
        assert (result.reference, result.ref_start, result.ref_end, result.strand) == (
            CONTIG, truth.start, truth.end, truth.strand
        )  # fmt: skip
        counts = (result.matches, result.mismatches, result.insertions, result.deletions)
        assert counts == (truth.end - truth.start, 0, 0, 0)
        assert result.identity == 1.0 and result.query_coverage == 1.0
        assert result.homopolymers == len(runs(truth.forward)) > 0 and result.homopolymer_errors == 0
    summary = summarise(results)
    assert summary.median_identity == summary.median_identity_all == summary.mean_identity_all == 1.0
    assert summary.mismatch_rate == summary.insertion_rate == summary.deletion_rate == 0
    assert summary.homopolymer_error_rate == 0


@pytest.mark.parametrize(("n_sub", "n_ins", "n_del"), [(3, 0, 0), (0, 2, 0), (0, 0, 4), (5, 3, 2)])
def test_injected_errors_are_counted_exactly(evaluator: Evaluator, truths: list[Truth], n_sub, n_ins, n_del) -> None:
    rng = np.random.default_rng(n_sub * 100 + n_ins * 10 + n_del)
    for truth in truths[:4]:
        forward = inject(truth.forward, rng, n_sub, n_ins, n_del)
        result = evaluator.evaluate(truth.read_id, forward if truth.strand == "+" else revcomp(forward))
        assert (result.ref_start, result.ref_end, result.strand) == (truth.start, truth.end, truth.strand)
        assert (result.mismatches, result.insertions, result.deletions) == (n_sub, n_ins, n_del)
        assert result.matches == len(truth.forward) - n_sub - n_del
        assert result.identity == pytest.approx(result.matches / (len(truth.forward) + n_ins))
        assert result.homopolymer_errors == 0  # no edit touches a homopolymer


def test_summary_rates_are_pooled_per_alignment_column(evaluator: Evaluator, truths: list[Truth]) -> None:
    rng = np.random.default_rng(5)
    results = [evaluator.evaluate(t.read_id, inject(t.sequence, rng, 4, 2, 3)) for t in truths[:2]]
    summary = summarise(results)
    n_columns = sum(r.matches + r.mismatches + r.insertions + r.deletions for r in results)
    assert summary.n_columns == n_columns
    assert (summary.mismatch_rate, summary.insertion_rate, summary.deletion_rate) == pytest.approx(
        (8 / n_columns, 4 / n_columns, 6 / n_columns)
    )
    assert summary.mean_identity == pytest.approx(np.mean([r.identity for r in results]))


@pytest.mark.parametrize("change", [+1, -1, "substitution"])
def test_a_changed_homopolymer_is_one_homopolymer_error(evaluator: Evaluator, truths: list[Truth], change) -> None:
    truth = truths[0]
    start, end = next((s, e) for s, e in runs(truth.forward) if 200 < s and e < len(truth.forward) - 200)
    base = truth.forward[start]
    if change == "substitution":
        other = next(b for b in BASES if b not in truth.forward[start - 1 : end + 1])
        middle = base + other + base * (end - start - 2)
    else:
        middle = base * (end - start + change)
    result = evaluator.evaluate(truth.read_id, truth.forward[:start] + middle + truth.forward[end:])
    assert result.homopolymers == len(runs(truth.forward)) and result.homopolymer_errors == 1
    expected = {+1: (0, 1, 0), -1: (0, 0, 1), "substitution": (1, 0, 0)}[change]
    assert (result.mismatches, result.insertions, result.deletions) == expected


def test_unmapped_reads_are_counted_and_pull_the_all_reads_median_down(evaluator: Evaluator, truths) -> None:
    rng = np.random.default_rng(11)
    junk = [(f"junk{i}", random_sequence(rng, 2500)) for i in range(5)]
    results = evaluate_calls([*((t.read_id, t.sequence) for t in truths[:5]), *junk], evaluator)
    unmapped = [r for r in results if not r.mapped]
    assert [r.read_id for r in unmapped] == [read_id for read_id, _ in junk]
    assert all(r.identity == 0.0 and r.query_coverage == 0.0 and r.n_bases == 2500 for r in unmapped)
    summary = summarise(results)
    assert (summary.n_reads, summary.n_mapped, summary.mapped_fraction) == (10, 5, 0.5)
    assert summary.median_identity == summary.mean_identity == 1.0
    assert summary.median_identity_all == summary.mean_identity_all == 0.5


def noisy(sequence: str, rng: np.random.Generator, error_rate: float) -> str:
    """Random substitutions, deletions and insertions, each at error_rate / 3 per base."""
    out = []
    for base in sequence:
        x = rng.random()
        if x < error_rate / 3:
            out.append(BASES[(BASES.index(base) + int(rng.integers(1, 4))) % 4])
        elif x < 2 * error_rate / 3:
            continue
        else:
            out.append(base)
            if x < error_rate:
                out.append(BASES[int(rng.integers(4))])
    return "".join(out)


def test_sensitive_preset_maps_short_noisy_reads_that_map_ont_misses(genome: str, reference: Path) -> None:
    rng = np.random.default_rng(3)
    starts = rng.integers(0, GENOME_LENGTH - 400, size=40)
    reads = [(f"amplicon{i}", noisy(genome[s : s + 400], rng, 0.18)) for i, s in enumerate(starts)]
    summaries = {
        preset: summarise(evaluate_calls(reads, Evaluator(reference, preset)))
        for preset in ("map-ont", "sensitive", "auto")
    }
    assert summaries["map-ont"].mapped_fraction <= 0.75
    assert summaries["sensitive"].mapped_fraction >= 0.95
    assert summaries["auto"] == summaries["sensitive"]
    assert summaries["auto"].presets == {"sensitive": 40}


def test_fastq_gzip_and_fasta_give_the_same_results(evaluator: Evaluator, truths: list[Truth], tmp_path: Path) -> None:
    records = [dnaio.SequenceRecord(f"{t.read_id} runid=x ch=1", t.sequence, "5" * len(t.sequence)) for t in truths[:3]]
    with dnaio.open(tmp_path / "calls.fastq.gz", mode="w") as out:
        for record in records:
            out.write(record)
    (tmp_path / "calls.fa").write_text("".join(f">{r.name}\n{r.sequence}\n" for r in records))
    fastq = evaluate_calls(read_calls(tmp_path / "calls.fastq.gz"), evaluator)
    fasta = evaluate_calls(read_calls(tmp_path / "calls.fa"), evaluator)
    assert fastq == fasta
    assert [r.read_id for r in fastq] == [t.read_id for t in truths[:3]]
    assert all(r.identity == 1.0 for r in fastq)


def test_bad_inputs_are_one_line_errors_naming_the_file(reference: Path, tmp_path: Path) -> None:
    (tmp_path / "truncated.fastq").write_text("@r1\nACGT\n+\nII\n")
    (tmp_path / "empty.fa").write_text("")
    cases = [
        (lambda: list(read_calls(tmp_path / "missing.fastq")), "missing.fastq: cannot read calls: No such file"),
        (lambda: list(read_calls(tmp_path / "truncated.fastq")), "truncated.fastq: cannot read calls"),
        (lambda: Evaluator(tmp_path / "missing.fa"), "missing.fa: no such reference file"),
        (lambda: Evaluator(tmp_path / "empty.fa").evaluate("r", "ACGT" * 100), "empty.fa: cannot load this reference"),
    ]
    for call, message in cases:
        with pytest.raises(InputError, match=message) as error:
            call()
        assert len(str(error.value).splitlines()) == 1


def test_shared_reads_keeps_only_ids_in_every_set() -> None:
    a = [ReadAccuracy("r1", 10, False, "map-ont"), ReadAccuracy("r2", 10, False, "map-ont")]
    b = [ReadAccuracy("r2", 12, False, "map-ont"), ReadAccuracy("r3", 10, False, "map-ont")]
    assert shared_reads(a, b) == [[a[1]], [b[0]]]


def write_stored_fast5(path: Path, calls: dict[str, list[str | None]], multi: bool) -> None:
    """A fast5 file holding, per read id, one Basecall_1D_NNN analysis per sequence (None: a read without calls)."""
    with h5py.File(path, "w") as handle:
        for read_id, sequences in calls.items():
            group = handle.create_group(f"read_{read_id}") if multi else handle
            raw = group.create_group("Raw") if multi else handle.create_group("Raw/Reads/Read_7")
            raw.attrs["read_id"] = read_id.encode()
            for n, sequence in enumerate(sequences):
                if sequence is not None:
                    record = f"@{read_id} runid=r\n{sequence}\n+\n{'+' * len(sequence)}\n"
                    name = f"Analyses/Basecall_1D_{n:03d}/BaseCalled_template/Fastq"
                    group.create_dataset(name, data=record.encode())


@pytest.fixture
def fast5_dir(tmp_path: Path, truths: list[Truth]) -> Path:
    """single.fast5 (truths[0]); sub/multi.fast5: truths[1] called twice (the later call wins), truths[2], and one
    read without calls."""
    folder = tmp_path / "fast5"
    (folder / "sub").mkdir(parents=True)
    write_stored_fast5(folder / "single.fast5", {truths[0].read_id: [truths[0].sequence]}, multi=False)
    multi = {
        truths[1].read_id: ["ACGT", truths[1].sequence],
        truths[2].read_id: [truths[2].sequence],
        "nocalls": [None],
    }
    write_stored_fast5(folder / "sub" / "multi.fast5", multi, multi=True)
    return folder


def test_stored_calls_from_single_and_multi_read_fast5(fast5_dir: Path, truths, tmp_path: Path, caplog) -> None:
    calls = list(stored_calls([fast5_dir]))
    assert [(c.read_id, c.sequence, c.analysis) for c in calls] == [
        (truths[0].read_id, truths[0].sequence, "Basecall_1D_000"),
        (truths[1].read_id, truths[1].sequence, "Basecall_1D_001"),
        (truths[2].read_id, truths[2].sequence, "Basecall_1D_000"),
    ]
    assert "1 reads in 2 fast5 files have no stored basecalls" in caplog.text
    assert write_fastq(str(tmp_path / "stored.fastq.gz"), calls) == 3
    assert list(read_calls(tmp_path / "stored.fastq.gz")) == [(c.read_id, c.sequence) for c in calls]


def test_an_unreadable_fast5_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "broken.fast5").write_text("not hdf5")
    with pytest.raises(InputError, match="broken.fast5: cannot read stored basecalls"):
        list(stored_calls([tmp_path]))


def run(*args: str):
    return CliRunner().invoke(cli, ["evaluate", *map(str, args)])


def test_cli_help_names_every_option() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for option in ("--reference", "--compare", "--from-fast5", "--save-stored", "--output", "--json", "--preset"):
        assert option in result.output


def test_cli_compare_writes_tsv_json_and_both_tables(reference: Path, truths: list[Truth], tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ours = tmp_path / "ours.fasta"
    records = [(t.read_id, t.sequence) for t in truths[:4]] + [("junk", random_sequence(rng, 3000))]
    ours.write_text("".join(f">{read_id}\n{sequence}\n" for read_id, sequence in records))
    theirs = tmp_path / "theirs.fastq.gz"
    with gzip.open(theirs, "wt") as out:
        for t in truths[2:6]:
            sequence = inject(t.sequence, rng, 2, 1, 1)
            out.write(f"@{t.read_id}\n{sequence}\n+\n{'!' * len(sequence)}\n")
    tsv, summary = tmp_path / "per_read.tsv", tmp_path / "summary.json"
    result = run(ours, "-r", reference, "--compare", theirs, "-o", tsv, "--json", summary, "-q")
    assert result.exit_code == 0, result.output

    assert "ours.fasta" in result.stdout and "theirs.fastq.gz" in result.stdout
    assert "# reads both sets called (2)" in result.stdout
    rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    assert rows[0] == ["calls", *TSV_COLUMNS]
    assert [(row[0], row[1], row[3]) for row in rows[1:]] == [
        *(("ours.fasta", t.read_id, "True") for t in truths[:4]), ("ours.fasta", "junk", "False"),
        *(("theirs.fastq.gz", t.read_id, "True") for t in truths[2:6]),
    ]  # fmt: skip
    report = json.loads(summary.read_text())
    ours_summary = report["calls"]["ours.fasta"]["summary"]
    assert (ours_summary["n_reads"], ours_summary["n_mapped"], ours_summary["median_identity"]) == (5, 4, 1.0)
    theirs_summary = report["calls"]["theirs.fastq.gz"]["summary"]
    assert theirs_summary["n_columns"] * theirs_summary["mismatch_rate"] == pytest.approx(8)
    assert report["shared"]["n_reads"] == 2
    assert report["shared"]["summaries"]["ours.fasta"]["median_identity"] == 1.0


def test_cli_from_fast5_alone_and_saved(reference: Path, fast5_dir: Path, tmp_path: Path) -> None:
    saved = tmp_path / "stored.fastq"
    result = run("-r", reference, "--from-fast5", fast5_dir, "--save-stored", saved, "--preset", "map-ont")
    assert result.exit_code == 0, result.output
    assert "stored:fast5" in result.stdout and "map-ont 3" in result.stdout
    assert len(list(read_calls(saved))) == 3


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["calls.fq", "-r", "missing.fa"], ExitCode.ERROR, "basecall: error: missing.fa: no such reference file"),
        (["-r", "ref.fa"], ExitCode.USAGE, "give CALLS, --from-fast5 PATH, or both"),
        (["a.fq", "-r", "ref.fa", "--compare", "b.fq", "--from-fast5", "d"], ExitCode.USAGE, "at most two call sets"),
    ],
)
def test_cli_errors(args: list[str], exit_code: int, message: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == exit_code
    assert message in result.output


LAMBDA = ("r941_lambda_marcpaga",)


def test_real_guppy_calls_stored_in_lambda_fast5() -> None:
    """The incumbent's calls (Guppy hac, stored in each file) against Lambda_NEB: median identity 0.955 (README)."""
    calls = list(stored_calls([shared_data(*LAMBDA, "fast5")]))
    evaluator = Evaluator(shared_data(*LAMBDA, "Lambda_phage.fna"))
    results = evaluate_calls(((c.read_id, c.sequence) for c in calls), evaluator)
    summary = summarise(results)
    assert (summary.n_reads, summary.n_mapped) == (50, 50)
    assert 0.94 <= summary.median_identity <= 0.97
    assert 0.1 <= summary.homopolymer_error_rate <= 0.3


def test_real_demo_calls_beside_stored_calls_through_the_cli(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    result = run(
        shared_data(*LAMBDA, "demo_basecalls.fastq"), "-r", shared_data(*LAMBDA, "Lambda_phage.fna"),
        "--from-fast5", shared_data(*LAMBDA, "fast5"), "--json", summary_path, "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(summary_path.read_text())
    demo = report["calls"]["demo_basecalls.fastq"]["summary"]
    assert demo["n_mapped"] == 50 and 0.82 <= demo["median_identity"] <= 0.85
    assert 0.94 <= report["calls"]["stored:fast5"]["summary"]["median_identity"] <= 0.97
    assert report["shared"]["n_reads"] == 50


def test_real_multi_read_fast5_with_stored_calls() -> None:
    calls = list(stored_calls([shared_data("misc_formats", "multi_fast5_zip.fast5")]))
    assert len(calls) == len({c.read_id for c in calls}) == 10
    assert all(len(c.sequence) == len(c.quality) > 0 for c in calls)


def test_calls_are_read_from_sam_and_bam_in_the_reads_own_orientation(tmp_path: Path) -> None:
    import pysam

    from basecall.evaluate import read_calls

    header = pysam.AlignmentHeader.from_dict({"HD": {"VN": "1.6"}, "SQ": [{"SN": "chr", "LN": 1000}]})
    for suffix, mode in ((".bam", "wb"), (".sam", "w")):
        path = tmp_path / f"calls{suffix}"
        with pysam.AlignmentFile(str(path), mode, header=header) as out:
            for name, flag, sequence in [("a", 4, "ACGTT"), ("b", 16, "AACCG"), ("b", 256, "AACCG"), ("c", 0, "GGA")]:
                record = pysam.AlignedSegment(header)
                record.query_name, record.flag, record.query_sequence = name, flag, sequence
                if flag != 4:
                    record.reference_id, record.reference_start, record.cigarstring = 0, 10, f"{len(sequence)}M"
                out.write(record)
        # "b" is stored reverse-complemented (flag 16): its call is CGGTT; the secondary copy (256) is skipped
        assert list(read_calls(path)) == [("a", "ACGTT"), ("b", "CGGTT"), ("c", "GGA")]
    (tmp_path / "bad.bam").write_text("not a bam")
    with pytest.raises(InputError, match="bad.bam: cannot read calls"):
        list(read_calls(tmp_path / "bad.bam"))
