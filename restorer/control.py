"""Control a restored process (placeholder, expanded below)."""

from __future__ import annotations

from restorer.restore import Restored
from restorer.tracee import wait_stop


class Controller:
    def __init__(self, restored: Restored) -> None:
        self.restored = restored
        self.tracee = restored.tracee

    def run_detached(self) -> int:
        self.tracee.detach()
        stop = wait_stop(self.tracee.pid)
        while stop.alive:
            stop = wait_stop(self.tracee.pid)
        return stop.exit_code

    def close(self) -> None:
        self.tracee.kill()
