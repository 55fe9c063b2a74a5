"""Ctrl-C (SIGINT) and SIGTERM ask the loop to stop at the next step boundary and checkpoint."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator


class StopRequest:
    """Set by the first SIGINT/SIGTERM; a second one interrupts immediately (no checkpoint)."""

    def __init__(self) -> None:
        self.requested = False


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Install the handlers for the duration of the loop (main thread only) and restore the old ones."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        if request.requested:  # second signal: stop now, without a checkpoint
            signal.signal(signum, previous[signum])
            signal.raise_signal(signum)
            return
        request.requested = True

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
