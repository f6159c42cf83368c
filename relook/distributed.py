"""Several processes (torchrun / accelerate, one per GPU; gloo between CPU processes): how many there are, and the
two collectives a ReLook rollout needs so that every rank takes the same loop decisions and reports its episodes."""
from __future__ import annotations

import os

# environment variables by which launchers (torchrun, accelerate, MPI) tell a process how many there are
WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
# what a child process must not inherit to run as a single process
LAUNCHER_VARS = WORLD_SIZE_VARS + (
    "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "MASTER_ADDR", "MASTER_PORT",
    "TORCHELASTIC_RUN_ID", "ACCELERATE_USE_DEEPSPEED", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")


def env_world_size() -> int:
    """The number of processes the launcher started (1 when run directly)."""
    for k in WORLD_SIZE_VARS:
        v = os.environ.get(k, "")
        if v.strip().isdigit() and int(v) > 0:
            return int(v)
    return 1


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process in the initialized process group, else (0, 1)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _collective_device():
    """Where a tensor for a collective must live: CPU for gloo (and MPI), this process's GPU for nccl."""
    import torch
    import torch.distributed as dist
    backend = str(dist.get_backend()).lower()
    if "gloo" in backend or backend == "mpi":     # also "cpu:gloo,cuda:nccl": gloo carries CPU tensors
        return torch.device("cpu")
    if "nccl" in backend:
        return torch.device("cuda", torch.cuda.current_device())
    from accelerate import PartialState        # xccl, hccl, ...: the accelerator accelerate set up for this rank
    return PartialState().device


def make_sync():
    """`sync(flag) -> bool`: True when the flag is True on ANY rank (an all-reduce MAX of 0/1), so every rank
    takes the rollout's loop decisions together and makes the same number of generate calls. Identity when a
    single process runs."""
    import torch
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return lambda flag: bool(flag)
    device = _collective_device()

    def sync(flag: bool) -> bool:
        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())
    return sync


def gather_all(obj) -> list:
    """Every rank's `obj`, in rank order, on every rank (a collective: each rank must call it equally often)."""
    import torch.distributed as dist
    rank, world = rank_and_world()
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)    # nccl: pickled through this rank's current GPU (set by accelerate)
    return out
