"""One-off jobs run off the UI thread (opening a model, reading a style from a picture), their
result or their failure delivered back to the UI thread by a signal.

A failure is one line for the user (:func:`training.messages.one_line`), never a traceback.
Each job runs in a daemon thread named ``gnr-<name>``; a job that cannot be interrupted (an
ONNX export in the middle of opening a model) does not keep the process alive after the window
has closed, and its late result is ignored.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from training.messages import one_line

__all__ = ["Tasks"]


class Tasks(QObject):
    """Runs jobs in background threads. ``done(name, token, result)`` and
    ``failed(name, token, message)`` arrive in the UI thread; ``token`` is what the caller passed,
    so a result that arrives after a newer request can be told apart and dropped."""

    done = Signal(str, object, object)
    failed = Signal(str, object, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._threads: list[threading.Thread] = []
        self._closed = False

    def run(self, name: str, fn: Callable[[], Any], token: Any = None) -> None:
        def work():
            try:
                result = fn()
            except Exception as e:  # noqa: BLE001 - every failure becomes one line in the window
                self._emit(self.failed, name, token, one_line(e))
                return
            self._emit(self.done, name, token, result)

        t = threading.Thread(target=work, name=f"gnr-{name}", daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _emit(self, signal, *args) -> None:
        if self._closed:
            return
        try:
            signal.emit(*args)
        except RuntimeError:          # the window was deleted meanwhile: nobody to tell
            pass

    def busy(self, name: str | None = None) -> bool:
        return any(t.is_alive() and (name is None or t.name == f"gnr-{name}") for t in self._threads)

    def close(self, timeout: float = 0.5) -> None:
        """No more results are delivered; waits up to ``timeout`` seconds in all for running jobs."""
        import time

        self._closed = True
        end = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
