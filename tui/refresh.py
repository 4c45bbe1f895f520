"""The refresh path's background half: one thread that talks to the snapshot source.

The app's timer only calls `request()`. This thread calls `source.snapshot()` (and
`set_filter`, so the source sees one caller), then hands the result to a callback
that posts a message to the app. At most one fetch is in flight: a request while
one runs is dropped, so a slow backend cannot pile work up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from capture_lib.snapshot import Filter, Snapshot, SnapshotSource

ErrorHandler = Callable[[BaseException], None]


class SnapshotFetcher:
    def __init__(
        self,
        source: SnapshotSource,
        on_snapshot: Callable[[Snapshot], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self.source = source
        self._on_snapshot = on_snapshot
        self._on_error = on_error
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._want_snapshot = False
        # source calls to run before the next fetch, each with its own error handler
        self._pending: list[tuple[Callable[[], None], ErrorHandler | None]] = []
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="syscap-snapshot", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> bool:
        """Ask for one snapshot; False (and nothing queued) if one is already in flight."""
        with self._lock:
            if self._busy or self._want_snapshot:
                return False
            self._want_snapshot = True
        self._wake.set()
        return True

    def call(self, fn: Callable[[], None], on_error: ErrorHandler | None = None) -> None:
        """Run `fn` on the source thread (before the next snapshot).

        A failure goes to `on_error` if given (e.g. a rejected filter, capture goes
        on), else to the fetcher's error callback (capture stopped).
        """
        with self._lock:
            self._pending.append((fn, on_error))
        self._wake.set()

    def set_filter(self, flt: Filter) -> None:
        self.call(lambda: self.source.set_filter(flt))

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop the thread; False if it is still inside a source call after `timeout`."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                pending, self._pending = self._pending, []
                want, self._want_snapshot = self._want_snapshot, False
                self._busy = want
            try:
                for fn, on_error in pending:
                    if on_error is None:
                        fn()
                        continue
                    try:
                        fn()
                    except Exception as exc:
                        on_error(exc)
                if want:
                    snap = self.source.snapshot()
                    if not self._stop.is_set():
                        self._on_snapshot(snap)
            except Exception as exc:  # any backend failure becomes a message in the UI
                if not self._stop.is_set():
                    self._on_error(exc)
            finally:
                with self._lock:
                    self._busy = False
