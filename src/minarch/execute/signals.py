"""SIGTERM handled like Ctrl-C, so a terminated study stops as cleanly as an interrupted one."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from minarch.errors import Interrupted


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def raise_on_sigterm() -> None:
    """From now on SIGTERM raises ``Interrupted`` (a ``KeyboardInterrupt``) in the main thread."""
    signal.signal(signal.SIGTERM, _interrupt)


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM raises ``Interrupted`` inside the block; the old handler comes back after.

    Signal handlers can only be set from the main thread; elsewhere the block
    runs with whatever handler is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def interrupt(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        _interrupt(signum, frame)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    except KeyboardInterrupt as exc:
        if received and not isinstance(exc, Interrupted):  # Ray re-raises it as a plain one
            raise Interrupted(received[-1]) from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
