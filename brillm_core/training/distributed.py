"""Training under torchrun: the process group, gradient averaging, and the checks that ranks agree.

Under ``torchrun`` (WORLD_SIZE > 1) each process trains on its own slice of every global
batch, with the ``Objective`` wrapped in DistributedDataParallel (NCCL on GPUs, Gloo on
CPU). Its communication hook ``average_gradients`` all-reduces dense buckets and
averages sparse row gradients by all_gather of (row indices, values) and a coalescing
sum: NCCL has no sparse all-reduce, so GPUs and CPUs run this same, tested code, and
every rank applies the identical averaged gradient.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import TrainingError
from ..model import BriLLM, default_device


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a torchrun job (world 1 when run alone)."""

    world: int = 1
    rank: int = 0

    @property
    def active(self) -> bool:
        """True under torchrun with more than one process."""
        return self.world > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the torchrun process group (NCCL on CUDA, Gloo on CPU) when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_world_size(), dist.get_rank())


def training_device() -> torch.device:
    """CUDA (this process's LOCAL_RANK GPU) when present, CPU otherwise."""
    device = default_device()
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def allreduce_sparse(grad: torch.Tensor, world: int) -> torch.Tensor:
    """Average a sparse row gradient over ranks: all_gather (indices, values), coalesce, divide."""
    g = grad.coalesce()
    idx, val = g.indices()[0], g.values()
    count = torch.tensor([idx.numel()], device=idx.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    most = int(max(int(c) for c in counts))
    pad_idx = torch.zeros(most, dtype=idx.dtype, device=idx.device)
    pad_val = torch.zeros(most, *val.shape[1:], dtype=val.dtype, device=val.device)
    pad_idx[: idx.numel()], pad_val[: idx.numel()] = idx, val
    all_idx = [torch.empty_like(pad_idx) for _ in range(world)]
    all_val = [torch.empty_like(pad_val) for _ in range(world)]
    dist.all_gather(all_idx, pad_idx)
    dist.all_gather(all_val, pad_val)
    n = [int(c) for c in counts]
    idx = torch.cat([t[:k] for t, k in zip(all_idx, n)])
    val = torch.cat([t[:k] for t, k in zip(all_val, n)])
    return (torch.sparse_coo_tensor(idx[None], val, g.shape).coalesce() / world).coalesce()


def average_gradients(world, bucket):  # unannotated: DDP compares annotations as objects, ours are strings
    """DistributedDataParallel communication hook (world size, dist.GradBucket -> Future of the tensor):
    the bucket's gradient averaged over the ranks (all_reduce when dense; all_gather of rows
    when sparse, which NCCL cannot all-reduce)."""
    grad = bucket.buffer()
    if grad.is_sparse:
        done: torch.futures.Future[torch.Tensor] = torch.futures.Future()
        done.set_result(allreduce_sparse(grad, world))
        return done
    return dist.all_reduce(grad.div_(world), async_op=True).get_future().then(lambda f: f.value()[0])


def rank_checksums(model: BriLLM) -> list[list[float]]:
    """Every rank's parameter sums, gathered; raises if the ranks no longer hold identical parameters."""
    sums = torch.stack([p.detach().double().sum() for p in (model.weights, model.biases, model.node_bias, model.positions)])
    sums = torch.cat([sums, model.weights.detach().double().square().sum().unsqueeze(0)])
    gathered = [torch.empty_like(sums) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, sums)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise TrainingError("the processes no longer hold identical parameters (distributed gradients out of step); please report this")
    return [g.tolist() for g in gathered]


def broadcast_text(text: str, info: DistInfo, device: torch.device) -> str:
    """Rank 0's ``text`` on every rank (ASCII, such as a run id or a folder name); ``text`` itself when alone.

    The tensors sit on the training ``device``: NCCL moves only GPU tensors.
    """
    if not info.active:
        return text
    size = torch.tensor([len(text)], device=device)
    dist.broadcast(size, src=0)
    data = torch.tensor(list(text.encode("ascii")) if info.rank == 0 else [0] * int(size), dtype=torch.uint8, device=device)
    dist.broadcast(data, src=0)
    return bytes(data.tolist()).decode("ascii")
