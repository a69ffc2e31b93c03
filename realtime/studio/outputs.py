"""Where the live result goes besides the window: a virtual camera, a stream, a recording — any
of them, all at once, switched on and off while the live view runs — and the sound with it.

:class:`OutputHub` is the one sink every live pipeline writes to. It outlives pipelines (a new
source or model builds a new pipeline; the virtual camera a call is using must not go away):
the pipeline's ``close``/``abort`` at the end of a run leave the outputs on, and
:meth:`OutputHub.shutdown` ends them when the window closes. The outputs themselves are made by
:func:`realtime.compose.make_sinks` from the compose specs. An output that fails while
writing (a full disk, a stream that cannot send) is switched off with its reason; the live view
goes on. :class:`OutputsPanel` is its tab.

Sound (:class:`StudioSound`, the panel's Sound switch): the microphone, or the playing video
file's own sound in step with it, delayed by the video's measured latency through the same
:class:`~realtime.audio_io.AudioPump` as ``python -m realtime.webcam --audio``. The hub feeds the
latency of every frame it writes to the pump's tracker and hands the delayed sound to every
output that takes it: recordings and streams started while the sound is on get a sound track,
and a virtual microphone is made for calls (where the system has one; else the panel says what
to install).
"""
from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget)

from training.messages import one_line

from ..audio import AudioChunk, LatencyTracker
from ..compose import ConfigError, FileOutput, StreamOutput, VirtualCameraOutput, make_sinks

__all__ = ["OutputHub", "OutputsPanel", "StudioSound", "OUTPUTS", "SOUND_SOURCES",
           "default_recording_path"]

OUTPUTS = ("vcam", "stream", "record", "sound")
_BUTTON_TEXT = {"vcam": {False: "Turn on", True: "Turn off"},
                "stream": {False: "Start", True: "Stop"},
                "record": {False: "Record", True: "Stop"},
                "sound": {False: "Turn on", True: "Turn off"}}
SOUND_SOURCES = {"mic": "Microphone", "file": "The video file's own sound"}


def default_recording_path() -> Path:
    videos = Path.home() / "Videos"
    folder = videos if videos.is_dir() else Path.home()
    return folder / time.strftime("gnr-studio-%Y%m%d-%H%M%S.mp4")


class OutputHub(QObject):
    """See the module docstring. ``changed(name, on, text)`` says each output's state (from any
    thread; delivered in the UI thread)."""

    changed = Signal(str, bool, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._sinks: dict[str, object] = {}
        self._specs: dict[str, object] = {}      # what is switched on, open or waiting for video
        self._written: dict[str, int] = {}
        self.size: tuple[int, int] | None = None
        self.fps = 30.0
        self.tracker = LatencyTracker()          # the video's latency, steering the sound's delay
        self.sound = StudioSound(self)

    # -- the sink protocol (the pipeline's output thread) -------------------------------------
    def write(self, frame) -> None:
        from ..audio_io import capture_time

        now = time.monotonic()
        self.tracker.add(now - capture_time(frame, self.sound.live_source()), now)
        failed = []
        with self._lock:
            for name, sink in list(self._sinks.items()):
                try:
                    sink.write(frame)
                    self._written[name] += 1
                    why = getattr(sink, "failed", None)    # a stream whose receiver went away
                except Exception as e:  # noqa: BLE001 - this output stops; the live view goes on
                    why = one_line(e)
                if why:
                    failed.append((name, self._sinks.pop(name), why))
                    self._specs.pop(name, None)
        for name, sink, why in failed:
            _abort(sink)
            self._say(name, False, f"stopped: {why}")

    def close(self) -> None:
        """The end of one pipeline run: the outputs stay on for the next one (a video file's
        sound stops with its video)."""
        self.sound.video_ended()

    abort = close

    def write_audio(self, chunk: AudioChunk) -> None:
        """The delayed sound (the pump's thread): to every open output with a sound track."""
        with self._lock:
            sinks = [s for s in self._sinks.values() if getattr(s, "audio", None) is not None]
        for sink in sinks:
            try:
                sink.write_audio(chunk)
            except Exception:  # noqa: BLE001 - that output's next frame reports and stops it
                pass

    # -- control (the UI thread, and set_format from the live thread) -------------------------
    def switch(self, name: str, spec=None) -> None:
        """Turn output ``name`` on with ``spec`` (a compose output spec), or off (None)."""
        with self._lock:
            old = self._sinks.pop(name, None)
            self._specs.pop(name, None)
        if old is not None:
            self._finish(name, old)
        if spec is None:
            if old is None:
                self._say(name, False, "off")
            return
        with self._lock:
            self._specs[name] = spec
            size = self.size
        if size is None:
            self._say(name, True, "on — waiting for the live video")
            return
        self._open(name, spec)

    def set_format(self, size: tuple[int, int], fps: float) -> None:
        """A pipeline starts with frames of ``size`` (w, h) at ``fps``: open what waits, and
        reopen at the new size what is open (a recording is finished instead: one file, one
        size)."""
        size = (int(size[0]), int(size[1]))
        with self._lock:
            resized = self.size is not None and self.size != size
            self.size, self.fps = size, float(fps)
            old = {n: self._sinks.pop(n) for n in list(self._sinks)} if resized else {}
            if resized:
                self._specs.pop("record", None)
            waiting = [(n, s) for n, s in self._specs.items() if n not in self._sinks]
        for name, sink in old.items():
            self._finish(name, sink)
        for name, spec in waiting:
            self._open(name, spec)
        self.sound.video_started()

    def is_on(self, name: str) -> bool:
        with self._lock:
            return name in self._specs

    def frames_written(self, name: str) -> int:
        with self._lock:
            return self._written.get(name, 0) if name in self._sinks else 0

    def shutdown(self) -> None:
        """Finish every output (a recording is saved) and stop the sound."""
        self.sound.switch(None)
        with self._lock:
            sinks, self._sinks, self._specs = dict(self._sinks), {}, {}
        for name, sink in sinks.items():
            self._finish(name, sink)

    # -- helpers --------------------------------------------------------------------------------
    def _open(self, name: str, spec) -> None:
        notes: list[str] = []
        made = spec
        if self.sound.on and isinstance(spec, StreamOutput):
            made = dataclasses.replace(spec, audio=True)
        elif self.sound.on and isinstance(spec, FileOutput) and not spec.keep_timing:
            made = dataclasses.replace(spec, live_audio=True)
        try:
            sink = make_sinks([made], self.size, self.fps, warn=notes.append)[0]
        except Exception as e:  # noqa: BLE001 - MediaError, OutputError, a missing backend
            with self._lock:
                self._specs.pop(name, None)
            self._say(name, False, f"unavailable: {one_line(e)}")
            return
        with self._lock:
            if self._specs.get(name) is not spec:      # switched off meanwhile
                stale = sink
            else:
                stale = None
                self._sinks[name], self._written[name] = sink, 0
        if stale is not None:
            _abort(stale)
            return
        where = getattr(sink, "device", None) or getattr(spec, "url", None) or getattr(spec, "path", "")
        with_sound = " (with sound)" if getattr(sink, "audio", None) is not None else ""
        self._say(name, True, f"on — {where}{with_sound}")

    def _finish(self, name: str, sink) -> None:
        n = self._written.get(name, 0)
        try:
            sink.close()
        except Exception as e:  # noqa: BLE001
            _abort(sink)
            self._say(name, False, f"stopped: {one_line(e)}")
            return
        if name == "record":
            self._say(name, False, f"saved {getattr(sink, 'path', '')} ({n} frames)")
        else:
            self._say(name, False, "off")

    def _say(self, name: str, on: bool, text: str) -> None:
        try:
            self.changed.emit(name, on, text)
        except RuntimeError:                      # the window is gone
            pass


def _abort(sink) -> None:
    try:
        sink.abort()
    except Exception:  # noqa: BLE001 - already failing; its reason was given
        pass


class StudioSound:
    """The studio's sound (see the module docstring). ``switch(kind)`` turns it on from
    ``"mic"`` or ``"file"`` (the playing video file's own sound), or off (None); its state
    reaches the hub's ``changed`` signal as output ``"sound"``. ``live_source`` gives the
    running source (the window sets it): a video file's sound restarts with each new run of it
    (:meth:`video_started`) and stops when the run ends (:meth:`video_ended`)."""

    def __init__(self, hub: OutputHub):
        self.hub = hub
        self.kind: str | None = None
        self.live_source: Callable[[], object] = lambda: None
        self.pump = None
        self.mic_out = None
        self.note = ""
        self._lock = threading.RLock()

    @property
    def on(self) -> bool:
        return self.kind is not None

    def switch(self, kind: str | None) -> None:
        from ..audio_io import AudioUnavailableError, VirtualMicrophone

        with self._lock:
            self._stop_pump()
            if self.mic_out is not None:
                self.mic_out.close()
                self.mic_out = None
            was, self.kind = self.kind, kind
            if kind is None:
                if was is not None:
                    self.hub._say("sound", False, "off")
                return
            try:
                self.mic_out = VirtualMicrophone()
                self.note = self.mic_out.description
            except AudioUnavailableError as e:
                self.note = f"no virtual microphone: {one_line(e)}"
            self._start_pump()

    def video_started(self) -> None:
        with self._lock:
            if self.kind == "file":
                self._stop_pump()
                self._start_pump()

    def video_ended(self) -> None:
        with self._lock:
            if self.kind == "file":
                self._stop_pump()

    def describe(self) -> str:
        """The state line: where the sound comes from and the delay in use."""
        pump = self.pump
        if pump is None:
            return "on — waiting for a video file to play" if self.kind == "file" else "off"
        return (f"on — {pump.source.name}, delayed {pump.delay_ms:.0f} ms (the video's latency)"
                f"; {self.note}")

    def _start_pump(self) -> None:
        from ..audio_io import AudioPump, AudioUnavailableError, FileSoundTrack, Microphone

        try:
            if self.kind == "mic":
                source = Microphone()
            else:
                live = self.live_source()
                if not hasattr(live, "loop_period_s"):     # a camera, or nothing running yet
                    self.hub._say("sound", True, self.describe())
                    return
                source = FileSoundTrack(live.source.path, live, loop=live.loop)
            outputs = [self.hub] + ([self.mic_out] if self.mic_out is not None else [])
            pump = AudioPump(source, outputs, self.hub.tracker)
            pump.start()
        except AudioUnavailableError as e:
            self.kind = None
            if self.mic_out is not None:
                self.mic_out.close()
                self.mic_out = None
            self.hub._say("sound", False, f"unavailable: {one_line(e)}")
            return
        self.pump = pump
        self.hub._say("sound", True, self.describe())

    def _stop_pump(self) -> None:
        pump, self.pump = self.pump, None
        if pump is not None:
            pump.stop()


class OutputsPanel(QWidget):
    """The Outputs tab: a switch, a state line and settings per output."""

    def __init__(self, hub: OutputHub, parent: QWidget | None = None):
        from ..sinks import VirtualCameraSink

        super().__init__(parent)
        self.hub = hub
        lay = QVBoxLayout(self)
        lay.setSpacing(12)

        box = QGroupBox("Virtual camera")
        g = QVBoxLayout(box)
        g.addWidget(QLabel("A webcam other apps (Zoom, Meet, Teams, OBS) can pick."))
        row = QHBoxLayout()
        self.vcam_button = self._switch_button("vcam")
        self.vcam_button.toggled.connect(self._vcam)
        self.vcam_state = QLabel("off")
        row.addWidget(self.vcam_button)
        row.addWidget(self.vcam_state, 1)
        g.addLayout(row)
        self.vcam_hint = QLabel(f"To get one: {VirtualCameraSink.INSTALL_HINT}.")
        self.vcam_hint.setWordWrap(True)
        self.vcam_hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.vcam_hint.setObjectName("hint")
        self.vcam_hint.hide()
        g.addWidget(self.vcam_hint)
        lay.addWidget(box)

        box = QGroupBox("Stream")
        g = QGridLayout(box)
        self.stream_url = QLineEdit("udp://127.0.0.1:5000")
        self.stream_url.setToolTip("MPEG-TS; watch it with: ffplay udp://127.0.0.1:5000")
        self.stream_button = self._switch_button("stream")
        self.stream_button.toggled.connect(self._stream)
        self.stream_state = QLabel("off")
        g.addWidget(QLabel("URL"), 0, 0)
        g.addWidget(self.stream_url, 0, 1)
        g.addWidget(self.stream_button, 1, 0)
        g.addWidget(self.stream_state, 1, 1)
        lay.addWidget(box)

        box = QGroupBox("Record")
        g = QGridLayout(box)
        self.record_path = QLineEdit(str(default_recording_path()))
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose_recording)
        self.record_button = self._switch_button("record")
        self.record_button.toggled.connect(self._record)
        self.record_state = QLabel("off")
        self.record_state.setWordWrap(True)
        g.addWidget(QLabel("File"), 0, 0)
        g.addWidget(self.record_path, 0, 1)
        g.addWidget(choose, 0, 2)
        g.addWidget(self.record_button, 1, 0)
        g.addWidget(self.record_state, 1, 1, 1, 2)
        lay.addWidget(box)

        box = QGroupBox("Sound")
        g = QGridLayout(box)
        self.sound_source = QComboBox()
        for key, text in SOUND_SOURCES.items():
            self.sound_source.addItem(text, key)
        self.sound_button = self._switch_button("sound")
        self.sound_button.toggled.connect(self._sound)
        self.sound_state = QLabel("off")
        self.sound_state.setWordWrap(True)
        self.sound_state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        g.addWidget(QLabel("From"), 0, 0)
        g.addWidget(self.sound_source, 0, 1)
        g.addWidget(self.sound_button, 1, 0)
        g.addWidget(self.sound_state, 1, 1)
        hint = QLabel("Delayed by the video's measured latency, so voice and lips match. It goes "
                      "into recordings and streams started while it is on, and into a virtual "
                      "microphone for calls.")
        hint.setWordWrap(True)
        hint.setObjectName("hint")
        g.addWidget(hint, 2, 0, 1, 2)
        lay.addWidget(box)
        note = QLabel("Outputs get the result with the faces replaced, at the source's size, "
                      "and stay on when the source or the model changes.")
        note.setWordWrap(True)
        note.setObjectName("hint")
        lay.addWidget(note)
        lay.addStretch(1)

        self._states = {"vcam": (self.vcam_button, self.vcam_state),
                        "stream": (self.stream_button, self.stream_state),
                        "record": (self.record_button, self.record_state),
                        "sound": (self.sound_button, self.sound_state)}
        hub.changed.connect(self._changed)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(500)
        self._record_t0 = 0.0

    @staticmethod
    def _switch_button(name: str) -> QPushButton:
        b = QPushButton(_BUTTON_TEXT[name][False])
        b.setCheckable(True)
        b.setMinimumWidth(88)
        return b

    # -- switching --------------------------------------------------------------------------
    def _vcam(self, on: bool) -> None:
        self.hub.switch("vcam", VirtualCameraOutput(required=True) if on else None)

    def _stream(self, on: bool) -> None:
        if not on:
            self.hub.switch("stream", None)
            return
        try:
            spec = StreamOutput(self.stream_url.text().strip())
        except ConfigError as e:
            self._changed("stream", False, f"unavailable: {one_line(e).removeprefix('--stream ')}")
            return
        self.hub.switch("stream", spec)

    def _record(self, on: bool) -> None:
        if not on:
            self.hub.switch("record", None)
            self.record_path.setText(str(default_recording_path()))
            return
        path = Path(self.record_path.text().strip()).expanduser()
        if not path.name or not path.parent.is_dir():
            self._changed("record", False, f"the folder {path.parent} does not exist")
            return
        try:
            spec = FileOutput(path, keep_timing=False)
        except ConfigError as e:
            self._changed("record", False, one_line(e))
            return
        self._record_t0 = time.monotonic()
        self.hub.switch("record", spec)

    def _sound(self, on: bool) -> None:
        self.sound_source.setEnabled(not on)
        self.hub.sound.switch(self.sound_source.currentData() if on else None)

    def _choose_recording(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Record to", self.record_path.text(),
                                              "Videos (*.mp4 *.mkv *.mov)")
        if path:
            self.record_path.setText(path)

    def _changed(self, name: str, on: bool, text: str) -> None:
        button, label = self._states[name]
        button.blockSignals(True)
        button.setChecked(on)
        button.blockSignals(False)
        button.setText(_BUTTON_TEXT[name][on])
        label.setText(text)
        if name == "vcam":
            self.vcam_hint.setVisible(text.startswith("unavailable"))
        if name == "sound":
            self.sound_source.setEnabled(not on)

    def _tick(self) -> None:
        if self.hub.sound.pump is not None:
            self.sound_state.setText(self.hub.sound.describe())      # the delay in use now
        if self.hub.frames_written("record"):
            s = int(time.monotonic() - self._record_t0)
            self.record_state.setText(f"recording {Path(self.record_path.text()).name} — "
                                      f"{s // 60}:{s % 60:02d}, {self.hub.frames_written('record')} frames")
