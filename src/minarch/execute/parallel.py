"""Train a study in N worker processes on one machine.

Each worker is an ordinary executor with its own store connection; the
store's atomic claims split the packs between them, so nothing here
coordinates work. On a CPU the cores are split between workers (N processes
each spinning all cores would stall each other); on GPUs worker i takes
GPU i mod the device count.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from minarch.execute.local import DatasetCache, Summary, execute, progress_bar
from minarch.spec import RunConfig
from minarch.store import Store, open_store

POLL_SECONDS = 1.0


@dataclass(frozen=True)
class WorkerJob:
    study: str
    configs: dict[str, RunConfig]
    db_url: str
    data_dir: Path
    download: bool
    artifacts: Path
    device: str
    threads: int


def execute_in_workers(
    study: str,
    configs: dict[str, RunConfig],
    store: Store,
    *,
    workers: int,
    db_url: str,
    data_dir: Path,
    download: bool,
    artifacts: Path,
    device: torch.device,
    console: Console,
) -> Summary:
    """Run ``workers`` executors side by side; the parent shows progress from the store."""
    started = time.perf_counter()
    jobs = [
        WorkerJob(
            study,
            configs,
            db_url,
            data_dir,
            download,
            artifacts,
            _worker_device(device, index),
            _threads(device, workers),
        )
        for index in range(workers)
    ]
    todo = _unfinished(store, study)
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.map_async(_work, jobs)
        with progress_bar(console) as progress:
            task = progress.add_task(f"runs ({workers} workers)", total=todo)
            while not results.ready():
                progress.update(task, completed=todo - _unfinished(store, study))
                results.wait(POLL_SECONDS)
            progress.update(task, completed=todo - _unfinished(store, study))
        summaries = results.get()
    merged = Summary(seconds=time.perf_counter() - started)
    for summary in summaries:
        for state, count in summary.trained.items():
            merged.trained[state] = merged.trained.get(state, 0) + count
    return merged


def _work(job: WorkerJob) -> Summary:
    torch.set_num_threads(job.threads)
    with closing(open_store(job.db_url)) as store:
        datasets = DatasetCache(job.data_dir, torch.device(job.device), download=job.download)
        return execute(
            job.study, job.configs, store, datasets, job.artifacts, console=Console(quiet=True)
        )


def _unfinished(store: Store, study: str) -> int:
    return len(store.runs(study=study, states=["pending", "running", "failed"]))


def _worker_device(device: torch.device, index: int) -> str:
    if device.type == "cuda":
        return f"cuda:{index % torch.cuda.device_count()}"
    return str(device)


def _threads(device: torch.device, workers: int) -> int:
    if device.type == "cuda":
        return torch.get_num_threads()
    return max(1, (os.cpu_count() or 1) // workers)
