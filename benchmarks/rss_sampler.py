"""Peak resident memory of a block, sampled in a thread: shared by the benchmarks that report memory."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil


def anon_rss() -> int:
    """RssAnon from /proc (Linux): memory the process owns, not memory-mapped file pages."""
    status = Path(f"/proc/{os.getpid()}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return psutil.Process().memory_info().rss


class PeakMemory:
    """`with PeakMemory() as m:` → `m.baseline` (at entry), `m.peak_anon`, `m.peak_extra` (peak − baseline)."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.baseline = self.peak_anon = self.peak_extra = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_anon = max(self.peak_anon, anon_rss())
            time.sleep(self.interval)

    def __enter__(self) -> "PeakMemory":
        self.baseline = self.peak_anon = anon_rss()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_extra = self.peak_anon - self.baseline
