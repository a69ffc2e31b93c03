"""Batch conversion: every face in a video or photo drawn as an anime face with one locked style.

    python -m realtime.convert                               # the shipped demo, side by side
    python -m realtime.convert talk.mp4 -o talk_anime.mp4 --checkpoint ckpt/001500.pt --style 7
    python -m realtime.convert clips/ -o out/ --jobs 2 --output-mode side-by-side
    python -m realtime.convert photo.jpg --checkpoint ckpt/001500.pt       # -> photo_anime.jpg
    python -m realtime.convert talk.mp4 -o check.mp4 --model identity   # tracking + paste only

Keeps the audio (copied), the timestamps (variable frame rate stays variable), the rotation
metadata and the pixel aspect; the encoder follows the output's container (VP9 for .webm, H.264
otherwise; a ProRes, DNxHR, 10-bit or 4:2:2 input keeps its format in .mov/.mkv). Photos
(jpg, png, webp, bmp, tif) give a photo of the same format, upright (EXIF orientation applied).
Outputs are written to a temporary file beside the target and renamed at the end: Ctrl-C,
SIGTERM, SIGHUP or an error leaves no partial file and exits non-zero.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from training.messages import one_line

from . import cli
from .cluster import add_ray_arguments, print_cluster_summary, ray_options, run_on_ray
from .compose import (DEMO_VIDEO, ConfigError, FileInput, FileOutput, PipelineConfig,
                      build_pipeline, open_model, open_source)
from .sinks import VIDEO_OUTPUT_SUFFIXES, codec_problem, photo_output_suffix
from .sources import PHOTO_SUFFIXES, MediaError, is_photo

PHOTO_MAX_FACES = 16          # a photo converts every face unless --max-faces says otherwise
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".ts", ".mts", ".flv", ".wmv"}
OUTPUT_SUFFIX = "_anime"


@dataclass
class Job:
    """One file to convert, and how it went."""
    input: Path
    output: Path
    status: str = "pending"       # pending | done | skipped | failed | interrupted
    reason: str = ""
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    summary: dict | None = None
    notes: list[str] = field(default_factory=list)    # e.g. an encoder fallback

    @property
    def message(self) -> str:
        """The reason, naming the input once (MediaError messages already start with it)."""
        return self.reason if str(self.input) in self.reason else f"{self.input}: {self.reason}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m realtime.convert", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", type=Path,
                   help="video files or folders (none: convert the shipped demo video)")
    p.add_argument("-o", "--output", dest="out", type=Path,
                   help="output file (one input) or folder (several inputs or a folder)")
    p.add_argument("--output-mode", "--mode", dest="output_mode", default=None,
                   choices=["composite", "crop", "side-by-side"],
                   help="what to write: the frame with faces replaced (default), the aligned "
                        "stylised crop, or input and result side by side")
    p.add_argument("--codec", default=None,
                   help="video encoder (default: h264_nvenc when CUDA is used and it opens, else libx264)")
    p.add_argument("--crf", type=int, default=18, help="quality 0..51, lower is better (default 18)")
    p.add_argument("--preset", default="veryfast", help="x264 preset (default veryfast)")
    p.add_argument("--jobs", type=int, default=1, help="convert this many files at once (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--batch-frames", type=int, default=4,
                   help="batch the faces of up to this many consecutive frames (default 4)")
    cli.add_model_arguments(p)
    cli.add_face_arguments(p)
    max_faces = next(a for a in p._actions if a.dest == "max_faces")
    max_faces.default = None                    # unset: 1 for videos, every face in a photo
    max_faces.help = (f"faces to track per frame, 1..16 (default 1 for videos; {PHOTO_MAX_FACES}, "
                      "every face, for photos)")
    cli.add_verbosity(p)
    add_ray_arguments(p)
    return p


# =============================================================================================
# Planning: inputs to outputs
# =============================================================================================
def is_own_output(path: Path) -> bool:
    return path.stem.endswith(OUTPUT_SUFFIX)


def output_suffix(path: Path) -> str:
    """The default output's suffix: a photo keeps its format, a video its container where we
    write it (else MP4)."""
    s = path.suffix.lower()
    if is_photo(path):
        return photo_output_suffix(s)
    return s if s in VIDEO_OUTPUT_SUFFIXES else ".mp4"


def default_output(path: Path, folder: Path | None = None) -> Path:
    """``<stem>_anime<suffix>`` beside the input, or in ``folder``."""
    return (folder if folder is not None else path.parent) / (path.stem + OUTPUT_SUFFIX + output_suffix(path))


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def collect_inputs(inputs: list[Path]) -> tuple[list[Path], list[str]]:
    """The files to convert, and notes on what a folder held that was skipped (hidden files
    such as a leftover ``.x.part.mp4``, our own ``*_anime`` outputs, other files)."""
    files: list[Path] = []
    notes: list[str] = []
    known = VIDEO_SUFFIXES | PHOTO_SUFFIXES
    for item in inputs:
        if not item.exists():
            raise ConfigError(f"{item}: no such file or folder")
        if not item.is_dir():
            files.append(item)
            continue
        hidden = own = other = 0
        found = []
        for f in sorted(item.iterdir()):
            if not f.is_file():
                continue
            if f.name.startswith("."):
                hidden += 1
            elif f.suffix.lower() not in known:
                other += 1
            elif is_own_output(f):
                own += 1
            else:
                found.append(f)
        skipped = [text for n, text in ((hidden, _count(hidden, "hidden file")),
                                        (own, _count(own, f"earlier output") + f" (*{OUTPUT_SUFFIX})"),
                                        (other, _count(other, "other file"))) if n]
        if skipped:
            notes.append(f"{item}: skipped {', '.join(skipped)}")
        if not found:
            raise ConfigError(f"{item}: the folder holds no videos or photos to convert")
        files += found
    return files, notes


def _check_output_kind(job_input: Path, output: Path) -> None:
    """A photo becomes a photo, a video a video, each in a format we write."""
    s = output.suffix.lower()
    if is_photo(job_input):
        if not is_photo(output) or photo_output_suffix(s) != s:
            raise ConfigError(f"-o/--output {output}: a photo converts to an image "
                              "(.jpg, .png, .webp, .bmp, .tif)")
    elif s not in VIDEO_OUTPUT_SUFFIXES:
        raise ConfigError(f"-o/--output {output}: a video converts to a video file "
                          f"({', '.join(VIDEO_OUTPUT_SUFFIXES)})")


def plan_jobs(inputs: list[Path], out: Path | None, overwrite: bool) -> tuple[list[Job], list[str]]:
    """Pair inputs with outputs; a folder or several inputs need an output folder. Nothing is
    created here except a missing output folder whose parent exists."""
    files, notes = collect_inputs(inputs)
    several = len(files) > 1 or any(i.is_dir() for i in inputs)
    if out is None:
        if several:
            raise ConfigError("-o/--output: give an output folder for several inputs")
        out = default_output(files[0])
    if several:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"-o/--output: {out} is a file; several inputs need a folder")
        if not out.exists():
            if not out.parent.is_dir():
                raise ConfigError(f"-o/--output: the folder {out.parent} does not exist")
            out.mkdir()
        jobs = [Job(f, default_output(f, out)) for f in files]
    else:
        if out.is_dir():
            out = default_output(files[0], out)
        elif not out.parent.is_dir():
            raise ConfigError(f"-o/--output: the folder {out.parent} does not exist")
        jobs = [Job(files[0], out)]
    seen: set[Path] = set()
    for j in jobs:
        _check_output_kind(j.input, j.output)
        if j.output.resolve() == j.input.resolve():
            raise ConfigError(f"-o/--output: {j.output} is the input itself")
        if j.output.resolve() in seen:
            raise ConfigError(f"two inputs would write the same output {j.output}")
        seen.add(j.output.resolve())
        if j.output.exists() and not overwrite:
            j.status, j.reason = "skipped", "output exists (use --overwrite)"
    return jobs, notes


def check_codec(codec: str | None, jobs: list[Job]) -> None:
    """``--codec`` must open here and fit every video output's container."""
    if not codec:
        return
    for suffix in sorted({j.output.suffix.lower() for j in jobs if not is_photo(j.output)}):
        problem = codec_problem(codec, suffix)
        if problem:
            raise ConfigError(f"--codec {codec}: {problem}")


# =============================================================================================
# Converting one file (also what the studio and the cluster workers run)
# =============================================================================================
def convert_file(job: Job, engine, cfg: PipelineConfig, out: FileOutput, *,
                 on_frame: Callable[[], None] | None = None,
                 started: Callable | None = None) -> Job:
    """Convert ``job.input`` into ``job.output`` with an open ``engine``. Sets the job's status;
    never raises for a bad input or output (the reason is one line), re-raises nothing but
    Ctrl-C. ``started(pipeline)`` is called once the pipeline exists (to be able to stop it)."""
    t0 = time.monotonic()
    try:
        source = open_source(FileInput(job.input))
        spec = FileOutput(job.output, codec=out.codec, crf=out.crf, preset=out.preset,
                          audio_from=None if is_photo(job.input) else job.input)
        pipe = build_pipeline(cfg, source, engine, [spec],
                              on_output=(lambda f, w: on_frame()) if on_frame else None,
                              warn=job.notes.append)
        if started is not None:
            started(pipe)
        stats = pipe.run()
        s = stats.summary()
        job.status, job.frames, job.faces, job.summary = "done", s["frames_out"], s["faces"], s
    except KeyboardInterrupt:
        job.status, job.reason = "interrupted", "stopped; no output written"
    except Exception as e:  # noqa: BLE001 - every failure of one file fails that file, in one line
        job.status, job.reason = "failed", one_line(e)
    job.seconds = time.monotonic() - t0
    return job


class Converter:
    """Runs the jobs (several at once with ``jobs > 1``, sharing one engine), with a progress bar."""

    def __init__(self, engine, cfg: PipelineConfig, out: FileOutput, jobs: int, console,
                 progress: bool | None = None, photo_cfg: PipelineConfig | None = None):
        from .engines.base import SharedEngine
        self.engine = engine if isinstance(engine, SharedEngine) else SharedEngine(engine)
        self.cfg, self.out, self.jobs, self.console = cfg, out, max(1, jobs), console
        self.photo_cfg = photo_cfg or cfg
        self.show_progress = console.is_terminal if progress is None else progress
        self._pipelines: set = set()
        self._lock = threading.Lock()
        self.interrupted = False

    def _started(self, pipe) -> None:
        with self._lock:
            if self.interrupted:
                pipe.stop()
            self._pipelines.add(pipe)

    def stop_all(self) -> None:
        with self._lock:
            self.interrupted = True
            for p in list(self._pipelines):
                p.stop()

    def _one(self, job: Job, tick) -> Job:
        if self.interrupted:
            job.status, job.reason = "interrupted", "not started"
            return job
        cfg = self.photo_cfg if is_photo(job.input) else self.cfg
        return convert_file(job, self.engine, cfg, self.out, on_frame=tick, started=self._started)

    def run(self, jobs: list[Job]) -> list[Job]:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)
        from .sources import probe
        todo = [j for j in jobs if j.status == "pending"]
        total = 0
        for j in todo:
            if is_photo(j.input):
                total += 1
                continue
            try:
                info = probe(j.input)
                total += info.frames or int(round((info.duration_s or 0) * info.fps))
            except MediaError as e:
                j.status, j.reason = "failed", one_line(e)
        todo = [j for j in todo if j.status == "pending"]
        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[fps]:>6.1f} fps"), TimeRemainingColumn()]
        with Progress(*columns, console=self.console, transient=False,
                      disable=not self.show_progress) as progress:
            task = progress.add_task(_count(len(todo), "file"), total=total or None, fps=0.0)
            t0 = time.monotonic()

            def tick():
                progress.advance(task)
                done = progress.tasks[0].completed
                progress.update(task, fps=done / max(time.monotonic() - t0, 1e-6))

            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                futures = [pool.submit(self._one, j, tick) for j in todo]
                try:
                    while not all(f.done() for f in futures):
                        time.sleep(0.05)
                except KeyboardInterrupt:
                    self.stop_all()
                    for f in futures:
                        f.result()
                    raise
                for f, j in zip(futures, todo):
                    try:
                        f.result()              # convert_file catches all; this is a safety net
                    except Exception as e:  # noqa: BLE001
                        j.status, j.reason = "failed", one_line(e)
                    if j.status == "pending":
                        j.status, j.reason = "failed", "the conversion ended without a result"
        return jobs


def print_summary(console, jobs: list[Job], *, title: str = "Conversion summary",
                  extra: Sequence[tuple[str, bool, Callable[[Job], str]]] = ()) -> None:
    """The summary table; ``extra``: more columns as (name, is_number, job -> text), placed
    before the note (the cluster adds segments and nodes)."""
    from rich.table import Table
    t = Table(title=title)
    numbers = {"frames", "faces", "fps"} | {name for name, num, _ in extra if num}
    for col in ("input", "output", "status", "frames", "faces", "fps",
                *[name for name, _, _ in extra], "note"):
        t.add_column(col, justify="right" if col in numbers else "left", overflow="fold")
    for j in jobs:
        fps = f"{j.frames / j.seconds:.1f}" if j.seconds and j.frames else ""
        color = {"done": "green", "skipped": "yellow"}.get(j.status, "red")
        t.add_row(str(j.input), str(j.output), f"[{color}]{j.status}[/]", str(j.frames or ""),
                  str(j.faces or ""), fps, *[fn(j) for _, _, fn in extra], j.reason)
    console.print(t)


# =============================================================================================
# main
# =============================================================================================
class _Stop:
    """SIGTERM and SIGHUP stop a conversion the way Ctrl-C does (the temporary files are
    removed); the exit status says which signal it was (128 + its number)."""

    def __init__(self):
        self.signum = signal.SIGINT
        self.previous = {}

    def __enter__(self):
        for s in (signal.SIGTERM, signal.SIGHUP):
            self.previous[s] = signal.getsignal(s)
            signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        for s, h in self.previous.items():
            signal.signal(s, h)
        return False


def main(argv=None) -> int:
    from rich.console import Console
    console = Console(stderr=True)
    args = build_parser().parse_args(argv)
    jobs: list[Job] = []
    with _Stop() as stop:                 # from here on, any stop is one line and no output
        try:
            return _run(args, console, jobs)
        except KeyboardInterrupt:
            if len(jobs) > 1:
                print_summary(console, jobs)
            why = "Ctrl-C" if stop.signum == signal.SIGINT else signal.Signals(stop.signum).name
            console.print(f"[red]interrupted[/] ({why}): unfinished outputs were not written",
                          soft_wrap=True)
            return 128 + int(stop.signum)


def _run(args, console, jobs: list[Job]) -> int:
    """Check every option and output, open the model, convert ``jobs`` (filled in here)."""
    demo = not args.inputs
    try:
        if args.jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
        ray_opts = ray_options(args)
        if ray_opts is not None and args.jobs != 1:
            raise ConfigError("--jobs: with --ray, Ray runs the files in parallel "
                              "(--ray-cpus-per-task, --ray-gpus-per-task set how many)")
        inputs = [DEMO_VIDEO] if demo else list(args.inputs)
        mode = args.output_mode or ("side-by-side" if demo else "composite")
        unset = args.max_faces is None
        faces = cli.face_options(argparse.Namespace(**{**vars(args), "max_faces": 1 if unset else args.max_faces}))
        cfg = PipelineConfig(faces=faces, output=mode, live=False, batch_frames=args.batch_frames)
        photo_cfg = replace(cfg, faces=replace(faces, max_faces=PHOTO_MAX_FACES)) if unset else cfg
        out_opts = FileOutput(Path("unused.mp4"), codec=args.codec, crf=args.crf, preset=args.preset)
        model_opts = cli.model_options(args, default_demo=True)
        if not demo and args.model is None and args.checkpoint is None and args.engine_file is None:
            console.print("note: no model given: using the small demo model shipped with the "
                          "package (crude); give --checkpoint CKPT for real results",
                          soft_wrap=True, highlight=False)
        out = args.out if args.out is not None else (Path("gnr_demo.mp4") if demo else None)
        planned, notes = plan_jobs(inputs, out, args.overwrite or (demo and args.out is None))
        check_codec(args.codec, planned)
        jobs[:] = planned
        for n in notes:
            console.print(f"note: {n}", soft_wrap=True, highlight=False)
        if ray_opts is not None:          # the workers open the model; ClusterError exits 2
            run_on_ray(jobs, model_opts, cfg, out_opts, ray_opts, console=console,
                       photo_cfg=photo_cfg)
        else:
            model = open_model(model_opts, log=lambda m: console.print(f"note: {m}", soft_wrap=True))
    except (ConfigError, MediaError) as e:
        console.print(f"[red]error:[/] {one_line(e)}", soft_wrap=True)
        return 2
    if ray_opts is None:
        console.print(f"engine: {model.summary}", soft_wrap=True, highlight=False)
        if args.verbose:
            console.print(f"  {model.details}", soft_wrap=True, highlight=False)
        cli.apply_process_settings(model.engine, lambda m: console.print(m, highlight=False), args.verbose)
        Converter(model.engine, cfg, out_opts, args.jobs, console, photo_cfg=photo_cfg).run(jobs)
    failed = [j for j in jobs if j.status in ("failed", "interrupted")]
    if len(jobs) > 1:
        (print_summary if ray_opts is None else print_cluster_summary)(console, jobs)
    for j in jobs:
        for n in j.notes:
            console.print(f"note: {n}", soft_wrap=True, highlight=False)
        if j.status == "skipped":
            console.print(f"skipped {j.output}: {j.reason}", soft_wrap=True, highlight=False)
        elif j.status == "done" and is_photo(j.input):
            console.print(f"wrote {j.output} ({_count(j.faces, 'face')})", soft_wrap=True,
                          highlight=False)
        elif j.status == "done":
            console.print(f"wrote {j.output} ({_count(j.frames, 'frame')}, "
                          f"{_count(j.faces, 'face')}, {j.frames / max(j.seconds, 1e-9):.1f} fps)",
                          soft_wrap=True, highlight=False)
    for j in failed:
        console.print(f"[red]error:[/] {j.message}", soft_wrap=True, highlight=False)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
