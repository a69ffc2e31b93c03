"""Where live sound comes from and where it goes (``python -m realtime.webcam --audio``, the
studio's Sound switch).

* :class:`FileSoundTrack` — with ``--input FILE``: the file's own sound track (PyAV, resampled to
  48 kHz), played in step with the looped video: the sound of media time ``m`` in pass ``k`` is
  captured at ``t0 + k * period + m``, the instant frame ``m * fps`` of that pass is due
  (:class:`realtime.sources.LoopingFileSource` gives ``t0`` and ``period``).
* :class:`Microphone` — a sound card input through ``sounddevice`` (PortAudio), by name or index;
  each block is stamped with the monotonic time its first sample was captured.
* :class:`VirtualMicrophone` — where a call app picks our sound up as its microphone: on Linux a
  PulseAudio/PipeWire null sink made with ``pactl`` (its monitor is the microphone; a remapped
  source of the same sound is made for apps that hide monitors; both are unloaded on close); on
  Windows and macOS a virtual cable (VB-Cable, BlackHole) found or chosen by name.
* :class:`AudioPump` — the thread that moves the sound through the
  :class:`~realtime.audio.DelayLine` (delay = the video's measured latency, from a
  :class:`~realtime.audio.LatencyTracker`) to the outputs, in 10 ms blocks stamped with the
  monotonic time they are played at. Outputs are objects with ``write_audio(chunk)``: the live
  sinks of :mod:`realtime.sinks` and the virtual microphone.

A missing backend is an :class:`AudioUnavailableError` whose message says what to install; the
apps print it on one line and run on without sound.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .audio import SAMPLE_RATE, AudioChunk, DelayLine, LatencyTracker

__all__ = ["AudioUnavailableError", "FileSoundTrack", "Microphone", "VirtualMicrophone",
           "AudioPump", "VIRTUAL_MIC_NAME", "SOUND_HINT", "virtual_mic_hint", "load_sounddevice",
           "parse_device", "capture_time"]

VIRTUAL_MIC_NAME = "gnr_anime_mic"
_CABLES = {"win32": ("CABLE Input", "VB-Cable (vb-audio.com/Cable)", "CABLE Output"),
           "darwin": ("BlackHole", "BlackHole (existential.audio/blackhole)", "BlackHole 2ch")}
RESYNC_S = 0.010        # a sound card's clock drifting this far from the system's is re-anchored
# The delay moves at once when the latency moved more than this, and after 2 s when it moved
# more than 5 ms: lips and voice 20 ms apart look in sync (ITU-R BT.1359 puts detectability at
# 45 ms sound-early, 125 ms sound-late), and a steady delay is better than one that chases every
# wobble of the median.
HYSTERESIS_MS = 20.0
SOUND_HINT = ("pip install -e '.[audio]' (sounddevice), with PortAudio (Debian/Ubuntu: sudo apt "
              "install libportaudio2; the Windows and macOS wheels bring it)")
PACTL_HINT = ("PulseAudio or PipeWire with `pactl` (Debian/Ubuntu: sudo apt install "
              "pulseaudio-utils, or pipewire-pulse)")


def virtual_mic_hint(platform: str = sys.platform) -> str:
    """What a virtual microphone needs on this system, besides sounddevice."""
    if platform.startswith("linux"):
        return PACTL_HINT
    cable = _CABLES.get(platform, ("", "a virtual audio cable", "its output"))
    return f"{cable[1]}; pick '{cable[2]}' as the microphone in the call app"


class AudioUnavailableError(RuntimeError):
    """No audio backend, device or sound track; the message says what to install or pick."""


def load_sounddevice():
    """The ``sounddevice`` module, or AudioUnavailableError saying what to install."""
    try:
        import sounddevice
    except ImportError:
        raise AudioUnavailableError(f"sounddevice is not installed; {SOUND_HINT}") from None
    except OSError as e:                       # the wheel is there, the PortAudio library is not
        raise AudioUnavailableError(f"{e}; {SOUND_HINT}") from None
    return sounddevice


def parse_device(text: str | None):
    """A ``--audio`` device: None (the default input), an index, or a name."""
    if text is None or text == "default":
        return None
    return int(text) if text.strip().isdigit() else text


# =============================================================================================
# Sources
# =============================================================================================
class FileSoundTrack:
    """A video file's sound in step with its looped, paced video (see the module docstring).

    ``timing``: an object with ``t0`` (the monotonic time the video's frame 0 was due, None until
    it starts) and ``loop_period_s`` — a :class:`realtime.sources.LoopingFileSource`.
    ``read(a, b)`` gives the samples at input positions ``a..b`` (sample ``p`` is captured at
    ``t0 + p / rate``)."""

    clocked = True                              # read by the clock, not pushed by a device

    def __init__(self, path: str | os.PathLike, timing, *, loop: bool = True, channels: int = 1,
                 rate: int = SAMPLE_RATE):
        import av

        self.path, self.timing, self.loop = Path(path), timing, loop
        self.rate, self.channels = rate, channels
        self.name = f"the sound of {self.path.name}"
        layout = "mono" if channels == 1 else "stereo"
        try:
            with av.open(str(path)) as c:
                if not c.streams.audio:
                    raise AudioUnavailableError(f"{path}: has no sound track to play (--audio input)")
                video_start = _start_s(c.streams.video[0]) if c.streams.video else 0.0
                stream = c.streams.audio[0]
                offset = _start_s(stream) - video_start
                res = av.AudioResampler(format="flt", layout=layout, rate=rate)
                parts = [out.to_ndarray().reshape(-1, channels)
                         for frame in c.decode(stream) for out in res.resample(frame)]
                parts += [out.to_ndarray().reshape(-1, channels) for out in res.resample(None)]
        except av.error.FFmpegError as e:
            raise AudioUnavailableError(f"{path}: its sound track cannot be decoded ({e})") from None
        track = np.concatenate(parts) if parts else np.zeros((0, channels), np.float32)
        self.loop_len = float(timing.loop_period_s) * rate      # samples in one pass (float)
        n = int(np.ceil(self.loop_len))
        self.samples = np.zeros((n + 1, channels), np.float32)  # one pass, the track placed at
        first = int(round(offset * rate))                       # its own start time
        src = track[max(0, -first):]
        at = max(0, first)
        k = max(0, min(len(src), n - at))
        self.samples[at:at + k] = src[:k]

    @property
    def origin(self) -> float | None:
        return self.timing.t0

    def close(self) -> None:
        """Nothing to close: the track is in memory."""

    def read(self, a: int, b: int) -> np.ndarray:
        pos = np.arange(a, b, dtype=np.float64)
        within = pos - np.floor(pos / self.loop_len) * self.loop_len
        out = self.samples[within.astype(np.int64)]
        silent = pos < 0 if self.loop else (pos < 0) | (pos >= self.loop_len)
        out[silent] = 0
        return out


def capture_time(frame, source) -> float:
    """When ``frame`` was captured, on the clock its sound is played by: for a video file played
    as a camera (a paced :class:`~realtime.sources.LoopingFileSource`) the instant it was due —
    the file's sound is played by that clock, and a decode that fell behind is latency like any
    other; else the frame's own time stamp (a camera's, taken at the grab)."""
    t0 = getattr(source, "t0", None)
    if t0 is not None and getattr(source, "paced", False):
        return t0 + frame.index / source.fps
    return frame.timestamp_s


def _start_s(stream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


class Microphone:
    """A sound card input (``device``: a PortAudio name or index; None: the default input),
    opened here (a missing or busy device fails now, before any output is made).
    ``start(on_block)`` calls ``on_block(samples, t_first)`` from PortAudio's thread for each
    captured block, ``t_first`` being the monotonic time its first sample was captured."""

    clocked = False
    origin = None

    def __init__(self, device=None, channels: int = 1, rate: int = SAMPLE_RATE):
        sd = load_sounddevice()
        self.rate = rate
        self.name = f"microphone {device if device is not None else '(default)'}"
        self._on_block: Callable[[np.ndarray, float], None] | None = None

        def callback(data, frames, t, status):
            now = time.monotonic()
            lag = t.currentTime - t.inputBufferAdcTime     # capture to callback, PortAudio's clock
            if not 0 < lag < 1:
                lag = frames / self.rate                   # a host API that does not say
            if self._on_block is not None:
                self._on_block(data.copy(), now - lag)

        try:
            self.stream = sd.InputStream(device=device, channels=channels, samplerate=rate,
                                         dtype="float32", blocksize=rate // 100, callback=callback)
        except Exception as e:  # noqa: BLE001 - PortAudio raises its own error types
            raise AudioUnavailableError(f"{self.name} cannot be opened: {e}") from None

    def start(self, on_block: Callable[[np.ndarray, float], None]) -> None:
        self._on_block = on_block
        try:
            self.stream.start()
        except Exception as e:  # noqa: BLE001 - PortAudio raises its own error types
            raise AudioUnavailableError(f"{self.name} cannot be started: {e}") from None

    def close(self) -> None:
        stream, self.stream = self.stream, None
        _stop(stream)


def _stop(stream) -> None:
    """Stop and close a PortAudio stream (None: nothing); errors on the way out are ignored."""
    if stream is None:
        return
    try:
        stream.stop()
        stream.close()
    except Exception:  # noqa: BLE001 - closing on exit
        pass


# =============================================================================================
# The virtual microphone
# =============================================================================================
class VirtualMicrophone:
    """Plays the delayed sound where a call app can take it as its microphone (see the module
    docstring). ``device``: on Linux the null sink's name (default ``gnr_anime_mic``); on Windows
    and macOS the virtual cable's playback device (default: the first output whose name has
    'CABLE Input' or 'BlackHole')."""

    def __init__(self, device: str | None = None, channels: int = 1, rate: int = SAMPLE_RATE):
        self.modules: list[str] = []
        self.stream = None
        self.linux = sys.platform.startswith("linux")
        self.name = device or VIRTUAL_MIC_NAME
        try:
            if self.linux:
                self._make_null_sink(self.name)      # before PortAudio: says what is missing first
            self._open(device, channels, rate)
        except BaseException:
            self.close()                             # the null sink goes with a failure
            raise

    def _open(self, device: str | None, channels: int, rate: int) -> None:
        sd = load_sounddevice()
        env = {"PULSE_SINK": self.name, "PIPEWIRE_NODE": self.name} if self.linux else {}
        out_device = None if self.linux else self._find_cable(sd, device)
        old = {k: os.environ.get(k) for k in env}
        try:
            os.environ.update(env)                   # route our stream into the null sink
            if self.linux:
                try:
                    sd.query_devices(kind="output")
                except Exception:  # noqa: BLE001 - no default output: PortAudio lists devices
                    sd._terminate()          # once, at start, so a sound server that came up
                    sd._initialize()         # since is invisible until it starts again
            self.stream = sd.OutputStream(device=out_device, channels=channels, samplerate=rate,
                                          dtype="float32")
            self.stream.start()
        except Exception as e:  # noqa: BLE001 - PortAudio raises its own error types
            raise AudioUnavailableError(f"cannot play into the virtual microphone: {e}") from None
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _find_cable(self, sd, device: str | None) -> str:
        cable = _CABLES.get(sys.platform, ("", "a virtual audio cable", ""))
        want = device or cable[0]
        try:
            names = [d["name"] for d in sd.query_devices() if d["max_output_channels"] > 0]
        except Exception as e:  # noqa: BLE001 - PortAudio raises its own error types
            raise AudioUnavailableError(f"cannot list the sound devices: {e}") from None
        found = [n for n in names if want and want.lower() in n.lower()]
        if not found:
            raise AudioUnavailableError(
                f"no playback device named like {want!r} (have: {', '.join(names) or 'none'}); "
                f"install {virtual_mic_hint()}, or name the device with --audio-output")
        self.name = found[0]
        return found[0]

    def _pactl(self, *args: str) -> subprocess.CompletedProcess:
        pactl = shutil.which("pactl")
        if pactl is None:
            raise AudioUnavailableError(f"no `pactl` here to make a virtual microphone; {PACTL_HINT}")
        try:
            return subprocess.run([pactl, *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise AudioUnavailableError(f"`pactl` failed ({e}); {PACTL_HINT}") from None

    def _make_null_sink(self, name: str) -> None:
        cmd = ("load-module", "module-null-sink", f"sink_name={name}",
               f"sink_properties=device.description={name}")
        out = self._pactl(*cmd)
        if out.returncode != 0:
            raise AudioUnavailableError(
                f"could not make the virtual microphone (`pactl {' '.join(cmd)}`: "
                f"{(out.stderr or out.stdout).strip() or 'no sound server'}); is PulseAudio or "
                "PipeWire running?")
        self.modules.append(out.stdout.strip())
        atexit.register(self.close)                  # never left behind, even on an early exit
        remap = self._pactl("load-module", "module-remap-source", f"master={name}.monitor",
                            f"source_name={name}_source",
                            f"source_properties=device.description={name}_source")
        if remap.returncode == 0:                    # optional: for apps that hide monitors
            self.modules.append(remap.stdout.strip())

    @property
    def description(self) -> str:
        if self.linux:
            return (f"virtual microphone: pick 'Monitor of {self.name}' (or '{self.name}_source') "
                    "as the microphone in the call app")
        return f"virtual microphone: playing into '{self.name}'"

    def write_audio(self, chunk: AudioChunk) -> None:
        self.stream.write(np.ascontiguousarray(chunk.samples, np.float32))

    def close(self) -> None:
        stream, self.stream = self.stream, None
        _stop(stream)
        while self.modules:
            self._pactl("unload-module", self.modules.pop())


# =============================================================================================
# The pump
# =============================================================================================
class AudioPump:
    """Moves sound from ``source`` through the delay line to ``outputs`` (see the module
    docstring), in a thread named ``gnr-audio``.

    ``source``: a :class:`FileSoundTrack` (read by the clock from its origin) or a
    :class:`Microphone` (pushes blocks; the output then runs at the microphone's own rate, and
    if its clock drifts from the system clock by more than 10 ms the stamps are re-anchored —
    the live sinks fill or trim that much). Output sample ``r`` is played at
    ``origin + r / rate``, carrying the sound captured ``delay`` earlier. An output that fails
    is dropped (``errors`` and ``warn`` say why); the others go on. ``history`` lists the last
    1000 delay changes as (monotonic time, ms)."""

    def __init__(self, source, outputs: Sequence, tracker: LatencyTracker, *,
                 channels: int = 1, rate: int = SAMPLE_RATE, block_s: float = 0.01,
                 clock: Callable[[], float] = time.monotonic,
                 warn: Callable[[str], None] = lambda m: None):
        self.source, self.outputs, self.tracker = source, list(outputs), tracker
        self.rate, self.block = rate, max(1, int(block_s * rate))
        self.clock, self.warn = clock, warn
        self.line = DelayLine(channels=channels, rate=rate, delay_ms=tracker.delay_ms(),
                              hysteresis_ms=HYSTERESIS_MS, fine_ms=5.0, settle_s=2.0)
        self.origin: float | None = None
        self.errors: list[str] = []
        self.history: deque[tuple[float, float]] = deque(maxlen=1000)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def delay_ms(self) -> float:
        """The delay in use now."""
        return self.line.delay_ms

    def start(self) -> None:
        if not self.source.clocked:
            self.source.start(self._captured)
        self._thread = threading.Thread(target=self._run, name="gnr-audio", daemon=True)
        self._thread.start()

    def _captured(self, x: np.ndarray, t_first: float) -> None:
        """A device's block (its thread): anchor the clock, follow its drift, push."""
        with self._lock:
            if self.origin is None:
                self.origin = t_first
            else:
                drift = t_first - (self.origin + self.line.written / self.rate)
                if abs(drift) > RESYNC_S:
                    self.origin += drift
            self.line.push(x)

    def step(self, now: float) -> None:
        """Move everything due by ``now`` (the thread calls it; tests may call it with a clock)."""
        if self.source.clocked:
            if self.source.origin is None:
                return                             # the video has not started yet
            self.origin = self.source.origin
            want = int((now - self.origin) * self.rate)
            if want > self.line.written:
                self.line.push(self.source.read(self.line.written, want))
        if self.origin is None:
            return
        self.line.set_delay_ms(self.tracker.delay_ms())
        while self.line.written - self.line.read_pos >= self.block:
            with self._lock:
                t = self.origin + self.line.read_pos / self.rate
            changes = self.line.changes
            chunk = AudioChunk(self.line.pull(self.block), t, self.rate)
            if self.line.changes != changes:
                self.history.append((t, self.line.delay_ms))
            for out in list(self.outputs):
                try:
                    out.write_audio(chunk)
                except Exception as e:  # noqa: BLE001 - one output failing must not stop the others
                    self.outputs.remove(out)
                    why = f"{getattr(out, 'name', type(out).__name__)}: {e}"
                    self.errors.append(why)
                    self.warn(f"sound stopped for {why}")

    def _run(self) -> None:
        while not self._stop.wait(self.block / self.rate / 2):
            try:
                self.step(self.clock())
            except Exception as e:  # noqa: BLE001 - the video goes on without sound
                self.errors.append(str(e))
                self.warn(f"the sound stopped: {e}")
                return

    def stop(self) -> None:
        """Stop moving sound and close the source (the outputs are their owners' to close)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self.source.close()
