"""Where and how wide packs train: the device, intra-op threads and worker processes.

On a CPU every pack trains with ONE intra-op thread, whatever the machine:
torch's default (one thread per core) stalls 10-20x in OpenMP barriers as
soon as anything else uses the cores, and a different thread count changes
the last bits of a run's numbers. Parallelism comes from worker processes
instead, one per usable core by default (benchmarks/RESULTS.md,
bench_contention.py), and each pack is cut into one part per worker so that a
study of one big pack (an hpspace grid) keeps every core busy: on a CPU a
run's numbers do not depend on the pack it trains in
(tests/test_pack_invariance.py). ``threads`` overrides the count for users
who accept numbers that differ from the 1-thread default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from minarch.errors import OptionError
from minarch.execute.pack import Pack
from minarch.execute.planner import forward_flops
from minarch.train import ENGINES, batched_lanes, overhead_bound

CPU_THREADS = 1


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is the user's error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise OptionError("device", device, "no CUDA device is available (train on cpu)")
    if device not in ("cpu", "cuda"):
        raise OptionError("device", device, "expected auto, cpu or cuda")
    return torch.device(device)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. a container's or taskset's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity mask
        return os.cpu_count() or 1


def resolve_workers(workers: int | str, device: torch.device, *, packs: int, runs: int) -> int:
    """``auto``: one worker per usable core or GPU, never more than can train at once.

    That is the runs on a CPU (packs are cut per worker there, ``split_for_workers``)
    and the packs on a GPU.
    """
    if workers == "auto":
        if device.type == "cuda":
            return max(1, min(torch.cuda.device_count(), packs))
        return max(1, min(usable_cores(), runs))
    if isinstance(workers, str):
        if not workers.isdigit():
            raise OptionError("workers", workers, "expected a positive number or auto")
        workers = int(workers)
    if workers < 1:
        raise OptionError("workers", workers, "expected a positive number or auto")
    return workers


def split_for_workers(
    packs: Sequence[Pack], device: torch.device, workers: int, engine: str = "auto"
) -> list[Pack]:
    """On a CPU, every pack in ``workers`` parts, so idle workers take the rest of a big pack.

    A pack that trains batched is cut between its fleets only: a fleet's
    lanes cost the same whether its runs are all there or not (benchmarks/
    RESULTS.md, "Cut packs and the batched engine"). On a GPU packs stay
    whole: there a pack's members share each step, and the numbers may
    depend on the pack.
    """
    if device.type != "cpu" or workers < 2:
        return list(packs)
    return [
        part
        for pack in packs
        for part in pack.split(
            workers, lanes=batched_lanes(device) if trains_batched(pack, engine) else None
        )
    ]


def trains_batched(pack: Pack, engine: str) -> bool:
    """Whether ``engine`` may train ``pack`` batched on a CPU (``train.choose_engine``).

    Read from the planned FLOPs, without building the model: an overhead-bound
    linear chain, which trains fused or plain, is then cut between fleets too,
    coarser than it could be but never into ghost lanes.
    """
    return engine == "batched" or (engine == "auto" and overhead_bound(forward_flops(pack.first)))


def memory_share(device: torch.device, workers: int, gpus_per_pack: float | None) -> float:
    """This process's fraction of its device's memory, which its memory plan budgets.

    A Ray task holds its ``gpus_per_pack``; local workers split the device
    they share (on GPUs, the workers that ``worker_device`` puts on each).
    """
    if gpus_per_pack:
        return min(1.0, gpus_per_pack)
    if device.type == "cuda":
        return 1.0 / math.ceil(workers / max(1, torch.cuda.device_count()))
    return 1.0 / workers


def resolve_engine(asked: str | None, study: str) -> str:
    """The pack engine: the command line's, else the study file's ``execution.engine``."""
    engine = study if asked is None else asked
    if engine not in ENGINES:
        raise OptionError("engine", engine, f"expected one of {', '.join(ENGINES)}")
    return engine


def resolve_threads(threads: int | None, device: torch.device) -> int:
    """Intra-op threads per pack: 1 on a CPU unless overridden; torch's own count on a GPU."""
    if threads is not None:
        if threads < 1:
            raise OptionError("threads", threads, "expected a positive number")
        return threads
    return CPU_THREADS if device.type == "cpu" else torch.get_num_threads()


@contextmanager
def intra_op_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads for the block, restored after (the API may run in a notebook)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def worker_device(device: torch.device, index: int) -> torch.device:
    """Worker ``index`` trains on GPU ``index`` mod the GPU count; CPU workers share the CPU."""
    if device.type == "cuda":
        return torch.device(f"cuda:{index % torch.cuda.device_count()}")
    return device
