"""Stopping a child process: ask, wait, then kill."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def stop_process(process: subprocess.Popen[Any], timeout: float,
                 how: signal.Signals = signal.SIGTERM) -> int:
    """Send ``how`` (SIGTERM: let it save and exit), wait up to ``timeout`` seconds, then
    SIGKILL it and wait as long again; returns its exit code."""
    process.send_signal(how)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout)
