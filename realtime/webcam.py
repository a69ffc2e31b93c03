"""Live: a camera (or a video file looped as if it were one) stylised in real time.

    python -m realtime.webcam --checkpoint ckpt/001500.pt                 # camera 0, preview window
    python -m realtime.webcam --model demo --virtual-camera               # for video calls
    python -m realtime.webcam --input talk.mp4 --no-window --stream udp://127.0.0.1:5000
    python -m realtime.webcam --input talk.mp4 --no-window --max-frames 200 --record shown.mp4

Keys in the preview window: space = new random style, 1–9 = saved styles, s = save the current
style to the style bank, b = before/after, q or Esc = quit. Style changes blend over 0.3 s.
Live mode never queues: when the engine falls behind, stale frames are dropped (and counted).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from . import cli
from .sources import MediaError
from .types import Frame

BLEND_SECONDS = 0.3


def default_bank_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or (Path.home() / ".config")
    return Path(base) / "gnr-anime" / "styles.json"


class StyleBank:
    """Up to nine saved styles in a small JSON file (written atomically)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.styles: list[list[float]] = []
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                self.styles = [[float(v) for v in s] for s in data.get("styles", [])][:9]
            except (OSError, ValueError, TypeError, AttributeError):
                self.styles = []          # a broken bank is replaced on the next save

    def get(self, i: int) -> np.ndarray | None:
        return np.asarray(self.styles[i], np.float32) if 0 <= i < len(self.styles) else None

    def save(self, z: np.ndarray) -> int:
        self.styles = (self.styles + [np.asarray(z, np.float32).ravel().tolist()])[-9:]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"styles": self.styles}, indent=1))
        os.replace(tmp, self.path)
        return len(self.styles)


class StyleMixer:
    """The style the engine should use now: blends from the old to a new style over 0.3 s."""

    def __init__(self, z: np.ndarray):
        self.start = self.target = np.asarray(z, np.float32).ravel()
        self.t0 = 0.0
        self._lock = threading.Lock()

    def set(self, z: np.ndarray, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.start = self.current(now, locked=True)
            self.target = np.asarray(z, np.float32).ravel()
            self.t0 = now

    def current(self, now: float | None = None, locked: bool = False) -> np.ndarray:
        now = time.monotonic() if now is None else now
        a = min(max((now - self.t0) / BLEND_SECONDS, 0.0), 1.0)
        a = a * a * (3 - 2 * a)               # smoothstep: no jerk at either end
        return ((1 - a) * self.start + a * self.target).astype(np.float32)


class MixedStyleEngine:
    """Wraps an engine: before each batch, hands it the mixer's current style if it changed."""

    def __init__(self, engine, mixer: StyleMixer):
        self.engine, self.mixer = engine, mixer
        self.max_batch = getattr(engine, "max_batch", 8)
        self.size = engine.size
        self.name = engine.name
        self._last = None
        self.dynamic = hasattr(engine, "set_style")

    def __call__(self, crops):
        if self.dynamic:
            z = self.mixer.current()
            if self._last is None or not np.array_equal(z, self._last):
                self.engine.set_style(z)
                self._last = z
        return self.engine(crops)


class Preview:
    """The OpenCV window, driven from the main thread; shows the newest output."""

    def __init__(self, title: str = "gnr-anime  (space: new style, 1-9, s: save, b: before/after, q: quit)"):
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

    def shown(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        return before if self.before else after

    def show(self, overlay_text: str) -> int:
        cv2 = self.cv2
        with self._lock:
            latest = self.latest
        if latest is not None:
            img = cv2.cvtColor(self.shown(*latest), cv2.COLOR_RGB2BGR)
            draw_overlay(img, overlay_text)
            cv2.imshow(self.title, img)
        return cv2.waitKey(1) & 0xFF

    def close(self) -> None:
        self.cv2.destroyAllWindows()


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
    p.add_argument("--stream", metavar="URL", help="also send an MPEG-TS stream, e.g. udp://127.0.0.1:5000")
    p.add_argument("--record", type=Path, help="write what is shown to this video file")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--no-loop", action="store_true", help="with --input: stop at the end of the file")
    p.add_argument("--style-bank", type=Path, default=None,
                   help=f"saved styles file (default {default_bank_path()})")
    p.add_argument("--output-mode", default="composite", choices=["composite", "crop", "side-by-side"])
    p.add_argument("--json", type=Path, help="write the run summary (latency, drops) as JSON here")
    cli.add_model_arguments(p)
    cli.add_face_arguments(p)
    return p


class RecordSink:
    """Writes what the preview shows (before/after state and overlay included)."""

    def __init__(self, path: Path, width: int, height: int, fps: float, preview_state, overlay):
        from .sinks import VideoFileSink
        self.sink = VideoFileSink(path, width=width, height=height, fps=fps)
        self.preview_state, self.overlay = preview_state, overlay

    def write_pair(self, before: Frame, after: Frame) -> None:
        import cv2
        img = before.image if self.preview_state() else after.image
        img = np.ascontiguousarray(img).copy()
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        draw_overlay(bgr, self.overlay())
        self.sink.write(Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), after.timestamp_s, after.index))

    def close(self):
        self.sink.close()

    def abort(self):
        self.sink.abort()


def main(argv=None) -> int:
    from rich.console import Console
    from .faces import Compositor
    from .pipeline import Pipeline, PipelineStats
    from .sinks import StreamSink, VirtualCameraSink
    from .sources import CameraSource, LoopingFileSource

    console = Console(stderr=True)
    args = build_parser().parse_args(argv)
    if args.model is None and args.checkpoint is None and args.engine_file is None:
        args.model = "demo"
    sinks, record = [], None
    try:
        if args.max_frames is not None and args.max_frames < 1:
            raise cli.UsageError("--max-frames must be at least 1")
        engine = cli.build_engine(args, console, dynamic_style=True)
        from .styles import StyleCode
        z0 = getattr(engine, "style_vector", None)
        z0 = np.asarray(z0 if z0 is not None else StyleCode.from_seed(args.style or 0).vector, np.float32)
        mixer = StyleMixer(z0)
        live_engine = MixedStyleEngine(engine, mixer)
        if args.input is not None:
            source = LoopingFileSource(args.input, loop=not args.no_loop, paced=True,
                                       max_frames=args.max_frames)
            w, h = source.info.display_size
            fps = source.info.fps
        else:
            source = CameraSource(args.camera)
            first = next(iter(source))
            h, w = first.image.shape[:2]
            fps = source.fps
        if args.output_mode == "side-by-side":
            w *= 2
        elif args.output_mode == "crop":
            w = h = engine.size
        tracker, aligner = cli.make_face_stage(args, engine.size)
        if args.stream:
            sinks.append(StreamSink(args.stream, width=w, height=h, fps=fps))
        if args.virtual_camera:
            try:
                cam = VirtualCameraSink(width=w, height=h, fps=fps)
                sinks.append(cam)
                console.print(f"virtual camera: {cam.device}")
            except MediaError as e:
                console.print(f"[yellow]warning:[/] {e}; going on without it")
    except (cli.UsageError, MediaError) as e:
        console.print(f"[red]error:[/] {e}", soft_wrap=True)
        for s in sinks:
            s.abort()
        return 2

    stats = PipelineStats(window=2000)
    preview = None if args.no_window else _open_preview(console)
    bank = StyleBank(args.style_bank or default_bank_path())
    rng = np.random.default_rng()

    def overlay() -> str:
        lat = PipelineStats.percentiles(stats.recent_latency(3.0))
        recent = stats.frames_out / max(time.monotonic() - stats.t_start, 1e-6)
        return (f"{recent:5.1f} fps  latency p50 {lat['p50_ms']:.0f} ms  p95 {lat['p95_ms']:.0f} ms"
                f"  drops {sum(ch.dropped for ch in pipe.channels.values())}")

    if args.record:
        try:
            record = RecordSink(args.record, w, h, fps, lambda: bool(preview and preview.before), overlay)
        except MediaError as e:
            console.print(f"[red]error:[/] --record: {e}", soft_wrap=True)
            return 2

    def on_output(out: Frame, work) -> None:
        before = work.frame.to_numpy()
        if args.output_mode == "side-by-side":
            before = np.concatenate([before, before], axis=1)
        elif args.output_mode == "crop":
            before = out.image
        if preview is not None:
            preview.push(np.asarray(before), out.image)
        if record is not None:
            record.write_pair(Frame(np.ascontiguousarray(before), out.timestamp_s, out.index), out)

    pipe = Pipeline(source, tracker, aligner, live_engine, Compositor(aligner.template), sinks,
                    live=True, output=args.output_mode, device=args.device, on_output=on_output,
                    stats=stats)
    t_end = time.monotonic() + args.seconds if args.seconds else None

    def idle():
        if t_end is not None and time.monotonic() > t_end:
            return False
        if preview is None:
            return None
        key = preview.show(overlay())
        if key in (ord("q"), 27):
            return False
        if key == ord(" "):
            mixer.set(rng.standard_normal(len(mixer.target)).astype(np.float32))
        elif key == ord("b"):
            preview.before = not preview.before
        elif key == ord("s"):
            n = bank.save(mixer.target)
            console.print(f"saved the style as {n} in {bank.path}")
        elif ord("1") <= key <= ord("9"):
            z = bank.get(key - ord("1"))
            if z is not None and z.shape == mixer.target.shape:
                mixer.set(z)
        return None

    prev = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *a: pipe.stop())
    code = 0
    try:
        pipe.run(idle=idle)
        if record is not None:
            record.close()
    except KeyboardInterrupt:
        console.print("stopped (Ctrl-C)")
        if record is not None:
            record.close()                # a live recording keeps what was shown so far
    except MediaError as e:
        console.print(f"[red]error:[/] {e}", soft_wrap=True)
        if record is not None:
            record.abort()
        code = 1
    finally:
        signal.signal(signal.SIGTERM, prev)
        tracker.close()
        if preview is not None:
            preview.close()
    s = stats.summary()
    lat = s["latency"]
    console.print(f"frames {s['frames_out']} of {s['frames_in']} read, dropped {s['dropped_total']}, "
                  f"{s['fps']:.1f} fps, latency p50 {lat['p50_ms']:.1f} ms p95 {lat['p95_ms']:.1f} ms "
                  f"p99 {lat['p99_ms']:.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(s, indent=1))
    return code


def _open_preview(console):
    try:
        return Preview()
    except Exception as e:   # noqa: BLE001 - no display (headless) or OpenCV without GUI
        console.print(f"[yellow]warning:[/] no preview window ({str(e).splitlines()[0]}); "
                      "running headless (use --no-window to silence this)")
        return None


if __name__ == "__main__":
    sys.exit(main())
