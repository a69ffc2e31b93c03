"""Batch video conversion: every face in a video drawn as an anime face with one locked style.

    python -m realtime.convert                               # the shipped demo, side by side
    python -m realtime.convert talk.mp4 -o talk_anime.mp4 --checkpoint ckpt/001500.pt --style 7
    python -m realtime.convert clips/ -o out/ --jobs 2 --output side-by-side
    python -m realtime.convert talk.mp4 -o check.mp4 --model identity   # tracking + paste only

Keeps the audio (copied), the timestamps (variable frame rate stays variable), the rotation
metadata and the pixel aspect. Outputs are written to a temporary file beside the target and
renamed at the end: Ctrl-C or an error leaves no partial file and exits non-zero.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import cli
from .sources import MediaError

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".ts", ".mts", ".flv", ".wmv"}


@dataclass
class Job:
    input: Path
    output: Path
    status: str = "pending"       # pending | done | skipped | failed | interrupted
    reason: str = ""
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    summary: dict | None = None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m realtime.convert", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", type=Path,
                   help="video files or folders (none: convert the shipped demo video)")
    p.add_argument("-o", "--output", dest="out", type=Path,
                   help="output file (one input) or folder (several inputs or a folder)")
    p.add_argument("--output-mode", "--output-kind", dest="output_mode", default=None,
                   choices=["composite", "crop", "side-by-side"],
                   help="what to write: the frame with faces replaced (default), the aligned "
                        "stylised crop, or input and result side by side")
    p.add_argument("--codec", default=None,
                   help="video encoder (default: h264_nvenc when CUDA is used and it opens, else libx264)")
    p.add_argument("--crf", type=int, default=18, help="quality, lower is better (default 18)")
    p.add_argument("--preset", default="veryfast", help="x264 preset (default veryfast)")
    p.add_argument("--jobs", type=int, default=1, help="convert this many files at once (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--batch-frames", type=int, default=4,
                   help="batch the faces of up to this many consecutive frames (default 4)")
    cli.add_model_arguments(p)
    cli.add_face_arguments(p)
    return p


def _collect(inputs: list[Path]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(f for f in item.iterdir() if f.suffix.lower() in VIDEO_SUFFIXES and f.is_file())
            if not found:
                raise cli.UsageError(f"{item}: the folder holds no video files "
                                     f"({', '.join(sorted(VIDEO_SUFFIXES))})")
            files += found
        else:
            files.append(item)
    return files


def plan_jobs(inputs: list[Path], out: Path | None, overwrite: bool) -> list[Job]:
    """Pair inputs with outputs; a folder or several inputs need an output folder."""
    files = _collect(inputs)
    several = len(files) > 1 or any(i.is_dir() for i in inputs)
    if out is None:
        if several:
            raise cli.UsageError("-o/--output: give an output folder for several inputs")
        out = files[0].with_name(files[0].stem + "_anime.mp4")
    if several:
        if out.exists() and not out.is_dir():
            raise cli.UsageError(f"-o/--output: {out} is a file; several inputs need a folder")
        if not out.exists():
            if not out.parent.is_dir():
                raise cli.UsageError(f"-o/--output: the folder {out.parent} does not exist")
            out.mkdir()
        jobs = [Job(f, out / (f.stem + "_anime.mp4")) for f in files]
    else:
        if out.is_dir():
            out = out / (files[0].stem + "_anime.mp4")
        jobs = [Job(files[0], out)]
    seen: set[Path] = set()
    for j in jobs:
        if j.output.resolve() == j.input.resolve():
            raise cli.UsageError(f"-o/--output: {j.output} is the input itself")
        if j.output.resolve() in seen:
            raise cli.UsageError(f"two inputs would write the same output {j.output}")
        seen.add(j.output.resolve())
        if j.output.exists() and not overwrite:
            j.status, j.reason = "skipped", "output exists (use --overwrite)"
    return jobs


class SharedEngine:
    """One engine used by several conversions at once: calls take turns (a CUDA-graph engine
    copies each batch into one fixed input buffer, so two batches must never be in it together)."""

    def __init__(self, engine):
        self.engine = engine
        self.size, self.name = engine.size, engine.name
        self.max_batch = getattr(engine, "max_batch", 8)
        self._lock = threading.Lock()

    def __call__(self, crops):
        with self._lock:
            return self.engine(crops)


class Converter:
    """Runs the jobs (several at once with ``jobs > 1``, sharing one engine), with a progress bar."""

    def __init__(self, args, engine, console):
        self.args, self.engine, self.console = args, engine, console
        self._pipelines: set = set()
        self._lock = threading.Lock()
        self.interrupted = False

    def convert(self, job: Job, progress=None, task=None) -> Job:
        from .faces import Compositor
        from .pipeline import Pipeline
        from .sinks import VideoFileSink, pick_video_codec
        from .sources import VideoFileSource
        args = self.args
        t0 = time.monotonic()
        try:
            src = VideoFileSource(job.input)
            w, h = src.info.display_size
            mode = args.output_mode
            if mode == "side-by-side":
                w *= 2
            elif mode == "crop":
                w = h = self.engine.size
            sink = VideoFileSink(job.output, width=w, height=h, info=src.info,
                                 audio_from=str(job.input), crf=args.crf, preset=args.preset,
                                 codec=pick_video_codec(args.codec, args.device))
            tracker, aligner = cli.make_face_stage(args, self.engine.size)
            pipe = Pipeline(src, tracker, aligner, self.engine, Compositor(aligner.template),
                            [sink], live=False, output=mode, device=args.device,
                            batch_frames=args.batch_frames,
                            on_output=(lambda f, w_: progress.advance(task)) if progress else None)
            with self._lock:
                if self.interrupted:
                    sink.abort()
                    raise KeyboardInterrupt
                self._pipelines.add(pipe)
            try:
                stats = pipe.run()
            finally:
                with self._lock:
                    self._pipelines.discard(pipe)
                tracker.close()
            s = stats.summary()
            job.status, job.frames, job.faces, job.summary = "done", s["frames_out"], s["faces"], s
        except KeyboardInterrupt:
            job.status, job.reason = "interrupted", "stopped by Ctrl-C; no output written"
        except (MediaError, cli.UsageError, ValueError, OSError) as e:
            job.status, job.reason = "failed", str(e).splitlines()[0] if str(e) else type(e).__name__
        job.seconds = time.monotonic() - t0
        return job

    def stop_all(self):
        with self._lock:
            self.interrupted = True
            for p in list(self._pipelines):
                p.stop()

    def run(self, jobs: list[Job]) -> list[Job]:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)
        from .sources import probe
        todo = [j for j in jobs if j.status == "pending"]
        total = 0
        for j in todo:
            try:
                info = probe(j.input)
                total += info.frames or int(round((info.duration_s or 0) * info.fps))
            except MediaError as e:
                j.status, j.reason = "failed", str(e)
        todo = [j for j in todo if j.status == "pending"]
        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[fps]:>6.1f} fps"), TimeRemainingColumn()]
        with Progress(*columns, console=self.console, transient=False,
                      disable=not self.console.is_terminal and not getattr(self.args, "progress", False)) as progress:
            task = progress.add_task(f"{len(todo)} video(s)", total=total or None, fps=0.0)
            t0 = time.monotonic()

            def tick():
                done = progress.tasks[0].completed
                progress.update(task, fps=done / max(time.monotonic() - t0, 1e-6))

            class _Adv:
                def advance(self_, _t):
                    progress.advance(task)
                    tick()

            adv = _Adv()
            with ThreadPoolExecutor(max_workers=max(1, self.args.jobs)) as pool:
                futures = [pool.submit(self.convert, j, adv, task) for j in todo]
                try:
                    while not all(f.done() for f in futures):
                        time.sleep(0.05)
                except KeyboardInterrupt:
                    self.stop_all()
                    for j in todo:
                        if j.status == "pending":
                            j.status, j.reason = "interrupted", "not started (Ctrl-C)"
                    for f in futures:
                        f.result()
                    raise
        return jobs


def print_summary(console, jobs: list[Job]) -> None:
    from rich.table import Table
    t = Table(title="Conversion summary")
    for col in ("input", "output", "status", "frames", "faces", "fps", "note"):
        t.add_column(col, justify="right" if col in ("frames", "faces", "fps") else "left",
                     overflow="fold")
    for j in jobs:
        fps = f"{j.frames / j.seconds:.1f}" if j.seconds and j.frames else ""
        color = {"done": "green", "skipped": "yellow"}.get(j.status, "red")
        t.add_row(str(j.input), str(j.output), f"[{color}]{j.status}[/]", str(j.frames or ""),
                  str(j.faces or ""), fps, j.reason)
    console.print(t)


def main(argv=None) -> int:
    from rich.console import Console
    console = Console(stderr=True)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.jobs < 1:
            raise cli.UsageError("--jobs must be at least 1")
        if not 0 <= args.crf <= 51:
            raise cli.UsageError("--crf must be within 0..51")
        if not args.inputs:
            args = cli.apply_demo_defaults(args, console)
            if args.output_mode is None:
                args.output_mode = "side-by-side"
            if args.out is None:
                args.out = Path("gnr_demo.mp4")
                args.overwrite = True
        if args.output_mode is None:
            args.output_mode = "composite"
        for i in args.inputs:
            if not i.exists():
                raise cli.UsageError(f"{i}: no such file or folder")
        jobs = plan_jobs(args.inputs, args.out, args.overwrite)
        engine = cli.build_engine(args, console)
    except (cli.UsageError, MediaError) as e:
        console.print(f"[red]error:[/] {e}", soft_wrap=True)
        return 2
    if args.jobs > 1:
        engine = SharedEngine(engine)
    conv = Converter(args, engine, console)
    try:
        conv.run(jobs)
    except KeyboardInterrupt:
        print_summary(console, jobs)
        console.print("[red]interrupted:[/] Ctrl-C; unfinished outputs were not written", soft_wrap=True)
        return 130
    print_summary(console, jobs)
    failed = [j for j in jobs if j.status in ("failed", "interrupted")]
    for j in failed:
        console.print(f"[red]error:[/] {j.input}: {j.reason}", soft_wrap=True)
    if not failed:
        done = [j for j in jobs if j.status == "done"]
        for j in done:
            console.print(f"wrote {j.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
