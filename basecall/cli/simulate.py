"""`basecall simulate`: a pore model and sequences → raw pod5 / fast5 reads with their truth and labels."""

from __future__ import annotations

import logging
from dataclasses import replace

import click

from basecall.cli import Option, configure_logging, logging_options

log = logging.getLogger("basecall.cli")


@click.command()
@click.option("--pore-model", required=True, type=click.Path(exists=True, dir_okay=False), help="k-mer model: ONT TSV table (pA) or Uncalled4 .npz.")
@click.option("--reference", type=click.Path(exists=True, dir_okay=False), metavar="FASTA", help="FASTA (gzip or not) to sample reads from. [default: none; give this or --random-genome-length]")
@click.option("--random-genome-length", type=click.IntRange(min=1), metavar="BASES", help="Sample reads from a random genome of this length instead (written to OUTPUT/genome.fasta). [default: none; give this or --reference]")
@click.option("-n", "--n-reads", type=click.IntRange(min=1), default=100, show_default=True, help="Reads to simulate.")
@click.option("-o", "--output", "out", cls=Option, old_names=["--out"], required=True, type=click.Path(file_okay=False), metavar="DIR", help="Output folder (new or empty).")
@click.option("--format", "file_format", type=click.Choice(["pod5", "fast5", "both"]), default="pod5", show_default=True, help="Raw read files to write.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Same seed and options → identical files.")
@click.option("--chemistry", type=click.Choice(["r9.4.1", "r10.4.1"]), help="Fitted signal defaults. [default: r10.4.1 for 9-mer models, else r9.4.1]")
@click.option("--sample-rate", type=click.IntRange(min=1), metavar="HZ", help="Samples per second. [default: 4000 for r9.4.1, 5000 for r10.4.1]")
@click.option("--bases-per-second", type=click.FloatRange(min=0, min_open=True), help="Mean translocation speed in bases/s. [default: 400]")
@click.option("--mean-read-length", type=click.FloatRange(min=1), default=5000, show_default=True, metavar="BASES", help="Mean of the gamma read-length distribution.")
@click.option("--min-read-length", type=click.IntRange(min=1), default=200, show_default=True, metavar="BASES", help="Shortest read: shorter draws are lengthened to this.")
@click.option("--reads-per-file", type=click.IntRange(min=1), default=4000, show_default=True, help="Reads in each pod5 / fast5 file.")
@logging_options
def simulate(
    pore_model: str,
    reference: str | None,
    random_genome_length: int | None,
    n_reads: int,
    out: str,
    file_format: str,
    seed: int,
    chemistry: str | None,
    sample_rate: int | None,
    bases_per_second: float | None,
    mean_read_length: float,
    min_read_length: int,
    reads_per_file: int,
    quiet: bool,
    verbose: int,
    debug: bool,
) -> None:
    """Simulate raw nanopore reads from a k-mer pore model.

    Reads are sampled from --reference (both strands) or from a random genome, turned into signal (per-base dwell,
    level and sample noise, per-read scale and shift, int16 digitisation) and written to OUTPUT: reads_<i>.pod5 and/or
    reads_<i>.fast5, truth.fasta (read id, source, the bases in signal order) and labels.hdf5 (Taiyaki mapped-signal
    v8: Dacs, Reference, Ref_to_signal per read).

    \b
    Example:
      basecall simulate --pore-model ../shared/data/pore_models/kmer_models/template_median68pA.model \\
          --reference lambda.fa --n-reads 1000 -o sim/ --format both --seed 1
    """
    configure_logging(quiet, verbose)
    import numpy as np

    from basecall.errors import ConfigError
    from basecall.sequence import read_fasta, write_fasta
    from basecall.simulate import CHEMISTRIES, chemistry_for, load_pore_model, random_genome
    from basecall.simulate import simulate as run_simulation

    if (reference is None) == (random_genome_length is None):
        raise ConfigError("give exactly one of --reference FASTA and --random-genome-length BASES")
    model = load_pore_model(pore_model)
    preset = CHEMISTRIES[chemistry] if chemistry else chemistry_for(model)
    signal_model = preset.signal_model
    if bases_per_second is not None:
        signal_model = replace(signal_model, bases_per_s=bases_per_second)
    if reference is not None:
        sequences = read_fasta(reference)
    else:
        sequences = {"random_genome": random_genome(random_genome_length, np.random.default_rng((seed, 1)))}
    sample_rate_hz = sample_rate or preset.sample_rate_hz
    log.info("%s (%d-mer), %s defaults, %g Hz", model.name, model.k, preset.name, sample_rate_hz)
    result = run_simulation(
        out, sequences, model, n_reads, seed,
        formats=["pod5", "fast5"] if file_format == "both" else [file_format],
        reads_per_file=reads_per_file,
        sample_rate_hz=sample_rate_hz,
        mean_read_length=mean_read_length,
        min_read_length=min_read_length,
        model=signal_model,
    )  # fmt: skip
    if random_genome_length is not None:
        write_fasta(sequences.items(), result.truth.with_name("genome.fasta"))
    if not quiet:
        files = [path.name for path in [*result.read_files, result.truth, result.labels]]
        click.echo(
            f"basecall: simulated {result.n_reads} reads ({result.n_bases:,} bases, {result.n_samples:,} samples) "
            f"into {out}: {', '.join(files)}",
            err=True,
        )
