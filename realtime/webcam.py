"""Live: a camera (or a video file looped as if it were one) stylised in real time.

    python -m realtime.webcam --checkpoint ckpt/001500.pt                 # camera 0, preview window
    python -m realtime.webcam --model demo --virtual-camera               # for video calls
    python -m realtime.webcam --input talk.mp4 --no-window --stream udp://127.0.0.1:5000
    python -m realtime.webcam --input talk.mp4 --no-window --max-frames 200 --record shown.mp4
    python -m realtime.webcam --virtual-camera --audio            # voice delayed to match the lips
    python -m realtime.webcam --input talk.mp4 --audio input --record shown.mp4

Keys in the preview window: space = new random style, 1–9 = saved styles, s = save the current
style to the style bank, b = before/after, q or Esc = quit. With an attribute model (``--model
demo`` has one; ``--attributes ISF.pt`` for a checkpoint): e = the next value of the attribute
being cycled (hair colour first; after its last value, none), a = cycle another attribute. Edits
stay in force on every new style (``--edit hair=red`` starts with one). Style changes blend over
0.3 s.
Live mode never queues: when the engine falls behind, stale frames are dropped (and counted).

Sound (``--audio``): the microphone, or with ``--audio input`` the input file's own sound played
in step with the looped video, is delayed by the video's measured latency (the median of the
last 3 s, or ``--audio-delay MS``) and goes into ``--record``, ``--stream`` and, with
``--virtual-camera`` or ``--audio-output``, a virtual microphone for calls. Every output is
stamped with emission times, so the sync you see in a recording is the sync a call partner gets
(:mod:`realtime.audio`).
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from training.fileio import write_bytes_atomic
from training.messages import one_line
from training.style import StyleCode

from . import cli
from .audio import LatencyTracker
from .compose import (CameraInput, ConfigError, FileOutput, LoopedInput, PipelineConfig,
                      StreamOutput, VirtualCameraOutput, build_pipeline, make_sinks, open_model,
                      open_source)
from .sinks import VIDEO_OUTPUT_SUFFIXES, StreamSink
from .sources import MediaError
from .styles import BlendedStyleEngine, StyleBank, StyleMixer, default_bank_path
from .types import Frame


class Preview:
    """The OpenCV window, driven from the main thread; shows the newest output."""

    def __init__(self, title: str = "gnr-anime  (space: new style, 1-9, s: save, a/e: attributes, "
                                    "b: before/after, q: quit)"):
        import cv2
        self.cv2 = cv2
        self.title = title
        self.before = False
        self.latest: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def push(self, before: np.ndarray, after: np.ndarray) -> None:
        with self._lock:
            self.latest = (before, after)

    def show(self, overlay_text: str) -> int:
        cv2 = self.cv2
        with self._lock:
            latest = self.latest
        if latest is not None:
            img = cv2.cvtColor(latest[0] if self.before else latest[1], cv2.COLOR_RGB2BGR)
            draw_overlay(img, overlay_text)
            cv2.imshow(self.title, img)
        return cv2.waitKey(1) & 0xFF

    def close(self) -> None:
        self.cv2.destroyAllWindows()


class StyleKeys:
    """What the preview's style keys do to the live style (a :class:`StyleMixer`): space a new
    random style, 1-9 a saved one, s saves the current one; with an attribute model
    (:class:`realtime.attributes.Attributes`) e steps the cycled attribute to its next value and
    a picks the next attribute to cycle. The edits in force are made again to every new style;
    a saved style is taken as it was saved (its edits are in it), so loading one clears them.
    :meth:`press` returns a line to tell the user, or None."""

    def __init__(self, mixer: StyleMixer, bank: StyleBank, attributes=None,
                 base: StyleCode | None = None, rng: np.random.Generator | None = None):
        self.mixer, self.bank, self.attributes = mixer, bank, attributes
        self.base = base if base is not None else StyleCode(tuple(map(float, mixer.target)), "start")
        self.rng = rng if rng is not None else np.random.default_rng()

    def _show(self) -> None:
        z = self.attributes.apply(self.base) if self.attributes is not None else self.base
        self.mixer.set(z.numpy())

    def press(self, key: int) -> str | None:
        if key == ord(" "):
            v = self.rng.standard_normal(len(self.mixer.target))
            self.base = StyleCode(tuple(map(float, v)), "random")
            self._show()
            return None
        if key == ord("s"):
            return f"saved the style as {self.bank.save(self.mixer.target)} in {self.bank.path}"
        if ord("1") <= key <= ord("9"):
            z = self.bank.get(key - ord("1"))
            if z is None or z.shape != self.mixer.target.shape:
                return None
            self.base = StyleCode(tuple(map(float, z)), f"bank {key - ord('0')}")
            if self.attributes is not None:
                self.attributes.edits.clear()
            self._show()
            return None
        if self.attributes is None or key not in (ord("a"), ord("e")):
            return None
        if key == ord("a"):
            return f"e now cycles {self.attributes.next_attribute()}"
        self.attributes.cycle()
        self._show()
        return f"attributes: {self.attributes.describe_edits()}"


def draw_overlay(img_bgr: np.ndarray, text: str) -> None:
    import cv2
    cv2.putText(img_bgr, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img_bgr, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m realtime.webcam", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    src.add_argument("--input", type=Path, help="loop this video file as if it were a camera")
    p.add_argument("--no-window", action="store_true", help="no preview window (headless)")
    p.add_argument("--virtual-camera", action="store_true",
                   help="send the output to a virtual camera (pyvirtualcam) for video calls")
    p.add_argument("--stream", metavar="URL", action="append",
                   help="also send an MPEG-TS stream to udp://HOST:PORT or tcp://HOST:PORT (may be "
                        "given several times); one that fails mid-run is dropped with a warning, "
                        "the others go on, and the exit status is 1")
    p.add_argument("--record", type=Path, help="write what is shown to this video file")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--no-loop", action="store_true", help="with --input: stop at the end of the file")
    p.add_argument("--style-bank", type=Path, default=None,
                   help=f"saved styles file (default {default_bank_path()})")
    p.add_argument("--output-mode", "--mode", dest="output_mode", default="composite",
                   choices=["composite", "crop", "side-by-side"],
                   help="what is shown and sent: the frame with faces replaced (default), the "
                        "aligned stylised crop, or input and result side by side")
    p.add_argument("--json", type=Path, help="write the run summary (latency, drops) as JSON here")
    a = p.add_argument_group("sound")
    a.add_argument("--audio", nargs="?", const="default", metavar="DEVICE|input",
                   help="carry sound along, delayed to match the video: the default microphone, "
                        "a named or numbered one, or 'input' (the sound of --input FILE, in step "
                        "with the looped video); it goes into --record, --stream and the virtual "
                        "microphone")
    a.add_argument("--audio-delay", type=float, metavar="MS",
                   help="delay the sound by this many ms instead of the measured video latency "
                        "(default: the median latency of the last 3 s, followed as it changes)")
    a.add_argument("--audio-output", metavar="NAME",
                   help="the virtual microphone: on Linux the name of the PulseAudio/PipeWire "
                        "null sink made for it (default gnr_anime_mic; made whenever "
                        "--virtual-camera is on); on Windows/macOS the virtual cable to play "
                        "into (default: 'CABLE Input' / 'BlackHole')")
    cli.add_model_arguments(p)
    cli.add_face_arguments(p)
    cli.add_verbosity(p)
    return p


class RecordSink:
    """Writes what the preview shows (before/after state and overlay included)."""

    def __init__(self, sink, preview_state, overlay):
        self.sink, self.preview_state, self.overlay = sink, preview_state, overlay

    def write_pair(self, before: Frame, after: Frame) -> None:
        import cv2
        img = before.image if self.preview_state() else after.image
        bgr = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
        draw_overlay(bgr, self.overlay())
        self.sink.write(Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), after.timestamp_s, after.index))

    def close(self):
        self.sink.close()

    def abort(self):
        self.sink.abort()


def check_output_path(flag: str, path: Path | None) -> None:
    """A file the run will write at the end: its folder must exist now (so a long run never
    ends in a traceback with its results lost)."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: the folder {folder} does not exist")
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder, not a file")


class LiveSound:
    """``--audio``: the sound source, the virtual microphone and the pump that delays the sound
    by the video's latency (:mod:`realtime.audio_io`). Opened before the outputs, so that they
    get a sound track only when there is sound; a missing backend is one warning line and the
    video goes on without sound."""

    def __init__(self, args, source, say):
        from .audio_io import (AudioUnavailableError, FileSoundTrack, Microphone,
                               VirtualMicrophone, parse_device)

        self.say, self.video = say, source
        self.tracker = LatencyTracker(fixed_ms=args.audio_delay)
        self.sound = self.mic_out = self.pump = None
        if args.virtual_camera or args.audio_output is not None:
            try:                     # first: it may restart PortAudio to find a new server
                self.mic_out = VirtualMicrophone(args.audio_output)
                say(_escape(self.mic_out.description))
            except AudioUnavailableError as e:
                self.warn(f"no virtual microphone: {one_line(e)}")
        try:
            self.sound = FileSoundTrack(args.input, source, loop=not args.no_loop) \
                if args.audio == "input" else Microphone(parse_device(args.audio))
        except AudioUnavailableError as e:
            self.warn(f"no sound: {one_line(e)}; the video goes on without it")
            if self.mic_out is not None:
                self.mic_out.close()
                self.mic_out = None
            return

    def warn(self, message: str) -> None:
        self.say(f"[yellow]warning:[/] {_escape(message)}")

    @property
    def on(self) -> bool:
        return self.sound is not None

    def start(self, sinks) -> None:
        """Move the sound into ``sinks`` (those that take it) and the virtual microphone."""
        from .audio_io import AudioPump, AudioUnavailableError

        outputs = [s for s in sinks if getattr(s, "audio", None) is not None]
        outputs += [self.mic_out] if self.mic_out is not None else []
        if not outputs:
            self.say("note: --audio: no output takes sound (use --record, --stream, "
                     "--virtual-camera or --audio-output); running without it")
            self.stop()
            self.sound = None
            return
        pump = AudioPump(self.sound, outputs, self.tracker, warn=self.warn)
        try:
            pump.start()
        except AudioUnavailableError as e:
            self.warn(f"no sound: {one_line(e)}; the video goes on without it")
            self.stop()
            return
        self.pump = pump

    def frame_out(self, frame: Frame) -> None:
        """A frame left the pipeline: its latency (capture to now) steers the delay."""
        from .audio_io import capture_time

        now = time.monotonic()
        self.tracker.add(now - capture_time(frame, self.video), now)

    def overlay(self) -> str:
        if self.pump is None:
            return ""
        return f"  audio +{self.pump.delay_ms:.0f} ms" + ("" if self.tracker.automatic else " (fixed)")

    def stop(self) -> None:
        if self.pump is not None:
            self.pump.stop()
        elif self.sound is not None:
            self.sound.close()
        if self.mic_out is not None:
            self.mic_out.close()

    def summary(self) -> dict | None:
        if self.pump is None:
            return None
        p = self.pump
        t0 = p.origin or 0.0
        return {"source": self.sound.name, "delay_ms": p.delay_ms, "how": self.tracker.describe(),
                "changes": [[round(t - t0, 3), round(ms, 1)] for t, ms in p.history],
                "outputs": [getattr(o, "name", type(o).__name__) for o in p.outputs],
                "errors": list(p.errors)}


def _escape(text: str) -> str:
    """``text`` shown as it is by rich (``.[audio]`` is not markup)."""
    from rich.markup import escape
    return escape(text)


def _check_audio_flags(args) -> None:
    if args.audio is None:
        for flag, value in (("--audio-delay", args.audio_delay), ("--audio-output", args.audio_output)):
            if value is not None:
                raise ConfigError(f"{flag}: only with --audio")
        return
    if args.audio == "input" and args.input is None:
        raise ConfigError("--audio input plays the sound of --input FILE; add --input, or name a "
                          "microphone (--audio DEVICE)")
    if args.audio_delay is not None and not (math.isfinite(args.audio_delay)
                                             and 0 <= args.audio_delay <= 2000):
        raise ConfigError(f"--audio-delay must be within 0..2000 ms, got {args.audio_delay:g}")


def main(argv=None) -> int:
    from rich.console import Console
    from .pipeline import PipelineStats

    console = Console(stderr=True)
    args = build_parser().parse_args(argv)
    say = (lambda m: console.print(m, soft_wrap=True, highlight=False))
    source = None
    try:
        if args.seconds is not None and not args.seconds > 0:
            raise ConfigError(f"--seconds must be > 0, got {args.seconds}")
        check_output_path("--json", args.json)
        check_output_path("--record", args.record)
        if args.record is not None and args.record.suffix.lower() not in VIDEO_OUTPUT_SUFFIXES:
            raise ConfigError(f"--record {args.record}: record into a video file "
                              f"({', '.join(VIDEO_OUTPUT_SUFFIXES)})")
        _check_audio_flags(args)
        cfg = PipelineConfig(faces=cli.face_options(args), output=args.output_mode, live=True)
        for url in args.stream or ():
            StreamOutput(url)                     # checks the URL before anything is opened
        model_opts = cli.model_options(args, dynamic_style=True, default_demo=True)
        in_spec = LoopedInput(args.input, loop=not args.no_loop, paced=True,
                              max_frames=args.max_frames) if args.input is not None \
            else CameraInput(args.camera)
        if args.input is None and args.max_frames is not None and args.max_frames < 1:
            raise ConfigError(f"--max-frames must be at least 1, got {args.max_frames}")
        model = open_model(model_opts, log=lambda m: say(f"note: {_escape(m)}"))
        source = open_source(in_spec)
    except (ConfigError, MediaError) as e:
        console.print(f"[red]error:[/] {one_line(e)}", soft_wrap=True)
        if source is not None and hasattr(source, "close"):
            source.close()
        return 2
    engine = model.engine
    say(f"engine: {model.summary}")
    if args.verbose:
        say(f"  {model.details}")
    cli.apply_process_settings(engine, say, args.verbose)

    z0 = engine.style if getattr(engine, "style", None) is not None else StyleCode.default()
    mixer = StyleMixer(z0.numpy())
    stats = PipelineStats(window=2000)
    sound = LiveSound(args, source, say) if args.audio is not None else None
    with_sound = sound is not None and sound.on
    outputs = [StreamOutput(url, audio=with_sound) for url in args.stream or ()]
    if args.virtual_camera:
        outputs.append(VirtualCameraOutput(required=False))
    preview = None if args.no_window else _open_preview(console)
    bank = StyleBank(args.style_bank)
    keys = StyleKeys(mixer, bank, model.attributes, model.base_style)
    if model.attributes is not None:
        say(f"attributes: {model.attributes.describe_edits()} (keys: e = next "
            f"{model.attributes.cycling}, a = another attribute)")
    record = None
    pipe = None

    def overlay() -> str:
        lat = PipelineStats.percentiles(stats.recent_latency(3.0))
        recent = stats.frames_out / max(time.monotonic() - stats.t_start, 1e-6)
        drops = sum(ch.dropped for ch in pipe.channels.values()) if pipe is not None else 0
        return (f"{recent:5.1f} fps  latency p50 {lat['p50_ms']:.0f} ms  p95 {lat['p95_ms']:.0f} ms"
                f"  drops {drops}" + (sound.overlay() if sound is not None else ""))

    def on_output(out: Frame, work) -> None:
        if sound is not None:
            sound.frame_out(out)
        before = work.frame.to_numpy()
        if args.output_mode == "side-by-side":
            before = np.concatenate([before, before], axis=1)
        elif args.output_mode == "crop":
            before = out.image
        if preview is not None:
            preview.push(np.asarray(before), out.image)
        if record is not None:
            record.write_pair(Frame(np.ascontiguousarray(before), out.timestamp_s, out.index), out)

    try:
        pipe = build_pipeline(cfg, source, BlendedStyleEngine(engine, mixer), outputs,
                              on_output=on_output, stats=stats,
                              warn=lambda m: say(f"note: {_escape(m)}"))
        if args.record:
            rec_sink = make_sinks([FileOutput(args.record, keep_timing=False, live_audio=with_sound)],
                                  pipe.output_size, pipe.fps)[0]
            record = RecordSink(rec_sink, lambda: bool(preview and preview.before), overlay)
    except (ConfigError, MediaError) as e:
        console.print(f"[red]error:[/] {one_line(e)}", soft_wrap=True)
        if pipe is not None:
            for s in pipe.sinks:
                s.abort()
        if sound is not None:
            sound.stop()
        return 2
    t_end = time.monotonic() + args.seconds if args.seconds else None

    streams = [s for s in pipe.sinks if isinstance(s, StreamSink)]

    def idle():
        if t_end is not None and time.monotonic() > t_end:
            return False
        if streams and all(s.failed for s in streams) and len(streams) == len(pipe.sinks) \
                and preview is None and record is None:
            return False                  # every output is gone: nothing left to do
        if args.max_frames is not None and stats.frames_in >= args.max_frames and args.input is None:
            return False                  # a camera has no end: stop after --max-frames
        if preview is None:
            return None
        key = preview.show(overlay())
        if key in (ord("q"), 27):
            return False
        if key == ord("b"):
            preview.before = not preview.before
        elif key != 255:
            said = keys.press(key)
            if said:
                say(said)
        return None

    prev = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *a: pipe.stop())
    code = 0
    if with_sound:
        sound.start([*pipe.sinks, *([record.sink] if record is not None else [])])
    try:
        pipe.run(idle=idle)
        if record is not None:
            record.close()
    except KeyboardInterrupt:
        say("stopped (Ctrl-C)")
        if record is not None:
            record.close()                # a live recording keeps what was shown so far
    except MediaError as e:
        console.print(f"[red]error:[/] {one_line(e)}", soft_wrap=True)
        if record is not None:
            record.abort()
        code = 1
    finally:
        signal.signal(signal.SIGTERM, prev)
        if sound is not None:
            sound.stop()
        if preview is not None:
            preview.close()
    s = stats.summary()
    lat = s["latency"]
    audio = sound.summary() if sound is not None else None
    if audio is not None:
        s["audio"] = audio
        how = "automatic" if sound.tracker.automatic else "fixed"
        say(f"sound: delayed {audio['delay_ms']:.0f} ms at the end ({how}), "
            f"{len(audio['changes'])} changes")
    say(f"frames {s['frames_out']} of {s['frames_in']} read, dropped {s['dropped_total']}, "
        f"{s['fps']:.1f} fps")                     # two short lines: no wrap inside a number
    say(f"latency p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms")
    for sink in streams:
        if sink.failed:
            console.print(f"[red]error:[/] --stream {sink.url}: {sink.failed}", soft_wrap=True,
                          highlight=False)
            code = code or 1
    if args.json:
        try:
            write_bytes_atomic(args.json, json.dumps(s, indent=1).encode())
        except OSError as e:
            console.print(f"[red]error:[/] --json {args.json}: {e.strerror or e}", soft_wrap=True)
            code = code or 1
    return code


def _open_preview(console):
    try:
        return Preview()
    except Exception as e:   # noqa: BLE001 - no display (headless) or OpenCV without GUI
        console.print(f"[yellow]warning:[/] no preview window ({one_line(e)}); "
                      "running headless (use --no-window to silence this)")
        return None


if __name__ == "__main__":
    sys.exit(main())
