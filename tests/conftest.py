"""Shared fixtures: real data from ../shared/data (skipped when absent, failing under CI=true) and two models: a tiny
untrained one for plumbing, and a trained one whose calls vary with the signal for tests that compare calls."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("BASECALL_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; skip the test when it is missing, fail when CI=true."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"real data not found: {path} (a fresh clone has no ../shared/data)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI=true requires it")
        pytest.skip(message)
    return path


@pytest.fixture
def three_mer_table(tmp_path: Path) -> Path:
    """A 3-mer pore model in the ONT TSV format (level = 60 + the k-mer's index, pA), for `basecall simulate`."""
    kmers = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT"]
    table = tmp_path / "3mer.model"
    rows = [f"{kmer}\t{60 + i}\t1.5\t1.2\t0.7" for i, kmer in enumerate(kmers)]
    table.write_text("kmer\tlevel_mean\tlevel_stdv\tsd_mean\tsd_stdv\n" + "\n".join(rows) + "\n")
    return table


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained small model directory (stride 5, chunks of 1000 samples): real code path, fast on CPU."""
    import torch

    from basecall.config import BasecallerConfig, Config, ModelConfig
    from basecall.model import Model, save_model

    torch.manual_seed(0)
    config = Config(
        model=ModelConfig(stride=5, stride_kernel=15, cnn_channels=16, residual_blocks=1, rnn_layers=1, rnn_size=16),
        basecaller=BasecallerConfig(chunksize=1000, overlap=100, batch_size=8),
    ).check()
    return save_model(Model(config.model), config, tmp_path_factory.mktemp("models") / "tiny")


CALLING_MODEL = "r9.4.1-fast"  # shipped: DeepNano-blitz rnn48, stride 3


@pytest.fixture(scope="session")
def calling_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped r9.4.1-fast model, named "fast", with its run settings pinned (chunks of 3000 samples
    overlapping by 300, batches of 8): a trained network whose calls vary with the signal, for the tests that compare
    sequences, qualities or move tables between runs (resume, SAM/BAM against FASTQ, merged shards). With
    `tiny_model_dir` every read is called "T" or so, and records paired with the wrong read or kept stale go unseen.

    Precondition, checked here (no ../shared/data needed): on `random_reads` (the tests' reads) its calls all differ
    and their median length is over 50 bases. Measured: 6 reads of seed 3 give 16-3,145 bases (median 260), 200 reads
    of seed 21 give 200 different calls (median 606), mean qscores 4.5-6.2.
    """
    import shutil
    import statistics
    from dataclasses import replace

    from basecall.config import BasecallerConfig, load_config, save_config
    from basecall.model import load_model, shipped_models
    from basecall.pipeline import basecall_reads
    from basecall.rawfiles import random_reads
    from basecall.records import CalledRead

    target = tmp_path_factory.mktemp("models") / "fast"
    shutil.copytree(shipped_models()[CALLING_MODEL], target)
    config = load_config(target / "config.toml")
    settings = BasecallerConfig(chunksize=3000, overlap=300, batch_size=8)
    save_config(replace(config, basecaller=settings), target / "config.toml")

    loaded = load_model(str(target))
    reads = random_reads(8, seed=3)
    results = basecall_reads(loaded.model, reads, loaded.config.basecaller)
    sequences = [called.sequence for called in results if isinstance(called, CalledRead)]
    assert len(set(sequences)) == len(reads), f"the calling model's calls are not all different: {sequences}"
    assert statistics.median(map(len, sequences)) > 50, f"the calling model's calls are too short: {sequences}"
    return target
