"""Convert a video library on a Ray cluster, with long files split across workers.

    python -m realtime.convert clips/ -o out/ --checkpoint ckpt.pt --ray            # local Ray
    python -m realtime.convert /mnt/share/clips -o /mnt/share/out --checkpoint /mnt/share/g.pt \\
        --ray auto --segment-seconds 60                                         # a cluster

:func:`run_on_ray` runs a list of :class:`realtime.convert.Job` on Ray (``ray`` is imported
here, and only when a run starts; it is the ``cluster`` extra):

* **Workers.** One Ray actor per worker holds the engine, opened once with
  :func:`realtime.compose.open_model`, and converts one task at a time through the same code
  as a single machine: :func:`realtime.convert.convert_file` for a whole file,
  :func:`realtime.segments.convert_segment` for a segment of a long one, then
  :func:`realtime.segments.join_segments`. Each worker reserves ``gpus_per_task`` GPUs and
  ``cpus_per_task`` CPUs (default: one GPU where the cluster has GPUs, else one CPU); as many
  workers start as the cluster holds, up to the number of tasks.
* **Long files** are cut into segments of about ``segment_seconds`` (default: off on a local
  instance, 60 s on a cluster) that run in parallel; each decodes a warm-up before its start
  so the face tracker and smoother are settled at its first frame.
* **Storage.** Inputs, outputs and model files must be on storage every node sees, at the same
  paths, and the machine that starts the run must see them too (it lists folders and cleans up).
  Before anything starts, a tiny task on every node checks that it can read every input and
  model file and write every output folder; a failure is one :class:`ClusterError` line.
* **Outputs are atomic.** Each job works in a hidden folder beside its output
  (``.NAME.ray-XXXX``) that holds every partial file; the finished file is renamed onto the
  output, and the folder is removed whatever happens (success, failure, Ctrl-C).
* **Faults.** A worker that dies (killed, out of memory, node lost) is restarted by Ray and its
  task retried (``max_retries`` times); a worker that keeps dying is replaced. A file that fails
  for good is reported (status ``failed``) and the others finish.
* **Ctrl-C** cancels the Ray tasks, stops the workers and removes every partial file; the jobs
  not finished are marked ``interrupted`` and KeyboardInterrupt is raised.
* **Progress.** Workers report frames written to a small progress actor; one rich bar shows
  frames done over all files and segments, fps and ETA. :func:`print_cluster_summary` prints
  the usual table with the node(s) that did each file.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.fileio import temp_beside
from training.messages import one_line

from .compose import ConfigError, FileOutput, ModelOptions, PipelineConfig
from .segments import DEFAULT_WARMUP_S, Segment, plan_segments

if TYPE_CHECKING:            # realtime.convert imports this module for its --ray flags
    from .convert import Job

__all__ = ["ClusterError", "RayOptions", "DEFAULT_CLUSTER_SEGMENT_S", "add_ray_arguments",
           "ray_options", "run_on_ray", "print_cluster_summary"]

DEFAULT_CLUSTER_SEGMENT_S = 60.0
LOCAL = "local"                 # what `--ray` alone means: start a local Ray instance
_REPORT_EVERY_S = 0.5           # how often a worker tells the progress actor its frame count


class ClusterError(ConfigError):
    """The cluster cannot run the job (Ray missing or unreachable, storage a node cannot see);
    one line for the user, raised before anything is written."""


@dataclass(frozen=True)
class RayOptions:
    """How to run on Ray (the ``--ray*`` and ``--segment-seconds`` flags).

    ``address``: None starts a local instance; ``auto`` or ``ray://head:10001`` joins a
    cluster. ``segment_seconds``: None is the default (off locally, 60 s on a cluster), 0 is
    off. ``gpus_per_task``/``cpus_per_task``: None is the default (one GPU per worker where the
    cluster has GPUs and the model may use CUDA, else one CPU). ``max_retries``: how often Ray
    restarts a dead worker and retries its task. ``warmup_s``: decoded before each segment."""

    address: str | None = None
    segment_seconds: float | None = None
    gpus_per_task: float | None = None
    cpus_per_task: float | None = None
    max_retries: int = 3
    warmup_s: float = DEFAULT_WARMUP_S
    verbose: bool = False

    def __post_init__(self) -> None:
        def check(ok, msg):
            if not ok:
                raise ConfigError(msg)
        check(self.address is None or (isinstance(self.address, str) and self.address.strip()),
              "--ray: the address is empty (give ray://HOST:10001, auto, or nothing)")
        check(self.segment_seconds is None or (math.isfinite(self.segment_seconds)
                                               and self.segment_seconds >= 0),
              f"--segment-seconds must be a number of seconds >= 0 (0: off), "
              f"got {self.segment_seconds}")
        for flag, v in (("--ray-gpus-per-task", self.gpus_per_task),
                        ("--ray-cpus-per-task", self.cpus_per_task)):
            check(v is None or (math.isfinite(v) and v >= 0), f"{flag} must be >= 0, got {v}")
        check(not (self.gpus_per_task == 0 and self.cpus_per_task == 0),
              "--ray-gpus-per-task 0 and --ray-cpus-per-task 0: a worker needs some resource")
        check(int(self.max_retries) >= 0, f"--ray-retries must be >= 0, got {self.max_retries}")
        check(math.isfinite(self.warmup_s) and self.warmup_s >= 0,
              f"the segment warm-up must be >= 0 s, got {self.warmup_s}")

    @property
    def local(self) -> bool:
        return self.address is None

    def segment_length(self) -> float | None:
        """Seconds per segment for this run (None: files are not split)."""
        s = self.segment_seconds
        if s is None:
            s = None if self.local else DEFAULT_CLUSTER_SEGMENT_S
        return s or None


def add_ray_arguments(p: argparse.ArgumentParser) -> None:
    """The cluster flags: ``--ray [ADDRESS]``, ``--ray-gpus-per-task``, ``--ray-cpus-per-task``,
    ``--ray-retries`` and ``--segment-seconds``."""
    g = p.add_argument_group("cluster (Ray; needs the 'cluster' extra)")
    g.add_argument("--ray", nargs="?", const=LOCAL, default=None, metavar="ADDRESS",
                   help="convert on Ray: alone, a local Ray instance (one worker per CPU, or per "
                        "GPU); with an address (auto, or ray://HEAD:10001), that cluster. Inputs, "
                        "outputs and model files must be on storage every node sees")
    g.add_argument("--ray-gpus-per-task", type=float, default=None, metavar="N",
                   help="GPUs each worker reserves (default: 1 where the cluster has GPUs, else 0)")
    g.add_argument("--ray-cpus-per-task", type=float, default=None, metavar="N",
                   help="CPUs each worker reserves (default 1)")
    g.add_argument("--ray-retries", type=int, default=3, metavar="N",
                   help="restart a worker that died (killed, out of memory, node lost) and retry "
                        "its task this many times (default 3)")
    g.add_argument("--segment-seconds", type=float, default=None, metavar="S",
                   help="with --ray, split files longer than 1.5 S into segments of about S "
                        "seconds converted in parallel and joined losslessly (default: off on a "
                        f"local instance, {DEFAULT_CLUSTER_SEGMENT_S:g} on a cluster; 0: off)")


def ray_options(args) -> RayOptions | None:
    """The parsed flags as options (None without ``--ray``); ConfigError names a bad flag."""
    if args.ray is None:
        if args.segment_seconds is not None:
            raise ConfigError("--segment-seconds needs --ray (segments run on Ray workers)")
        return None
    return RayOptions(address=None if args.ray == LOCAL else args.ray,
                      segment_seconds=args.segment_seconds, gpus_per_task=args.ray_gpus_per_task,
                      cpus_per_task=args.ray_cpus_per_task, max_retries=args.ray_retries,
                      verbose=bool(getattr(args, "verbose", False)))


# =============================================================================================
# What runs on the workers
# =============================================================================================
@dataclass
class TaskResult:
    """What one task did, sent back to the driver."""
    status: str                      # done | failed | interrupted
    reason: str = ""
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    node: str = ""
    summary: dict | None = None
    notes: list[str] = field(default_factory=list)      # what the pipeline noted (one line each)


def _node() -> str:
    return socket.gethostname()


class _Progress:
    """The progress actor: the frames each task has written so far (a retried task starts
    again from 0, so the count is the latest attempt's)."""

    def __init__(self):
        self.frames: dict[str, int] = {}

    def report(self, key: str, frames: int) -> None:
        self.frames[key] = frames

    def total(self) -> int:
        return sum(self.frames.values())


class _Ticker:
    """Counts a task's frames and tells the progress actor every half second (fire and forget)."""

    def __init__(self, progress, key: str):
        self.progress, self.key = progress, key
        self.frames, self.sent_at = 0, 0.0
        self._send()

    def _send(self) -> None:
        self.sent_at = time.monotonic()
        if self.progress is not None:
            self.progress.report.remote(self.key, self.frames)

    def tick(self, *_) -> None:
        self.frames += 1
        if time.monotonic() - self.sent_at >= _REPORT_EVERY_S:
            self._send()

    def done(self) -> None:
        self._send()


class _Worker:
    """A Ray actor: opens the engine once, then converts files, segments and joins on request.
    Failures of a task come back as a failed TaskResult with one line (they are not retried);
    only a dying process makes Ray restart the actor and retry the task."""

    def __init__(self, model_opts: ModelOptions, progress: str, verbose: bool = False):
        import ray

        from . import cli
        from .compose import open_model
        self.progress = ray.get_actor(progress)       # by name: a restarted worker finds it too
        self.node = _node()
        self.error = ""
        try:
            self.model = open_model(model_opts)
            cli.apply_process_settings(self.model.engine, lambda m: None, verbose)
        except Exception as e:  # noqa: BLE001 - reported with every task this worker is given
            self.error = f"{self.node} could not open the model: {one_line(e)}"

    def _failed(self, e: BaseException | str, t0: float) -> TaskResult:
        return TaskResult("failed", e if isinstance(e, str) else one_line(e),
                          seconds=time.monotonic() - t0, node=self.node)

    def convert_file(self, job: Job, cfg: PipelineConfig, out: FileOutput, work: str,
                     key: str) -> TaskResult:
        """Convert a whole file into ``work`` with convert_file, then rename it onto the output."""
        from .convert import Job, convert_file
        t0 = time.monotonic()
        if self.error:
            return self._failed(self.error, t0)
        ticker = _Ticker(self.progress, key)
        staged = Job(job.input, Path(work) / job.output.name)
        convert_file(staged, self.model.engine, cfg, out, on_frame=ticker.tick)
        ticker.done()
        if staged.status == "done":
            try:
                os.replace(staged.output, job.output)
            except OSError as e:
                return self._failed(f"{job.output}: could not move the finished file into place "
                                    f"({e.strerror or e})", t0)
        reason = staged.reason.replace(str(staged.output), str(job.output))
        return TaskResult(staged.status, reason, staged.frames, staged.faces,
                          time.monotonic() - t0, self.node, staged.summary,
                          list(getattr(staged, "notes", [])))

    def convert_segment(self, job: Job, segment: Segment, info, cfg: PipelineConfig,
                        out: FileOutput, part: str, key: str) -> TaskResult:
        from .segments import convert_segment
        t0 = time.monotonic()
        if self.error:
            return self._failed(self.error, t0)
        ticker = _Ticker(self.progress, key)
        notes: list[str] = []
        try:
            r = convert_segment(job.input, segment, Path(part), self.model.engine, cfg, out,
                                info=info, on_output=ticker.tick, warn=notes.append)
        except KeyboardInterrupt:
            return TaskResult("interrupted", "stopped", node=self.node)
        except Exception as e:  # noqa: BLE001 - a failed segment fails its file, in one line
            return self._failed(e, t0)
        finally:
            ticker.done()
        return TaskResult("done", "", r.frames, r.faces, r.seconds, self.node,
                          {"warmup_frames": r.warmup_frames}, notes)

    def join(self, job: Job, parts: list[str], work: str) -> TaskResult:
        from .segments import join_segments
        t0 = time.monotonic()
        try:
            frames = join_segments([Path(p) for p in parts], job.output, scratch=Path(work))
        except Exception as e:  # noqa: BLE001 - one line
            return self._failed(e, t0)
        return TaskResult("done", "", frames, 0, time.monotonic() - t0, self.node)


def _check_storage(inputs: list[str], folders: list[str],
                   files: list[str]) -> tuple[str, list[str]]:
    """Run on one node: can it read every input and model file, and write every output folder?
    Returns (node, problems)."""
    problems = []
    for p in inputs + files:
        try:
            with open(p, "rb") as f:
                f.read(1)
        except OSError as e:
            problems.append(f"cannot read {p} ({e.strerror or e})")
    for d in folders:
        try:
            temp_beside(Path(d) / "write-check", suffix=".tmp").unlink()
        except OSError as e:
            problems.append(f"cannot write in {d} ({e.strerror or e})")
    return _node(), problems


def _probe(paths: list[str]) -> list[Any]:
    """Run on a worker: each input's VideoInfo, or None where it is not a video the segments
    can split (a photo, a bad file): that input is converted whole by convert_file, which
    handles a photo and reports a bad file in one line."""
    from .sources import MediaError, probe
    out: list[Any] = []
    for p in paths:
        try:
            out.append(probe(p))
        except MediaError:
            out.append(None)
    return out


# =============================================================================================
# The driver
# =============================================================================================
@dataclass
class _Task:
    kind: str                        # file | segment | join
    job: int                         # index into the jobs list
    segment: Segment | None = None
    frames: int = 0                  # expected, for ordering and progress

    @property
    def key(self) -> str:
        return f"{self.job}:{self.kind}:{self.segment.index if self.segment else 0}"


@dataclass
class _JobState:
    job: Job                         # what the workers are given: absolute paths
    work: Path
    cfg: PipelineConfig
    info: Any = None
    segments: list[Segment] = field(default_factory=list)
    parts: dict[int, TaskResult] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    t0: float | None = None


def _connect(opts: RayOptions):
    """Import Ray and connect (or start a local instance). Returns (ray, started_here)."""
    try:
        import ray
    except ImportError:
        raise ClusterError("--ray needs Ray: pip install 'gnr-anime[cluster]' (or pip install "
                           "ray) on this machine and on every node") from None
    if ray.is_initialized():
        return ray, False
    import logging
    kw = dict(include_dashboard=False, log_to_driver=opts.verbose,
              logging_level=logging.INFO if opts.verbose else logging.WARNING)
    try:
        if opts.local:
            ray.init(**kw)
        else:
            ray.init(address=opts.address, **kw)
    except Exception as e:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError...
        where = "a local Ray instance" if opts.local else f"the Ray cluster at {opts.address}"
        raise ClusterError(f"--ray: could not start or reach {where}: {one_line(e)}") from None
    return ray, True


def _resources(ray, opts: RayOptions, model_opts: ModelOptions) -> tuple[float, float, int]:
    """(gpus, cpus) per worker and how many workers the cluster holds now."""
    total = ray.cluster_resources()
    gpus_there = float(total.get("GPU", 0))
    wants_gpu = model_opts.device == "auto" or model_opts.device.startswith("cuda")
    if model_opts.device.startswith("cuda:"):
        raise ConfigError(f"--device {model_opts.device}: with --ray each worker is given its "
                          "own GPU by Ray; use --device cuda (or auto)")
    gpus = opts.gpus_per_task
    if gpus is None:
        gpus = 1.0 if gpus_there > 0 and wants_gpu else 0.0
    cpus = opts.cpus_per_task if opts.cpus_per_task is not None else 1.0
    if gpus > 0 and gpus_there == 0:
        raise ClusterError(f"--ray-gpus-per-task {gpus:g}: the cluster has no GPU")
    slots = []
    if gpus > 0:
        slots.append(int(gpus_there // gpus))
    if cpus > 0:
        slots.append(int(float(total.get("CPU", 0)) // cpus))
    capacity = min(slots) if slots else 0
    if capacity < 1:
        raise ClusterError(f"the cluster ({total.get('CPU', 0):g} CPU, {gpus_there:g} GPU) cannot "
                           f"hold one worker of {cpus:g} CPU and {gpus:g} GPU "
                           "(--ray-cpus-per-task, --ray-gpus-per-task)")
    return gpus, cpus, capacity


def _preflight(ray, jobs: list[Job], model_opts: ModelOptions) -> list[Any]:
    """Check storage on every node (ClusterError naming the node and path) and, at the same
    time, probe every input on a worker. Returns each job's VideoInfo (None: convert it whole)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    inputs = [str(j.input) for j in jobs]
    folders = sorted({str(j.output.parent) for j in jobs})
    files = [str(p) for p in (model_opts.checkpoint, model_opts.engine_file, model_opts.style_image,
                              model_opts.style_vector, model_opts.attributes) if p is not None]
    check, probe = ray.remote(num_cpus=0)(_check_storage), ray.remote(num_cpus=0)(_probe)
    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    checks = [check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False))
              .remote(inputs, folders, files) for n in nodes]
    chunk = 64
    probes = [probe.remote(inputs[i:i + chunk]) for i in range(0, len(inputs), chunk)]
    for node, problems in ray.get(checks):
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ClusterError(f"node {node}: {problems[0]}{more}; inputs, outputs and model "
                               "files must be on storage every node sees, at the same paths")
    return [x for part in ray.get(probes) for x in part]


def _pipeline_for(path: Path, cfg: PipelineConfig, photo_cfg: PipelineConfig | None):
    if photo_cfg is None:
        return cfg
    from .sources import is_photo
    return photo_cfg if is_photo(path) else cfg


def _expected_frames(info) -> int:
    if info is None:
        return 1
    return int(info.frames or round((info.duration_s or 0) * info.fps))


def _node_list(nodes: list[str]) -> str:
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n] = counts.get(n, 0) + 1
    return ", ".join(n if c == 1 else f"{n} x{c}" for n, c in counts.items())


def run_on_ray(jobs: list[Job], model_opts: ModelOptions, cfg: PipelineConfig, out: FileOutput,
               opts: RayOptions | None = None, *, console=None, progress: bool | None = None,
               photo_cfg: PipelineConfig | None = None) -> list[Job]:
    """Run the pending ``jobs`` on Ray (see the module docstring) and return them with their
    status, frames, faces, seconds and ``summary['nodes']`` set (and the pipeline's notes
    added to ``job.notes`` where jobs have them). ``photo_cfg``: the pipeline for photo inputs
    (default ``cfg``). Raises ClusterError (nothing written) when Ray or the storage is not
    usable, KeyboardInterrupt after cleaning up on Ctrl-C."""
    from .convert import Job
    opts = opts or RayOptions()
    if console is None:
        from rich.console import Console
        console = Console(stderr=True)
    todo = [i for i, j in enumerate(jobs) if j.status == "pending"]
    if not todo:
        return jobs
    model_opts = replace(model_opts, **{          # workers may run in other folders
        k: Path(v).absolute() for k in ("checkpoint", "engine_file", "style_image", "style_vector",
                                        "attributes")
        if (v := getattr(model_opts, k)) is not None})
    ray, started = _connect(opts)
    sched = None
    try:
        sched = _Scheduler(ray, jobs, model_opts, out, opts, console, progress)
        # the workers get absolute paths (the same on every node). The checks run before any
        # worker starts: Ray starts few worker processes at once, and a worker's start (loading
        # PyTorch, MediaPipe and the model) would delay them.
        where = {i: Job(Path(jobs[i].input).absolute(), Path(jobs[i].output).absolute())
                 for i in todo}
        infos = _preflight(ray, list(where.values()), model_opts)
        seg_len = opts.segment_length()
        for i, info in zip(todo, infos):
            job = where[i]
            segments = plan_segments(info, seg_len, opts.warmup_s) if info else [None]
            work = Path(tempfile.mkdtemp(prefix=f".{job.output.name}.ray-", dir=job.output.parent))
            sched.states[i] = _JobState(job, work, _pipeline_for(job.input, cfg, photo_cfg), info,
                                        segments if len(segments) > 1 else [])
            if len(segments) == 1:
                sched.queue.append(_Task("file", i, frames=_expected_frames(info)))
            else:
                per = _expected_frames(info) // len(segments)
                sched.queue += [_Task("segment", i, s, per) for s in segments]
        sched.start_workers(len(sched.queue))
        sched.run()
    except KeyboardInterrupt:
        if sched is not None:
            sched.cancel()
        for i in todo:
            if jobs[i].status == "pending":
                jobs[i].status, jobs[i].reason = "interrupted", "stopped; no output written"
        raise
    finally:
        if sched is not None:
            sched.close()
        if started:
            ray.shutdown()
    return jobs


class _Scheduler:
    """Starts the workers, hands tasks to idle ones (longest first), collects results, queues
    joins, replaces dead workers and drives the progress bar. One instance per run."""

    def __init__(self, ray, jobs, model_opts, out, opts: RayOptions, console, progress):
        self.ray, self.jobs, self.model_opts, self.out, self.opts = ray, jobs, model_opts, out, opts
        self.gpus, self.cpus, self.capacity = _resources(ray, opts, model_opts)
        self.console = console
        self.show = console.is_terminal if progress is None else progress
        self.states: dict[int, _JobState] = {}
        self.queue: list[_Task] = []
        self.inflight: dict = {}            # ObjectRef -> (actor, task)
        self.workers: list = []
        self.idle: list = []
        self.replacements = 0
        name = f"gnr-progress-{os.getpid()}-{time.monotonic_ns()}"
        self.progress = ray.remote(num_cpus=0)(_Progress).options(name=name).remote()
        self.progress_name = name

    def _actor(self):
        r = self.opts.max_retries
        cls = self.ray.remote(_Worker).options(num_gpus=self.gpus, num_cpus=self.cpus,
                                               max_restarts=r, max_task_retries=r,
                                               scheduling_strategy="SPREAD")
        a = cls.remote(self.model_opts, self.progress_name, self.opts.verbose)
        self.workers.append(a)
        self.idle.append(a)
        return a

    def start_workers(self, tasks: int) -> None:
        """As many workers as the cluster holds, but no more than ``tasks``."""
        for _ in range(min(self.capacity, tasks) - len(self.workers)):
            self._actor()

    def _submit(self, actor, task: _Task) -> None:
        st = self.states[task.job]
        job = st.job
        if st.t0 is None:
            st.t0 = time.monotonic()
        if task.kind == "file":
            ref = actor.convert_file.remote(job, st.cfg, self.out, str(st.work), task.key)
        elif task.kind == "segment":
            part = st.work / f"segment{task.segment.index:04d}{job.output.suffix}"
            ref = actor.convert_segment.remote(job, task.segment, st.info, st.cfg, self.out,
                                               str(part), task.key)
        else:                                   # every part with frames; the first has the audio
            parts = [str(st.work / f"segment{k:04d}{job.output.suffix}")
                     for k, r in sorted(st.parts.items()) if k == 0 or r.frames]
            ref = actor.join.remote(job, parts, str(st.work))
        self.inflight[ref] = (actor, task)

    def _finish(self, i: int, status: str, reason: str = "") -> None:
        job, st = self.jobs[i], self.states[i]
        if job.status != "pending":
            return
        job.status, job.reason = status, reason
        job.seconds = time.monotonic() - (st.t0 or time.monotonic())
        job.summary = dict(job.summary or {}, nodes=sorted(set(st.nodes)),
                           node_list=_node_list(st.nodes), segments=len(st.segments) or 1)
        self.queue = [t for t in self.queue if t.job != i]
        shutil.rmtree(st.work, ignore_errors=True)

    def _handle(self, task: _Task, res: TaskResult) -> None:
        i = task.job
        job, st = self.jobs[i], self.states[i]
        if job.status != "pending":
            return                              # a sibling segment already failed the file
        if res.node:
            st.nodes.append(res.node)
        if res.notes and hasattr(job, "notes"):
            job.notes += [n for n in res.notes if n not in job.notes]
        if res.status != "done":
            what = f"segment {task.segment.label}: " if task.kind == "segment" else ""
            self._finish(i, res.status, what + res.reason)
        elif task.kind == "file":
            job.frames, job.faces, job.summary = res.frames, res.faces, res.summary
            self._finish(i, "done")
        elif task.kind == "segment":
            st.parts[task.segment.index] = res
            if len(st.parts) == len(st.segments):
                self.queue.insert(0, _Task("join", i))
        else:
            frames = sum(p.frames for p in st.parts.values())
            job.frames, job.faces = frames, sum(p.faces for p in st.parts.values())
            job.summary = {"warmup_frames": sum(p.summary["warmup_frames"]
                                                for p in st.parts.values())}
            if res.frames != frames:
                self._finish(i, "failed", f"the joined file has {res.frames} frames, its "
                                          f"segments {frames}")
            else:
                self._finish(i, "done")

    def _died(self, actor, task: _Task, e: Exception) -> None:
        """A worker died more often than Ray may restart it: the task fails for good and the
        worker is replaced (a bounded number of times)."""
        n = self.opts.max_retries + 1
        self._finish(task.job, "failed", f"the worker died {n} time(s) on it (killed, out of "
                                         f"memory or node lost): {one_line(e)}")
        self.workers.remove(actor)
        if self.replacements < 2 * self.capacity:
            self.replacements += 1
            self._actor()

    def run(self) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)
        ray = self.ray
        self.queue.sort(key=lambda t: -t.frames)   # longest first: the last to finish is short
        total = sum(t.frames for t in self.queue)
        n_seg = sum(1 for t in self.queue if t.kind == "segment")
        label = f"{len(self.states)} file(s)" + (f", {n_seg} segments" if n_seg else "") + \
            f" on {len(self.workers)} worker(s)"
        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[fps]:>6.1f} fps"), TimeRemainingColumn()]
        t0 = time.monotonic()
        poll = None
        with Progress(*columns, console=self.console, transient=False,
                      disable=not self.show) as bar:
            shown = bar.add_task(label, total=total or None, fps=0.0)
            while self.queue or self.inflight:
                while self.idle and self.queue:
                    self._submit(self.idle.pop(), self.queue.pop(0))
                if not self.inflight:
                    break                       # no worker left: what remains fails below
                done, _ = ray.wait(list(self.inflight), num_returns=1, timeout=0.25)
                for ref in done:
                    actor, task = self.inflight.pop(ref)
                    try:
                        res = ray.get(ref)
                    except ray.exceptions.RayActorError as e:
                        self._died(actor, task, e)
                        continue
                    except ray.exceptions.RayError as e:
                        res = TaskResult("failed", one_line(getattr(e, "cause", None) or e))
                    self._handle(task, res)
                    self.idle.append(actor)
                if poll is None:
                    poll = self.progress.total.remote()
                if ray.wait([poll], timeout=0)[0]:
                    frames, poll = ray.get(poll), None
                    bar.update(shown, completed=frames,
                               fps=frames / max(time.monotonic() - t0, 1e-6))
            for i in {t.job for t in self.queue}:
                self._finish(i, "failed", "no worker left to run it")
            frames = sum(j.frames for j in self.jobs if j.status == "done")
            bar.update(shown, completed=frames, fps=frames / max(time.monotonic() - t0, 1e-6))

    def cancel(self) -> None:
        """Ctrl-C: cancel the tasks, stop the workers, wait (briefly) until they are gone."""
        ray = self.ray
        for ref in self.inflight:
            try:
                ray.cancel(ref)
            except Exception:   # noqa: BLE001 - already finished or gone
                pass
        for a in self.workers:
            try:
                ray.kill(a, no_restart=True)
            except Exception:   # noqa: BLE001 - already gone
                pass
        if self.inflight:
            ray.wait(list(self.inflight), num_returns=len(self.inflight), timeout=3.0)

    def close(self) -> None:
        """Stop the workers and the progress actor; remove every job's temporary folder."""
        for a in self.workers + [self.progress]:
            try:
                self.ray.kill(a)
            except Exception:   # noqa: BLE001 - already gone
                pass
        for st in self.states.values():
            shutil.rmtree(st.work, ignore_errors=True)


def print_cluster_summary(console, jobs: list[Job]) -> None:
    """The conversion summary table, with the segments of each file and the node(s) that did it."""
    from .convert import print_summary
    print_summary(console, jobs, title="Conversion summary (Ray)", extra=(
        ("segments", True, lambda j: str((j.summary or {}).get("segments", ""))),
        ("node(s)", False, lambda j: str((j.summary or {}).get("node_list", "")))))
