"""Styles at run time: the saved style bank, and blending from one style to the next.

The style code itself (:class:`training.style.StyleCode`: 8 floats and where they came from)
belongs to the model and lives in ``training``; this module holds what the live apps do with it.

* :class:`StyleBank` — up to nine named styles in one small JSON file shared by the webcam app and
  the studio (``~/.config/gnr-anime/styles.json`` by default), written atomically.
* :class:`StyleMixer` — the style to use *now*: a smoothstep blend over ``BLEND_SECONDS`` from the
  previous style to the newly chosen one, so a style change never jumps.
* :class:`BlendedStyleEngine` — wraps a style-as-input engine and hands it the mixer's current
  style before each batch (only when it changed).
"""
from __future__ import annotations

import json
import os
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from training.fileio import write_bytes_atomic

__all__ = ["BLEND_SECONDS", "MAX_BANK", "StyleBank", "StyleMixer", "BlendedStyleEngine",
           "default_bank_path"]

BLEND_SECONDS = 0.3
MAX_BANK = 9


def default_bank_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or (Path.home() / ".config")
    return Path(base) / "gnr-anime" / "styles.json"


class StyleBank:
    """Up to nine saved styles, each with a name, in a small JSON file (written atomically).

    The file is ``{"styles": [{"name": "...", "vector": [8 floats]}, ...]}``; the older form, a
    bare list of vectors per style, is read too. A broken file is replaced on the next save."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_bank_path()
        self.entries: list[dict] = []
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                for i, s in enumerate(data.get("styles", [])[:MAX_BANK]):
                    if isinstance(s, dict):
                        vec, name = s["vector"], str(s.get("name") or f"style {i + 1}")
                    else:
                        vec, name = s, f"style {i + 1}"
                    self.entries.append({"name": name, "vector": [float(v) for v in vec]})
            except (OSError, ValueError, TypeError, AttributeError, KeyError):
                self.entries = []

    @property
    def styles(self) -> list[list[float]]:
        return [e["vector"] for e in self.entries]

    @property
    def names(self) -> list[str]:
        return [e["name"] for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, i: int) -> np.ndarray | None:
        return np.asarray(self.entries[i]["vector"], np.float32) if 0 <= i < len(self.entries) else None

    def save(self, z: np.ndarray, name: str | None = None) -> int:
        """Append a style (the oldest goes when nine are kept); returns its 1-based slot."""
        entry = {"name": name or f"style {len(self.entries) + 1}",
                 "vector": np.asarray(z, np.float32).ravel().tolist()}
        self.entries = (self.entries + [entry])[-MAX_BANK:]
        self._write()
        return len(self.entries)

    def rename(self, i: int, name: str) -> None:
        if not 0 <= i < len(self.entries):
            raise IndexError(f"no saved style {i + 1} (the bank holds {len(self.entries)})")
        if not name.strip():
            raise ValueError("a style name cannot be empty")
        self.entries[i]["name"] = name.strip()
        self._write()

    def delete(self, i: int) -> None:
        if not 0 <= i < len(self.entries):
            raise IndexError(f"no saved style {i + 1} (the bank holds {len(self.entries)})")
        del self.entries[i]
        self._write()

    def _write(self) -> None:
        write_bytes_atomic(self.path, json.dumps({"styles": self.entries}, indent=1).encode())


class StyleMixer:
    """The style the engine should use now: blends from the old to a new style over 0.3 s."""

    def __init__(self, z: np.ndarray, blend_seconds: float = BLEND_SECONDS):
        self.start = self.target = np.asarray(z, np.float32).ravel()
        self.blend_seconds = blend_seconds
        self.t0 = 0.0
        self._lock = threading.Lock()

    def set(self, z: np.ndarray, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.start = self._at(now)
            self.target = np.asarray(z, np.float32).ravel()
            self.t0 = now

    def current(self, now: float | None = None) -> np.ndarray:
        now = time.monotonic() if now is None else now
        with self._lock:
            return self._at(now)

    def _at(self, now: float) -> np.ndarray:
        a = min(max((now - self.t0) / max(self.blend_seconds, 1e-9), 0.0), 1.0)
        a = a * a * (3 - 2 * a)               # smoothstep: no jerk at either end
        return ((1 - a) * self.start + a * self.target).astype(np.float32)


class BlendedStyleEngine:
    """Wraps an engine: before each batch, hands it the mixer's current style if it changed.
    An engine with a baked style (no ``set_style``) runs as it is. Setting the style and running
    the batch happen under the engine's lock when it has one (a :class:`SharedEngine`), so a
    caller that borrows the engine with another style (the studio's gallery) can never slip in
    between."""

    def __init__(self, engine, mixer: StyleMixer):
        self.engine, self.mixer = engine, mixer
        self.dynamic = hasattr(engine, "set_style")
        self._last = None

    def __call__(self, crops):
        with getattr(self.engine, "lock", None) or nullcontext():
            if self.dynamic:
                z = self.mixer.current()
                if self._last is None or not np.array_equal(z, self.engine.style.numpy()):
                    self.engine.set_style(z)
                self._last = z
            return self.engine(crops)

    def __getattr__(self, name):
        return getattr(self.engine, name)
