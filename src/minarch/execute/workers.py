"""Train a study in N worker processes on one machine.

Each worker runs the ordinary claim loop with its own store connection (and
evaluates each pack it trains); the store's atomic claims split the packs
between them, so nothing here coordinates work. The parent only watches: it
shows progress from the store, notices a worker that died (the out-of-memory
killer, kill -9), returns that worker's runs to pending and starts a
replacement, a bounded number of times.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from multiprocessing.process import BaseProcess

from rich.console import Console

from minarch.execute.evaluate import Evaluations
from minarch.execute.executor import Executor, train_in_worker
from minarch.execute.policy import worker_device
from minarch.execute.progress import progress_bar
from minarch.execute.signals import raise_on_sigterm
from minarch.spec import RunConfig
from minarch.store import Store

POLL_SECONDS = 1.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOP_GRACE_SECONDS = 30.0


class WorkerExecutor(Executor):
    """``workspace.workers`` processes, each training with ``workspace.threads`` threads."""

    def train(
        self,
        study: str,
        configs: Mapping[str, RunConfig],
        evaluations: Evaluations,
        store: Store,
        console: Console,
    ) -> None:
        import torch

        device = torch.device(self.workspace.device)
        slots = {
            index: self.workspace.on(str(worker_device(device, index)))
            for index in range(self.workspace.workers)
        }
        todo = _unfinished(store, study)
        restarts_left = self.workspace.workers  # a study that kills every worker stops
        running = {index: _start(job, study, configs, evaluations) for index, job in slots.items()}
        self.owners.update(_owner(process) for process in running.values())
        try:
            with progress_bar(console) as progress:
                task = progress.add_task(f"runs ({len(slots)} workers)", total=todo)
                while running:
                    time.sleep(POLL_SECONDS)
                    progress.update(task, completed=todo - _unfinished(store, study))
                    for index, process in list(running.items()):
                        if process.exitcode is None:
                            continue
                        del running[index]
                        if process.exitcode == 0:
                            continue
                        released = store.release(_owner(process))
                        message = (
                            f"worker {index} (pid {process.pid}) died with exit code "
                            f"{process.exitcode}; {len(released)} of its runs back to pending"
                        )
                        if restarts_left > 0:
                            restarts_left -= 1
                            running[index] = _start(slots[index], study, configs, evaluations)
                            self.owners.add(_owner(running[index]))
                            message += "; restarted it"
                        console.print(f"[yellow]{message}[/yellow]")
                progress.update(task, completed=todo - _unfinished(store, study))
        except BaseException:
            _stop(list(running.values()), store)
            raise


def _start(
    workspace, study: str, configs: Mapping[str, RunConfig], evaluations: Evaluations
) -> BaseProcess:
    process = multiprocessing.get_context("spawn").Process(
        target=_work, args=(workspace, study, dict(configs), dict(evaluations)), daemon=True
    )
    process.start()
    return process


def _work(
    workspace, study: str, configs: Mapping[str, RunConfig], evaluations: Evaluations
) -> None:
    """A worker's life: SIGTERM from the parent ends it as Ctrl-C does, runs released."""
    raise_on_sigterm()
    _terminate_with_parent()
    try:
        train_in_worker(workspace, study, configs, evaluations)
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def _terminate_with_parent() -> None:
    """On Linux, a parent killed by SIGKILL sends this worker SIGTERM instead of orphaning it."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere a worker outlives a killed parent; its runs are reclaimed later
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before the line above took effect
        raise SystemExit(143)


def _stop(processes: list[BaseProcess], store: Store) -> None:
    """Ask workers to stop (they release their runs), then make sure none is left running."""
    for process in processes:
        if process.exitcode is None:
            process.terminate()  # SIGTERM
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.exitcode is None:
            process.kill()
            process.join()
        store.release(_owner(process))  # whatever a killed worker could not release


def _owner(process: BaseProcess) -> str:
    """The store's owner string of a worker (``store.local_owner`` in that process)."""
    return f"{socket.gethostname()}:{process.pid}"


def _unfinished(store: Store, study: str) -> int:
    return len(store.runs(study=study, states=["pending", "running", "failed"]))
