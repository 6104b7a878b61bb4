"""Training on several processes (GPUs, nodes) started by torchrun: the process group and the few collective steps
the training loop needs. Without torchrun these are no-ops, so one code path trains on one process or many.

Every process loads the same data and builds the same chunks each epoch (same seed); each trains on its own share of
them (`shard`), DistributedDataParallel averages the gradients, and rank 0 alone validates and writes files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from basecall.errors import ConfigError
from basecall.model import resolve_device

# Ranks other than 0 wait at a barrier while rank 0 validates and writes a checkpoint: allow a long validation.
TIMEOUT = timedelta(hours=1)


@contextmanager
def process_group(device: str) -> Iterator[torch.device]:
    """Yield this process's device; under torchrun, inside a process group (nccl on GPUs, gloo on CPU).

    Under torchrun, `device` auto or cuda means the GPU of this process's local rank (cuda:N is refused: the
    processes would share one GPU), cpu means the gloo backend.
    """
    torch_device = resolve_device(device)
    if "LOCAL_RANK" not in os.environ:  # not started by torchrun
        yield torch_device
        return
    if torch_device.type == "cuda":
        if torch_device.index is not None:
            raise ConfigError(f"--device {device}: under torchrun each process takes its local rank's GPU; give cuda")
        torch_device = resolve_device(f"cuda:{os.environ['LOCAL_RANK']}")
        torch.cuda.set_device(torch_device)
        dist.init_process_group("nccl", timeout=TIMEOUT, device_id=torch_device)
    else:
        dist.init_process_group("gloo", timeout=TIMEOUT)
    try:
        yield torch_device
    finally:
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model in DistributedDataParallel (gradients averaged over the processes), or as it is on one process."""
    if not dist.is_initialized():
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(n: int, seed: int, epoch: int) -> np.ndarray:
    """This process's share of a shuffled 0..n-1 (the same shuffle on every process; a new one each epoch): every
    process gets n // world_size indices, so all take the same number of steps."""
    sampler = DistributedSampler(range(n), world_size(), rank(), shuffle=True, seed=seed, drop_last=True)  # type: ignore[arg-type]
    sampler.set_epoch(epoch)
    return np.fromiter(sampler, np.int64, count=len(sampler))


def mean(value: float, device: torch.device) -> float:
    """The mean of `value` over the processes."""
    if not dist.is_initialized():
        return value
    total = torch.tensor(value, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.item() / world_size()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
