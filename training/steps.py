"""The step loop of a run directory, shared by distillation (:mod:`training.distill`) and ISF
training (:mod:`training.isf.train`): scalars averaged over a log window (metrics.jsonl,
TensorBoard, one log line), sample grids, rotating atomic checkpoints, and a safe stop
(Ctrl-C/SIGTERM finish the step and save; a NaN loss stops with the last good checkpoint).

GNR training (:func:`training.loop.run_training`) keeps its own loop for its multi-GPU stop
vote, but writes its checkpoints with :func:`save_rotating` too.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .checkpoint import save_checkpoint
from .loop import Metrics, NaNLossError, RunResult, StopFlag, list_checkpoints

__all__ = ["Schedule", "save_rotating", "run_steps"]


@dataclass(frozen=True)
class Schedule:
    """How long a run goes and how often it logs, samples and saves (in steps)."""

    iters: int
    log_every: int
    sample_every: int
    checkpoint_every: int
    sample_at_end: bool = False           # also a sample grid at the last step


def save_rotating(run_dir: Path, step: int, make: Callable[[], dict], keep: int,
                  last: list, log: logging.Logger, what: str = "training") -> None:
    """Write ``run_dir/checkpoints/NNNNNN.pt`` atomically from ``make()`` and keep the newest
    ``keep``. A failed write (a full disk) is logged and ``what`` goes on; the previous
    checkpoint stays intact. ``last[0]`` is the newest checkpoint written."""
    path = Path(run_dir) / "checkpoints" / f"{step:06d}.pt"
    try:
        save_checkpoint(make(), path)
    except OSError as e:
        log.error("%s; %s goes on and will try again at the next checkpoint", e, what)
        return
    last[0] = path
    for _, old in list_checkpoints(run_dir)[:-keep]:
        with contextlib.suppress(OSError):
            old.unlink()
    log.info("checkpoint %s", path)


def run_steps(step: Callable[[], tuple[int, dict]], start: int, sched: Schedule, *,
              metrics: Metrics, save: Callable[[int], None], samples: Callable[[int], None],
              last: list, log: logging.Logger,
              on_step: Callable[[int, dict], None] | None = None,
              latest: tuple[str, ...] = ("lr",)) -> RunResult:
    """Call ``step()`` (one training step: the new step count and its scalars) until
    ``sched.iters``. Each scalar is logged as its mean over the window, except those in
    ``latest`` (the learning rate: its value now), which stay out of the log line. ``save(n)``
    and ``samples(n)`` write the checkpoint and grid of step n; ``last[0]`` is the newest
    checkpoint (as :func:`save_rotating` keeps it)."""
    n = start
    result = RunResult(n, "done", None, 0)
    window_t, window_n = time.perf_counter(), 0
    sums: dict[str, float] = {}
    with StopFlag() as stop:
        try:
            while n < sched.iters:
                n, logs = step()
                window_n += 1
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
                if on_step is not None:
                    on_step(n, logs)
                if n % sched.log_every == 0 or n == sched.iters:
                    now = time.perf_counter()
                    means = {k: v / window_n for k, v in sums.items() if k not in latest}
                    means.update({k: logs[k] for k in latest if k in logs})
                    means["it_per_s"] = window_n / max(now - window_t, 1e-9)
                    window_t, window_n, sums = now, 0, {}
                    metrics.write(n, means)
                    log.info("step %d/%d  %s", n, sched.iters, "  ".join(
                        f"{k} {v:.4g}" for k, v in means.items() if k not in latest))
                if n % sched.sample_every == 0 or (sched.sample_at_end and n == sched.iters):
                    samples(n)
                if n % sched.checkpoint_every == 0 or n == sched.iters:
                    save(n)
                if stop.flag and n < sched.iters:
                    if n % sched.checkpoint_every != 0:
                        save(n)
                    result = RunResult(n, "interrupted", last[0], 130)
                    break
        except NaNLossError as e:
            log.error("%s: %s", e, last[0] or "no checkpoint was written yet")
            result = RunResult(e.step, "nan", last[0], 3)
        finally:
            metrics.close()
    if result.reason == "done":
        result = RunResult(n, "done", last[0], 0)
    return result
