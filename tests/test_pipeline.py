"""The threaded pipeline: order, every read exactly once, errors forwarded (never a hang), exact stitching."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from basecall.chunker import pad_signal
from basecall.config import ALPHABET, BasecallerConfig
from basecall.decoder import greedy
from basecall.errors import ConfigError
from basecall.pipeline import basecall_reads, in_thread
from basecall.records import Calibration, CalledRead, Failure, Read


class LocalModel(torch.nn.Module):
    """A stand-in network whose output at timestep t depends only on samples [t*stride, (t+1)*stride).

    With no context across timesteps, chunking + stitching must give exactly the decode of the whole read.
    """

    stride = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, L) → (L / stride, N, 5)
        n, _, length = x.shape
        level = x.reshape(n, length // self.stride, self.stride).mean(-1)  # (N, T)
        labels = torch.bucketize(level, torch.tensor([-1.0, -0.3, 0.3, 1.0]))  # 0..4
        scores = torch.nn.functional.one_hot(labels, 5).float() * 4.0 + 0.1 * level[..., None]
        return scores.log_softmax(-1).permute(1, 0, 2)  # (T, N, 5)


def make_read(read_id: str, n_samples: int, seed: int) -> Read:
    rng = np.random.default_rng(seed)
    levels = rng.normal(0, 300, size=n_samples // 20 + 1).repeat(20)[:n_samples]
    signal = (levels + rng.normal(0, 30, n_samples)).astype(np.int16)
    return Read(read_id, signal, Calibration(0.0, 0.1), 4000.0, "run", 1, 0, "mem.pod5")


def whole_read_sequence(model: torch.nn.Module, read: Read) -> str:
    from basecall.signal import normalise

    signal = normalise(read.signal_pa)
    padded = pad_signal(signal, -(-len(signal) // model.stride) * model.stride)
    moves, bases, _ = greedy(model(torch.from_numpy(padded)[None, None]))
    m = moves[0].numpy().astype(bool)
    return "".join(ALPHABET[b] for b in bases[0].numpy()[m])


@pytest.mark.parametrize(
    "chunksize, overlap, batch_size, chunk_threads",
    [(400, 80, 1, 1), (400, 8, 3, 1), (200, 100, 7, 3), (1000, 400, 64, 1), (40, 36, 5, 2)],
)
def test_pipeline_equals_decoding_each_whole_read(chunksize: int, overlap: int, batch_size: int, chunk_threads: int) -> None:
    model = LocalModel()
    lengths = [100, 157, 399, 400, 401, 1234, 5000]
    reads = [make_read(f"read{i}", n, seed=i) for i, n in enumerate(lengths)]
    config = BasecallerConfig(chunksize=chunksize, overlap=overlap, batch_size=batch_size)
    results = list(basecall_reads(model, reads, config, chunk_threads=chunk_threads))
    assert [r.read.read_id for r in results] == [r.read_id for r in reads]
    for read, called in zip(reads, results):
        assert isinstance(called, CalledRead)
        assert called.n_samples == read.n_samples
        assert len(called.moves) == -(-read.n_samples // model.stride)
        assert called.sequence == whole_read_sequence(model, read)
        assert len(called.qualities) == len(called.sequence)


class EdgeBlindModel(LocalModel):
    """LocalModel, except that the first and last `edge` timesteps of every input it sees are called confidently as
    A, C, G counting from the edge: like a real network at a chunk's edges, where it lacks context on one side.

    Stitching that keeps each chunk's middle (the overlap split at its midpoint) never uses those timesteps inside a
    read, so with an overlap of at least 2 * edge + 2 timesteps the read's calls are those of the whole read at once.
    Keeping a chunk up to its end, or taking the next chunk from its start, puts the wrong bases in the middle.
    """

    edge = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, L) → (L / stride, N, 5)
        out = super().forward(x).clone()  # (T, N, 5)
        for distance in range(self.edge):  # from the edge: A, C, G at either end
            wrong = torch.nn.functional.one_hot(torch.tensor(1 + distance), 5).float().mul(20).log_softmax(-1)
            out[distance] = out[-1 - distance] = wrong
        return out


def whole_read_calls(model: torch.nn.Module, read: Read) -> tuple[str, np.ndarray]:
    """(sequence, moves) of the read decoded in one piece, padded to the stride as the chunker pads it."""
    from basecall.signal import normalise

    signal = normalise(read.signal_pa)
    padded = pad_signal(signal, -(-len(signal) // model.stride) * model.stride)
    moves, bases, _ = greedy(model(torch.from_numpy(padded)[None, None]))
    m = moves[0].numpy().astype(bool)
    return "".join(ALPHABET[b] for b in bases[0].numpy()[m]), moves[0].numpy()


@pytest.mark.parametrize("chunksize, overlap", [(400, 80), (400, 32), (200, 100), (1000, 400), (120, 40)])
def test_stitching_keeps_each_chunks_middle_for_a_model_with_edge_effects(chunksize: int, overlap: int) -> None:
    model = EdgeBlindModel()
    assert overlap // model.stride >= 2 * model.edge + 2
    reads = [make_read(f"read{i}", n, seed=i) for i, n in enumerate([chunksize, 1001, 1234, 2001, 5000])]
    config = BasecallerConfig(chunksize=chunksize, overlap=overlap, batch_size=4)
    results = list(basecall_reads(model, reads, config))
    for read, called in zip(reads, results, strict=True):
        sequence, moves = whole_read_calls(model, read)
        assert called.sequence == sequence, read.read_id
        assert np.array_equal(called.moves, moves), read.read_id


@pytest.mark.parametrize("chunk_threads", [1, 3])
def test_failures_pass_through_in_order_and_bad_reads_become_failures(chunk_threads: int) -> None:
    flat = Read("flat", np.full(500, 7, np.int16), Calibration(0.0, 1.0), 4000.0, "run", 1, 0, "mem.pod5")
    empty = Read("empty", np.zeros(0, np.int16), Calibration(0.0, 1.0), 4000.0, "run", 1, 0, "mem.pod5")
    items = [make_read("a", 2000, 1), Failure("broken.fast5", "not a readable fast5"), flat, make_read("b", 900, 2), empty]
    config = BasecallerConfig(chunksize=400, overlap=80, batch_size=4)
    results = list(basecall_reads(LocalModel(), items, config, chunk_threads=chunk_threads))
    kinds = [(type(r).__name__, r.read_id if isinstance(r, Failure) else r.read.read_id) for r in results]
    assert kinds == [("CalledRead", "a"), ("Failure", None), ("Failure", "flat"), ("CalledRead", "b"), ("Failure", "empty")]
    assert "flat" in results[2].reason and "no samples" in results[4].reason
    assert results[2].n_samples == 500


@pytest.mark.parametrize(
    "n_samples, calibration, reason",
    [
        (99, Calibration(0.0, 1.0), "too few samples (99 < 100)"),
        (500, Calibration(0.0, 0.0), "impossible calibration"),
        (500, Calibration(0.0, -0.2), "impossible calibration"),
        (500, Calibration(float("nan"), 0.2), "impossible calibration"),
        (500, Calibration(0.0, float("inf")), "impossible calibration"),
        (500, Calibration(3e38, 10.0), "NaN or infinite values after scaling"),
    ],
)
def test_unusable_reads_fail_with_their_reason_and_the_run_goes_on(n_samples: int, calibration, reason: str) -> None:
    bad = Read("bad", make_read("x", n_samples, 3).signal, calibration, 4000.0, "run", 1, 0, "mem.pod5")
    items = [make_read("a", 900, 1), bad, make_read("b", 900, 2)]
    results = list(basecall_reads(LocalModel(), items, BasecallerConfig(chunksize=400, overlap=80, batch_size=4)))
    assert [type(r).__name__ for r in results] == ["CalledRead", "Failure", "CalledRead"]
    assert reason in results[1].reason and results[1].read_id == "bad"


def test_a_stage_that_raises_forwards_the_error() -> None:
    def reads():
        yield make_read("a", 1000, 1)
        raise OSError("disk on fire")

    config = BasecallerConfig(chunksize=400, overlap=80, batch_size=2)
    with pytest.raises(OSError, match="disk on fire"):
        list(basecall_reads(LocalModel(), reads(), config))


def test_a_model_that_raises_forwards_the_error_without_hanging() -> None:
    class Broken(LocalModel):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("out of memory (pretend)")

    reads = [make_read(str(i), 3000, i) for i in range(20)]
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="pretend"):
        list(basecall_reads(Broken(), reads, BasecallerConfig(chunksize=400, overlap=80, batch_size=2)))
    assert time.monotonic() - started < 30


def test_in_thread_preserves_order_and_stops_when_the_consumer_stops() -> None:
    produced = []
    finished = threading.Event()

    def numbers():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            finished.set()

    stream = in_thread(numbers(), "test", maxsize=2)
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    stream.close()
    assert finished.wait(5), "the producer kept running after the consumer stopped"
    assert len(produced) < 100


def test_tiny_real_model_calls_every_read_once(tiny_model_dir) -> None:
    from basecall.model import load_model

    loaded = load_model(str(tiny_model_dir))
    reads = [make_read(f"r{i}", n, i) for i, n in enumerate([100, 999, 1000, 1001, 25_000])]
    results = list(basecall_reads(loaded.model, reads, loaded.config.basecaller))
    assert [r.read.read_id for r in results] == [r.read_id for r in reads]
    for called in results:
        assert set(called.sequence) <= set("ACGT")
        assert len(called.qualities) == len(called.sequence) == int(called.moves.sum())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_decoding_equals_cpu_decoding_and_pipeline_runs_on_gpu(tiny_model_dir) -> None:
    from basecall.model import load_model

    log_probs = torch.randn(200, 16, 5).log_softmax(-1)
    for cpu, gpu in zip(greedy(log_probs), greedy(log_probs.cuda())):
        assert torch.equal(cpu, gpu.cpu())
    loaded = load_model(str(tiny_model_dir), "cuda")
    reads = [make_read(f"r{i}", n, i) for i, n in enumerate([100, 5000, 25_000])]
    results = list(basecall_reads(loaded.model, reads, loaded.config.basecaller, "cuda"))
    assert [r.read.read_id for r in results] == [r.read_id for r in reads]


@pytest.mark.parametrize("n_extra", [1, 3])
def test_several_devices_give_the_same_calls_in_order(n_extra: int) -> None:
    """`--device cuda:all` deals batches to a model replica per GPU; two or four CPU 'devices' stand in for GPUs."""
    model = LocalModel()
    reads = [make_read(f"r{i}", n, seed=i) for i, n in enumerate([5000, 150, 2400, 401, 9000, 800])]
    items = reads[:2] + [Failure("broken.fast5", "not a readable fast5")] + reads[2:]
    config = BasecallerConfig(chunksize=400, overlap=80, batch_size=3)
    one = list(basecall_reads(model, items, config))
    several = list(basecall_reads(model, items, config, more_devices=[torch.device("cpu")] * n_extra))
    assert [type(r).__name__ for r in several] == [type(r).__name__ for r in one]
    for a, b in zip(one, several):
        if isinstance(a, CalledRead):
            assert (a.read.read_id, a.sequence) == (b.read.read_id, b.sequence)
            assert np.array_equal(a.moves, b.moves) and np.array_equal(a.qualities, b.qualities)


def test_cpu_runs_one_single_threaded_replica_per_core() -> None:
    import os

    from basecall.model import resolve_devices

    threads = torch.get_num_threads()
    try:
        assert resolve_devices("cpu", 3) == [torch.device("cpu")] * 3
        assert torch.get_num_threads() == 1
        assert resolve_devices("cpu") == [torch.device("cpu")] * len(os.sched_getaffinity(0))
    finally:
        torch.set_num_threads(threads)


def test_cuda_all_without_a_gpu_is_a_clear_error() -> None:
    from basecall.model import resolve_devices

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="cuda:all"):
            resolve_devices("cuda:all")
    else:
        assert resolve_devices("cuda:all") == [torch.device("cuda", i) for i in range(torch.cuda.device_count())]


def test_forward_dtype_auto_is_fp16_on_cuda_bf16_on_cpus_that_have_it_except_for_grus(monkeypatch) -> None:
    from basecall.model import forward_dtype

    cpu = torch.device("cpu")
    assert forward_dtype(torch.device("cuda"), "auto") == torch.float16
    assert forward_dtype(torch.device("cuda"), "fp32") is None
    for native, expected in [(True, torch.bfloat16), (False, None)]:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda native=native: native)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert forward_dtype(cpu, "auto") == expected
        assert forward_dtype(cpu, "fp32") is None
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert forward_dtype(cpu, "auto", LocalModel()) == torch.bfloat16
    gru = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 3), torch.nn.GRU(4, 4))
    assert forward_dtype(cpu, "auto", gru) is None  # slower in bf16 than in fp32 on this CPU
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        forward_dtype(cpu, "fp16")


class AutocastProbe(LocalModel):
    """LocalModel that records the autocast state its forward pass ran under, and returns bf16 when under it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[bool, torch.dtype]] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        on = torch.is_autocast_enabled("cpu")
        self.seen.add((on, torch.get_autocast_dtype("cpu")))
        out = super().forward(x)
        return out.to(torch.bfloat16) if on else out


def test_precision_reaches_the_forward_pass_and_decoding_stays_fp32(monkeypatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    reads = [make_read(f"r{i}", n, seed=i) for i, n in enumerate([5000, 401])]
    config = BasecallerConfig(chunksize=400, overlap=80, batch_size=3)
    decoded_dtypes = set()

    def recording_greedy(log_probs: torch.Tensor):
        decoded_dtypes.add(log_probs.dtype)
        return greedy(log_probs)

    calls = {}
    for precision, expected in [("auto", (True, torch.bfloat16)), ("fp32", (False,))]:
        probe = AutocastProbe()
        calls[precision] = list(basecall_reads(probe, reads, config, decode=recording_greedy, precision=precision))
        assert {seen[: len(expected)] for seen in probe.seen} == {expected}
    assert decoded_dtypes == {torch.float32}
    # bf16 rounds the scores, but LocalModel's one-hot margin is far larger than that: the same calls
    assert [c.sequence for c in calls["auto"]] == [c.sequence for c in calls["fp32"]]
