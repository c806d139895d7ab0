"""Several processes (GPUs, or CPU processes with gloo): shard the search, share the update.

Launch any ``dslib`` command under ``accelerate launch`` or ``torchrun``; the CLI calls
:func:`init_from_env`, which joins the process group the launcher describes (``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``). One training step then runs as
(docs/paper-notes.md#hyperparameters: the released run is 8 GPUs, each rank rolling out its part of
the batch):

1. every rank draws the same ``problems_per_step`` problems (the seeded shuffle) and searches
   its shard ``problems[rank::world]``, with its own sampling seed;
2. the samples are gathered, so every rank holds the global batch in the same order;
3. each mini-batch is the same on every rank; a rank computes the loss of the members it owns
   (global index % world == rank) divided by the mini-batch's GLOBAL count (tokens for
   token-mean), so the per-rank gradients sum to the single-process gradient;
4. gradients are summed over ranks (``all_reduce``), then clipped and applied identically, so
   the weights stay equal on every rank and equal to one process with the same global batch
   (up to float summation order; a test checks ≤ 1e-6).

Rank 0 alone writes checkpoints, metrics and plots, and runs the held-out evaluation. This is
data parallelism with full model replicas: by arithmetic (4 + 4 + 8 bytes per parameter) a
1.5B model with fp32 master weights, gradients and AdamW state takes about 24 GB plus
activations, which an 80 GB GPU holds (not measured here: no GPU run yet).

Optimizer-state sharding (ZeRO stage 1) is available with ``--set optim.shard_optimizer=true``
(``torch.distributed.optim.ZeroRedundancyOptimizer``): step 4 then runs AdamW on each rank's
1/world of the parameters, on the full summed and clipped gradient, and broadcasts the new
values, so the weights are the same as above. AdamW keeps two moments per parameter in the
parameters' dtype: with fp32 master weights (the paper preset) 8 bytes/parameter, so for a 1.5B
model 12 GB per replica become 12/world GB. At a checkpoint
every rank sends its part to rank 0 (``Learner.gather_state``, a collective), which
saves the full state: a resumed run loads it sharded or not. Parameter and gradient sharding
(FSDP, ZeRO stages 2/3) is not implemented: every rank still holds the whole model and its
whole gradient.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    """This process's place in the group (``world == 1``: a single process)."""

    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """The process that writes files and evaluates."""
        return self.rank == 0


def current() -> Dist:
    """The group this process belongs to, or a single-process :class:`Dist`."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size())
    return Dist()


def init_from_env(backend: str | None = None) -> Dist:
    """Join the process group a launcher (accelerate, torchrun) set up in the environment.

    Nothing happens for a single process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``). The backend
    defaults to NCCL with CUDA, else gloo (CPU processes).
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and dist.is_available() and not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return current()


def shard(items: Sequence[T], d: Dist) -> list[T]:
    """This rank's share of ``items``: every ``world``-th item from position ``rank``."""
    return list(items[d.rank :: d.world])


def owned(indices: Iterable[int], d: Dist) -> list[int]:
    """The global indices this rank computes (``index % world == rank``)."""
    return [i for i in indices if i % d.world == d.rank]


def gather(obj: Any, d: Dist) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` for a single process)."""
    if not d.active:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def sum_gradients(parameters: Iterable[torch.nn.Parameter], d: Dist) -> None:
    """Sum ``.grad`` over ranks in place (a parameter without a gradient contributes zeros)."""
    if not d.active:
        return
    import torch.distributed as dist

    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


def sum_scalar(value: float, d: Dist) -> float:
    """A float summed over ranks."""
    if not d.active:
        return float(value)
    import torch.distributed as dist

    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item())
