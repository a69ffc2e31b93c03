"""Pipeline section of the latency benchmark: the whole product pipeline, per stage and end to end.

Synthesized videos of the astronaut photo (:func:`realtime.synthetic.synth_clip`) with 1 and 4
moving faces at 640x480, 1280x720 and 1920x1080 run through pipelines built the way every
front end builds them (:func:`realtime.compose.build_pipeline`; the ``face`` paste, see
:data:`PASTE`), with the fastest exact engine of the engine section (or, for the
``demo-student`` model, the shipped demo student as the product opens it):

* ``file`` mode: decode (PyAV) -> track -> align -> engine (faces of up to ``--batch-frames``
  frames batched) -> paste -> encode (libx264 veryfast, or NVENC where it opens) into a
  temporary file (:class:`~realtime.compose.FileOutput`); end to end = from the start of a
  frame's decode to its encoded write;
* ``live`` mode: the clip played as a camera (:class:`~realtime.compose.LoopedInput`: paced at
  the clip's rate, ``--live-fps``), the newest frame wins, no encoder (a :class:`NullSink`: the
  frame is ready to show); end to end = capture -> frame ready, where a frame is taken as
  captured just before it is decoded. Dropped frames are counted.

Every time comes from what the pipeline records itself: each frame's
:class:`~realtime.pipeline.InFlight` carries ``t_read`` (when the source gave it) and
``timings`` (decode, track, align, engine, paste, encode; a batched engine call is shared among
its frames by face count), handed to ``on_output`` with the output frame; the start of a frame
is ``t_read - timings["decode"]``. The first ``--warmup-frames`` frames (tracker start-up,
first detection) are left out. On CUDA, ``--parallel-files N`` also converts N 1080p files at
once sharing one engine (:class:`~realtime.engines.base.SharedEngine`) and reports the
aggregate frames/s and the engine's (GPU's) share of the wall time.
"""
from __future__ import annotations

import gc
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from .common import is_cuda, percentiles, ratio
from .latency_engines import STYLE_SEED, model_config, random_generator, release
from .latency_schema import STAGES
from .latency_settings import RESOLUTIONS, BenchmarkError, Settings

# The paste-back the pipelines use: the inner-face ellipse, no segmentation, so every stage has a
# column of the schema (the ``head`` paste adds a ``segment`` stage: a new schema version).
PASTE = "face"


class NullSink:
    """Live mode's sink: the frame is ready to show (a window or virtual camera would take it)."""

    def write(self, frame) -> None:
        pass

    def close(self) -> None:
        pass

    abort = close


class Record(NamedTuple):
    """What ``on_output`` saw of one frame."""
    frame_index: int
    t_out: float                  # time.monotonic() when the frame was written
    t_read: float                 # ... when the source gave it
    timings: dict                 # seconds per stage
    faces: int


# The pipeline model that runs the shipped demo student (realtime/assets/demo_student.pt, what
# ``--model demo`` opens on the CPU) through the product's own backend choice.
DEMO_STUDENT_MODEL = "demo-student"


def pick_pipeline_engine(s: Settings, engine_section: dict | None, kept: dict, tmp: Path,
                         log: Callable[[str], None]):
    """(engine, model name, why): the fastest exact engine measured at batch 1 for the
    pipeline's model config, else the product's own choice for the device
    (:func:`realtime.engines.select.open_engine`, ``--backend auto``) on random weights; for
    :data:`DEMO_STUDENT_MODEL`, the product's own choice for the shipped demo student (on the
    CPU its cached int8 graph)."""
    from realtime.engines import IdentityEngine
    from realtime.engines.select import EngineRequest, open_engine
    model = s.pipeline_config()
    if model == "identity":
        return IdentityEngine(size=256, device=s.device), "identity", \
            "identity model: everything but the network"
    if model == DEMO_STUDENT_MODEL:
        from realtime.compose import DEMO_STUDENT
        if not DEMO_STUDENT.exists():
            raise BenchmarkError(f"--pipeline-model {model}: {DEMO_STUDENT} is not in this build")
        engine, why = open_engine(EngineRequest(
            checkpoint=DEMO_STUDENT, style_seed=STYLE_SEED, backend="auto", device=s.device,
            max_batch=16 if s.device == "cuda" else 8, threads=s.threads, onnx_cache=tmp),
            log=log)
        return engine, model, f"the product's auto choice for {DEMO_STUDENT.name}: {why}"
    cands = [v for v in kept.get(model, []) if v.engine is not None and v.exact]
    if engine_section and cands:
        ms = {r["label"]: r["ms_per_frame"] for r in engine_section["rows"]
              if r["config"] == model and r["batch"] == 1 and r["reps"]}
        timed = [v for v in cands if v.label in ms and v.device == s.device]
        if timed:
            best = min(timed, key=lambda v: ms[v.label])
            return best.engine, model, f"fastest exact engine at batch 1 in the engine section " \
                                       f"({ms[best.label]:.2f} ms a frame)"
    from training import make_checkpoint, save_checkpoint
    cfg, _ = model_config(model)
    ckpt = save_checkpoint(make_checkpoint({"G_A2B_ema": random_generator(cfg)}, cfg),
                           tmp / f"pipeline-{model}.pt")
    engine, why = open_engine(EngineRequest(
        checkpoint=ckpt, style_seed=STYLE_SEED, backend="auto", device=s.device,
        max_batch=16 if s.device == "cuda" else 8, threads=s.threads, onnx_cache=tmp), log=log)
    return engine, model, f"the product's auto choice (engine section not run): {why}"


def prewarm(engine, device: str, sizes: Sequence[int]) -> None:
    """Call the engine once per batch size the run will use (a CUDA engine captured its graphs
    when it opened; this warms the caches): none of that lands in the measured frames."""
    import torch
    for n in sizes:
        x = torch.zeros(n, 3, engine.size, engine.size, device=device)
        with torch.no_grad():
            engine(x)
    if is_cuda(device):
        torch.cuda.synchronize()


def _run_all(pipes: list) -> float:
    """Run the pipelines (at once when there are several); returns the wall time."""
    t_start = time.monotonic()
    if len(pipes) == 1:
        pipes[0].run()
        return time.monotonic() - t_start
    errors: list[BaseException] = []

    def go(pipe):
        try:
            pipe.run()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)
    threads = [threading.Thread(target=go, args=(p,), name=f"bench-file-{k}")
               for k, p in enumerate(pipes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.monotonic() - t_start


def run_pipeline_once(clip: Path, engine, s: Settings, *, mode: str, faces: int,
                      out_dir: Path, codec: str | None = None, parallel: int = 1) -> dict:
    """One pipeline run (``parallel`` > 1: that many file conversions at once sharing the
    engine). Returns the row: per-stage and end-to-end percentiles over the measured frames."""
    from realtime.compose import (FaceOptions, FileInput, FileOutput, LoopedInput,
                                  PipelineConfig, build_pipeline, open_source)
    from realtime.engines.base import SharedEngine

    live = mode == "live"
    cfg = PipelineConfig(faces=FaceOptions(max_faces=faces, paste=PASTE), live=live,
                         batch_frames=s.batch_frames)
    shared = SharedEngine(engine) if parallel > 1 else engine
    runs: list[tuple] = []
    for j in range(parallel):
        if live:
            source = open_source(LoopedInput(clip, loop=True, paced=True,
                                             max_frames=s.frames + s.warmup_frames))
            sinks = [NullSink()]
        else:
            source = open_source(FileInput(clip))
            sinks = [FileOutput(out_dir / f"out-{mode}-{j}.mp4", codec=codec, crf=18,
                                preset="veryfast")]
        records: list[Record] = []

        def on_output(frame, inflight, records=records):
            records.append(Record(frame.index, time.monotonic(), inflight.t_read,
                                  dict(inflight.timings), len(inflight.tracks)))
        runs.append((build_pipeline(cfg, source, shared, sinks, on_output=on_output), records))
    wall = _run_all([pipe for pipe, _ in runs])

    stage_ms: dict[str, list[float]] = {st: [] for st in STAGES}
    e2e, found, out_times = [], [], []
    frames_in = frames_out = dropped = 0
    engine_busy = 0.0
    for pipe, records in runs:
        summ = pipe.stats.summary()
        frames_in += summ["frames_in"]
        frames_out += summ["frames_out"]
        dropped += summ["dropped_total"]
        engine_busy += float(sum(pipe.stats.times["engine"]))
        for r in records:
            if r.frame_index < s.warmup_frames:
                continue
            stage_ms["decode"].append(r.timings.get("decode", float("nan")) * 1000)
            for st in STAGES[1:]:
                stage_ms[st].append(r.timings.get(st, 0.0) * 1000)
            e2e.append((r.t_out - (r.t_read - r.timings.get("decode", 0.0))) * 1000)
            found.append(r.faces)
            out_times.append(r.t_out)
    out_times.sort()
    measured = len(e2e)
    if live:     # delivered frames per second of camera time (= the camera rate when none drop)
        fps = measured / s.frames * runs[0][0].fps
    else:        # output rate over the measured frames
        span = (out_times[-1] - out_times[0]) if measured > 1 else float("nan")
        fps = (measured - 1) / span if measured > 1 and span > 0 else float("nan")
    stages = {st: percentiles(v) for st, v in stage_ms.items()}
    stage_sum = sum(v["mean"] for v in stages.values() if np.isfinite(v["mean"]))
    e2e_st = percentiles(e2e)
    return {
        "mode": mode, "faces": faces, "parallel": parallel,
        "frames_in": frames_in, "frames_out": frames_out, "measured_frames": measured,
        "warmup_frames": s.warmup_frames, "dropped": dropped,
        "faces_found_mean": float(np.mean(found)) if found else 0.0,
        "fps": fps, "wall_s": wall,
        "stages": stages, "end_to_end": e2e_st,
        "stage_sum_mean_ms": stage_sum,
        "wait_mean_ms": max(0.0, e2e_st["mean"] - stage_sum) if measured else float("nan"),
        "engine_busy_fraction": engine_busy / wall if wall > 0 else float("nan"),
        "engine_share_of_stage_time": ratio(stages["engine"]["mean"], stage_sum),
        "codec": codec, "sink": "none (frame ready to show)" if live else f"file ({codec})",
    }


def _clip(path: Path, width: int, height: int, faces: int, s: Settings) -> Path:
    """A synthesized clip of the run's length, at the live camera's rate."""
    from realtime.synthetic import synth_clip
    try:
        return synth_clip(path, width, height, faces, s.frames + s.warmup_frames, fps=s.live_fps)
    except ImportError as e:
        raise BenchmarkError(f"the pipeline section synthesizes its videos from scikit-image's "
                             f"astronaut photo: {e}") from None


def _measure(clip: Path, engine, s: Settings, tmp: Path, res: str, **kw) -> dict:
    """:func:`run_pipeline_once` with a fresh output folder; the row with its input size."""
    out_dir = Path(tempfile.mkdtemp(prefix="out-", dir=tmp))
    try:
        row = run_pipeline_once(clip, engine, s, out_dir=out_dir, **kw)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    w, h = RESOLUTIONS[res]
    row.update(resolution=res, width=w, height=h)
    return row


def run_pipeline_section(s: Settings, console, tmp: Path, engine_section, kept) -> dict:
    import torch
    from realtime.compose import pipeline_device
    from realtime.sinks import pick_video_codec
    engine, model, why = pick_pipeline_engine(s, engine_section, kept, tmp,
                                              lambda m: console.print(m, highlight=False))
    for name in list(kept):                 # only the pipeline's engine stays alive
        release(kept[name], keep=engine)
        kept[name] = [v for v in kept[name] if v.engine is engine]
    gc.collect()
    if s.device == "cuda":
        torch.cuda.empty_cache()
    name = getattr(engine, "name", str(engine))
    console.print(f"[bold]pipeline[/] · model {model} · engine [bold]{name}[/] on {s.device} — "
                  f"{why}", highlight=False)
    section: dict = {"model": model, "engine": name, "engine_choice": why, "device": s.device,
                     "live_fps": s.live_fps, "batch_frames": s.batch_frames, "paste": PASTE,
                     "rows": [], "skipped": []}
    sizes = sorted({min(engine.max_batch, n) for n in range(1, max(s.faces) * s.batch_frames + 1)}) \
        if s.device == "cuda" else [1]
    prewarm(engine, s.device, sizes)
    codec = pick_video_codec(None, pipeline_device(engine)) if "file" in s.modes else None
    for res in s.resolutions:
        w, h = RESOLUTIONS[res]
        for faces in s.faces:
            t0 = time.perf_counter()
            clip = _clip(tmp / f"clip-{res}-{faces}.mp4", w, h, faces, s)
            console.print(f"  {res}, {faces} face(s): clip of {s.frames + s.warmup_frames} "
                          f"frames made in {time.perf_counter() - t0:.1f} s", highlight=False)
            for mode in s.modes:
                row = _measure(clip, engine, s, tmp, res, mode=mode, faces=faces,
                               codec=None if mode == "live" else codec)
                section["rows"].append(row)
                e = row["end_to_end"]
                console.print(f"    {mode:4}: {row['fps']:.1f} fps, end to end p50 {e['p50']:.1f} ms "
                              f"p95 {e['p95']:.1f} ms, {row['faces_found_mean']:.2f} faces a frame, "
                              f"{row['dropped']} dropped", highlight=False)
                if row["faces_found_mean"] < 0.5 * faces:
                    console.print(f"    [yellow]warning: the tracker found "
                                  f"{row['faces_found_mean']:.2f} of {faces} faces a frame on "
                                  "average[/]")
            clip.unlink(missing_ok=True)
    if s.parallel_files > 1 and "file" in s.modes:
        w, h = RESOLUTIONS["1920x1080"]
        clip = _clip(tmp / "clip-parallel.mp4", w, h, 1, s)
        row = _measure(clip, engine, s, tmp, "1920x1080", mode="file", faces=1, codec=codec,
                       parallel=s.parallel_files)
        section["rows"].append(row)
        console.print(f"  1920x1080 file x{s.parallel_files} at once: {row['fps']:.1f} frames/s in "
                      f"aggregate, engine busy {100 * row['engine_busy_fraction']:.0f}% of the wall "
                      "time", highlight=False)
    elif s.parallel_files <= 1:
        section["skipped"].append({"what": "parallel file conversion",
                                   "reason": "--parallel-files is 0 (default on the CPU)"})
    if s.device == "cuda":
        torch.cuda.synchronize()
    return section
