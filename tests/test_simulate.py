"""The pore-model simulator (`basecall.simulate`) and `basecall simulate`.

Runs on a fresh clone with a 3-mer table the tests write themselves; the real pore models and the real Taiyaki file
come from ../shared/data through `shared_data` (skipped without it, failing under CI=true).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from basecall.cli import cli
from basecall.errors import ConfigError, ExitCode, InputError
from basecall.readers import open_reads
from basecall.records import Read
from basecall.sequence import BASES as ALPHABET
from basecall.sequence import decode, encode, read_fasta, reverse_complement
from basecall.simulate import (
    CHEMISTRIES,
    PoreModel,
    SignalModel,
    chemistry_for,
    kmer_index,
    load_pore_model,
    low_pass,
    sample_dwells,
    sample_fragment,
    sequence_to_signal,
    simulate,
    simulate_reads,
)
from tests.conftest import shared_data

METADATA = ("run_id", "channel", "start_sample", "read_number", "sample_rate_hz", "acquisition_start")
QUIET = SignalModel(level_sd_factor=0.0, noise_sd_factor=1e-6, read_noise_sd=0.0, smoothing=(), scale_sd=0.0,
                    shift_sd_pa=0.0, scale_mean=1.0, shift_mean_pa=0.0)  # fmt: skip


def kmers(k: int) -> list[str]:
    return [""] if k == 0 else [prefix + base for prefix in kmers(k - 1) for base in ALPHABET]


@pytest.fixture
def table_path(tmp_path: Path) -> Path:
    """A 3-mer table in the ONT TSV format (rows shuffled, an extra column): level = 60 + index pA."""
    rows = [f"{kmer}\t{60 + i}\t1.5\t1.2\t0.7\t{i * 10}" for i, kmer in enumerate(kmers(3))]
    np.random.default_rng(0).shuffle(rows)
    path = tmp_path / "tiny_3mer.model"
    path.write_text("kmer\tlevel_mean\tlevel_stdv\tsd_mean\tsd_stdv\tweight\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def pore_model(table_path: Path) -> PoreModel:
    return load_pore_model(table_path)


@pytest.fixture
def reference(tmp_path: Path) -> dict[str, str]:
    rng = np.random.default_rng(1)
    path = tmp_path / "ref.fa"
    path.write_text(
        ">chr1 a description\n" + "\n".join("".join(rng.choice(list(ALPHABET), 60)) for _ in range(50)) + "\n"
        ">chr2\n" + "ACGTN" * 100 + "\n"
    )  # fmt: skip
    return read_fasta(path)


# --- pore models --------------------------------------------------------------------------------------------------


def test_tsv_table_loads_in_kmer_order(pore_model: PoreModel) -> None:
    assert (pore_model.k, pore_model.shift, pore_model.name) == (3, 1, "tiny_3mer")
    np.testing.assert_array_equal(pore_model.level_pa, 60 + np.arange(64))
    assert pore_model.level_sd_pa.shape == pore_model.noise_sd_pa.shape == pore_model.noise_sd_sd_pa.shape == (64,)
    assert kmer_index(encode("ACGTTT"), 3).tolist() == [6, 27, 47, 63]  # ACG, CGT, GTT, TTT
    assert decode(encode("GATTACA")) == "GATTACA" and reverse_complement("GATTACA") == "TGTAATC"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda lines: lines[:-1], "found 63 rows"),
        (lambda lines: lines[:-1] + [lines[1]], "repeated"),
        (lambda lines: lines[:-1] + ["ACN\t1\t1\t1\t1\t1"], "only ACGT"),
        (lambda lines: [lines[0].replace("sd_stdv", "other")] + lines[1:], "columns"),
        (lambda lines: lines[:1] + [line.replace("\t0.7\t", "\t0\t") for line in lines[1:]], "sd_stdv > 0"),
    ],
)
def test_bad_tables_are_input_errors_naming_the_file(table_path: Path, edit, message: str) -> None:
    lines = table_path.read_text().splitlines()
    table_path.write_text("\n".join(edit(lines)) + "\n")
    with pytest.raises(InputError, match=message) as error:
        load_pore_model(table_path)
    assert str(table_path) in str(error.value)
    with pytest.raises(InputError, match="no such pore model"):
        load_pore_model(table_path.with_name("missing.model"))


# --- signal -------------------------------------------------------------------------------------------------------


def test_signal_follows_the_kmer_of_each_base(pore_model: PoreModel) -> None:
    """Without noise, base i sits at the level of the k-mer sequence[i - shift : i - shift + k]."""
    sequence = "".join(np.random.default_rng(2).choice(list(ALPHABET), 300))
    signal, ref_to_signal = sequence_to_signal(sequence, pore_model, np.random.default_rng(3), 4000, QUIET)
    assert signal.dtype == np.float32 and ref_to_signal.dtype == np.int32
    assert ref_to_signal.shape == (301,) and ref_to_signal[0] == 0 and ref_to_signal[-1] == signal.size
    assert (np.diff(ref_to_signal) >= 1).all()
    inner = kmer_index(encode(sequence), 3)  # bases 1 .. n-2 have their whole 3-mer in the sequence
    for i, kmer in enumerate(inner, start=1):
        np.testing.assert_allclose(signal[ref_to_signal[i] : ref_to_signal[i + 1]], 60 + kmer, atol=1e-3)


def test_low_pass_keeps_levels_and_rounds_steps() -> None:
    step = np.repeat([80.0, 100.0], 10)
    smoothed = low_pass(step, (0.22, 0.08))
    assert smoothed.shape == step.shape
    np.testing.assert_allclose(smoothed[:8], 80.0)
    np.testing.assert_allclose(smoothed[12:], 100.0)
    assert 80 < smoothed[9] < 90 < smoothed[10] < 100  # the step is rounded symmetrically
    assert low_pass(step, ()) is step


@pytest.mark.parametrize("sample_rate_hz, mean_dwell", [(4000, 10.0), (5000, 12.5)])
def test_dwells_have_the_mean_of_the_speed(sample_rate_hz: int, mean_dwell: float) -> None:
    model = SignalModel(bases_per_s=400)
    assert model.mean_dwell(sample_rate_hz) == mean_dwell
    dwells = sample_dwells(200_000, mean_dwell, np.random.default_rng(4), model)
    assert dwells.dtype == np.int64 and dwells.min() >= 1
    assert dwells.mean() == pytest.approx(mean_dwell, rel=0.02)
    assert np.median(dwells) < dwells.mean() < np.percentile(dwells, 99) / 3  # right-skewed, with a long tail


def test_impossible_dwell_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        SignalModel(dwell_min_fraction=0.9, pause_probability=0.1, pause_mean=2.0)
    with pytest.raises(ConfigError):
        SignalModel(bases_per_s=0)


def test_fragments_come_from_both_strands_of_the_reference(reference: dict[str, str]) -> None:
    rng = np.random.default_rng(5)
    strands = set()
    for _ in range(40):
        sequence, source = sample_fragment(reference, 400, 100, rng)
        contig, span, strand = source.split(":")
        start, end = map(int, span.split("-"))
        assert 100 <= end - start == len(sequence) and end <= len(reference[contig])
        assert set(sequence) <= set(ALPHABET)  # N replaced by random bases
        forward = sequence if strand == "+" else reverse_complement(sequence)
        expected = reference[contig][start:end]
        assert all(a == b for a, b in zip(forward, expected, strict=True) if b != "N")
        strands.add(strand)
    assert strands == {"+", "-"}


def test_simulated_reads_are_reproducible(reference: dict[str, str], pore_model: PoreModel) -> None:
    def run(seed: int) -> list:
        return list(simulate_reads(reference, pore_model, 4, seed, mean_read_length=300))

    first, again, other = run(7), run(7), run(8)
    assert [r.read.read_id for r in first] == [r.read.read_id for r in again]
    for a, b in zip(first, again, strict=True):
        assert a.sequence == b.sequence and a.source == b.source and a.read == replace(b.read, signal=a.read.signal)
        np.testing.assert_array_equal(a.read.signal, b.read.signal)
        np.testing.assert_array_equal(a.ref_to_signal, b.ref_to_signal)
    assert {r.read.read_id for r in first}.isdisjoint(r.read.read_id for r in other)
    assert len({r.read.run_id for r in first}) == 1
    assert [r.read.read_number for r in first] == [1, 2, 3, 4]
    assert all(r.read.signal.dtype == np.int16 and r.read.sample_rate_hz == 4000 for r in first)


# --- outputs ------------------------------------------------------------------------------------------------------


@pytest.fixture
def simulated(tmp_path: Path, reference: dict[str, str], pore_model: PoreModel):
    reads = list(simulate_reads(reference, pore_model, 5, seed=9, mean_read_length=400))
    result = simulate(tmp_path / "sim", reference, pore_model, 5, seed=9, formats=["pod5", "fast5"],
                      reads_per_file=3, mean_read_length=400)  # fmt: skip
    return result, {r.read.read_id: r for r in reads}


def test_simulate_writes_the_files_it_reports(simulated) -> None:
    result, expected = simulated
    folder = result.labels.parent
    names = ["reads_0.pod5", "reads_0.fast5", "reads_1.pod5", "reads_1.fast5"]
    assert [path.name for path in result.read_files] == names
    assert sorted(p.name for p in folder.iterdir()) == sorted(names + ["labels.hdf5", "truth.fasta"])
    assert result.n_reads == 5
    assert result.n_bases == sum(len(r.sequence) for r in expected.values())
    assert result.n_samples == sum(r.read.n_samples for r in expected.values())
    truth_headers = [line[1:] for line in result.truth.read_text().splitlines() if line.startswith(">")]
    assert truth_headers == [f"{read_id} {r.source}" for read_id, r in expected.items()]
    assert read_fasta(result.truth) == {read_id: r.sequence for read_id, r in expected.items()}


@pytest.mark.parametrize("suffix", [".pod5", ".fast5"])
def test_read_files_read_back_with_lengths_calibration_and_metadata(simulated, suffix: str) -> None:
    result, expected = simulated
    items = list(open_reads([p for p in result.read_files if p.suffix == suffix]))
    assert all(isinstance(item, Read) for item in items)
    assert sorted(read.read_id for read in items) == sorted(expected)  # fast5 lists reads by name
    for read in items:
        want = expected[read.read_id]
        assert read.n_samples == want.ref_to_signal[-1] == want.read.n_samples
        np.testing.assert_array_equal(read.signal, want.read.signal)
        assert read.calibration.offset == want.read.calibration.offset
        assert read.calibration.scale == pytest.approx(want.read.calibration.scale, rel=1e-6)
        for name in METADATA:
            assert getattr(read, name) == getattr(want.read, name), name


def test_labels_are_taiyaki_mapped_signal_v8_consistent_with_the_reads(simulated) -> None:
    result, expected = simulated
    with h5py.File(result.labels, "r") as handle:
        assert dict(handle.attrs) == {
            "version": 8,
            "alphabet": "ACGT",
            "collapse_alphabet": "ACGT",
            "mod_long_names": "",
        }
        assert list(handle) == ["Reads"] and sorted(handle["Reads"]) == sorted(expected)
        for read_id, group in handle["Reads"].items():
            want, attrs = expected[read_id], group.attrs
            dacs, reference, ref_to_signal = (group[name][()] for name in ("Dacs", "Reference", "Ref_to_signal"))
            assert (dacs.dtype, reference.dtype, ref_to_signal.dtype) == (np.int16, np.int16, np.int32)
            np.testing.assert_array_equal(dacs, want.read.signal)
            assert decode(reference + 1) == want.sequence  # Taiyaki: 0-3 = ACGT
            assert ref_to_signal.shape == (len(want.sequence) + 1,)
            assert ref_to_signal[0] == 0 and ref_to_signal[-1] == dacs.size and (np.diff(ref_to_signal) > 0).all()
            assert attrs["read_id"] == read_id
            signal_pa = (dacs + attrs["offset"]) * attrs["range"] / attrs["digitisation"]
            np.testing.assert_allclose(signal_pa, want.read.signal_pa, rtol=1e-5, atol=1e-4)
            assert attrs["shift_frompA"] == pytest.approx(np.median(signal_pa))
            normalised = (signal_pa - attrs["shift_frompA"]) / attrs["scale_frompA"]
            assert np.median(np.abs(normalised)) == pytest.approx(1 / 1.4826, rel=1e-3)


def test_simulate_refuses_a_used_folder_and_bad_formats(tmp_path: Path, reference, pore_model) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    with pytest.raises(ConfigError, match="new or empty"):
        simulate(tmp_path / "used", reference, pore_model, 1, 0)
    with pytest.raises(ConfigError, match="pod5 and/or fast5"):
        simulate(tmp_path / "new", reference, pore_model, 1, 0, formats=["bam"])


# --- command line -------------------------------------------------------------------------------------------------


def test_cli_help() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--help"])
    assert result.exit_code == 0
    for option in ("--pore-model", "--reference", "--random-genome-length", "--n-reads", "--out", "--format", "--seed"):
        assert option in result.output


def test_cli_simulates_a_random_genome_reproducibly(tmp_path: Path, table_path: Path) -> None:
    def run(out: Path, *extra: str):
        args = ["simulate", "--pore-model", str(table_path), "--random-genome-length", "3000", "-n", "3",
                "--mean-read-length", "500", "--seed", "4", "--out", str(out), *extra]  # fmt: skip
        return CliRunner().invoke(cli, args)

    result = run(tmp_path / "a", "--format", "fast5", "--sample-rate", "5000")
    assert result.exit_code == 0, result.output
    assert "simulated 3 reads" in result.output
    genome = read_fasta(tmp_path / "a" / "genome.fasta")
    assert list(genome) == ["random_genome"] and len(genome["random_genome"]) == 3000
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "genome.fasta",
        "labels.hdf5",
        "reads_0.fast5",
        "truth.fasta",
    ]
    reads = [item for item in open_reads([tmp_path / "a"]) if isinstance(item, Read)]
    assert len(reads) == 3 and {read.sample_rate_hz for read in reads} == {5000}
    assert run(tmp_path / "b", "--format", "fast5", "--sample-rate", "5000").exit_code == 0
    for name in ("truth.fasta", "genome.fasta"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_cli_errors_are_one_line(tmp_path: Path, table_path: Path, reference) -> None:
    fasta = tmp_path / "ref.fa"
    args = ["simulate", "--pore-model", str(table_path), "-o", str(tmp_path / "out")]
    both = CliRunner().invoke(cli, [*args, "--reference", str(fasta), "--random-genome-length", "100"])
    neither = CliRunner().invoke(cli, args)
    for result in (both, neither):
        assert result.exit_code == ExitCode.ERROR
        assert (
            result.output.strip()
            == "basecall: error: give exactly one of --reference FASTA and --random-genome-length BASES"
        )
    fasta.write_text("not a fasta\n")
    result = CliRunner().invoke(cli, [*args, "--reference", str(fasta)])
    assert result.exit_code == ExitCode.ERROR and "ref.fa: not a FASTA file: " in result.output
    fasta.write_text(">empty\n")
    result = CliRunner().invoke(cli, [*args, "--reference", str(fasta)])
    assert result.exit_code == ExitCode.ERROR and "ref.fa: no FASTA records with sequence" in result.output


# --- real pore models and files -----------------------------------------------------------------------------------


def test_real_r941_model() -> None:
    model = load_pore_model(shared_data("pore_models", "kmer_models", "template_median68pA.model"))
    assert (model.k, model.shift) == (6, 2) and chemistry_for(model).name == "r9.4.1"
    assert model.level_pa[0] == pytest.approx(86.486336)  # AAAAAA
    assert model.level_pa[kmer_index(encode("TTTTTT"), 6)[0]] == model.level_pa[-1]
    same = load_pore_model(shared_data("pore_models", "uncalled4", "dna_r9.4.1_400bps_6mer.npz"))
    np.testing.assert_allclose(same.level_pa, model.level_pa, rtol=1e-6)
    assert same.shift == model.shift


def test_real_r1041_model_converts_to_pa() -> None:
    path = shared_data("pore_models", "uncalled4", "dna_r10.4.1_400bps_9mer.npz")
    model = load_pore_model(path)
    assert (model.k, model.shift) == (9, 6) and chemistry_for(model) == CHEMISTRIES["r10.4.1"]
    with np.load(path) as table:
        np.testing.assert_allclose(
            model.level_pa, table["current.mean"] * table["_pa_stdv"] + table["_pa_mean"], rtol=1e-6
        )
    assert 60 < np.median(model.level_pa) < 120


def test_kmer_convention_matches_real_resquiggled_reads() -> None:
    """On a real Tombo-resquiggled read, base i's mean current follows sequence[i - 2 : i + 4] (shift 2)."""
    model = load_pore_model(shared_data("pore_models", "kmer_models", "template_median68pA.model"))
    path = shared_data("r941_lambda_marcpaga", "fast5", "f260510e-e38c-4bb3-81cd-7c0d4c78e7f3.fast5")
    with h5py.File(path, "r") as handle:
        events = handle["Analyses/RawGenomeCorrected_000/BaseCalled_template/Events"]
        start, table = int(events.attrs["read_start_rel_to_raw"]), events[()]
        (raw,) = handle["Raw/Reads"].values()
        signal = raw["Signal"][()].astype(np.float64)
    starts = start + table["start"].astype(np.int64)
    means = np.array([signal[s : s + n].mean() for s, n in zip(starts, table["length"], strict=True)])
    levels = model.level_pa[kmer_index(encode(b"".join(table["base"]).decode()), 6)]
    correlations = [np.corrcoef(levels, means[shift : shift + levels.size])[0, 1] for shift in range(6)]
    assert int(np.argmax(correlations)) == model.shift and correlations[model.shift] > 0.9


def test_labels_have_the_layout_of_a_real_taiyaki_file(simulated) -> None:
    real = shared_data("r941_taiyaki", "mapped_signal_file", "mapped_reads_0.hdf5")
    result, _ = simulated

    def layout(path: Path) -> dict:
        with h5py.File(path, "r") as handle:
            group = next(iter(handle["Reads"].values()))
            root = {
                name: (type(value), handle.attrs.get_id(name).get_type().__class__)
                for name, value in handle.attrs.items()
            }
            return {
                "root": root,
                "groups": list(handle),
                "attrs": {name: type(value) for name, value in group.attrs.items()},
                "datasets": {name: (d.dtype, d.ndim, d.chunks, d.compression) for name, d in group.items()},
            }

    assert layout(result.labels) == layout(real)
