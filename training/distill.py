"""Distil a GNR generator into a small student that runs live on a CPU (:mod:`training.student`).

    python -m training.distill --teacher CKPT --style 7 --data-a faces/ --run-dir runs/student
    python -m training.distill --teacher CKPT --dynamic-style --data-a faces/ --run-dir runs/dyn
    python -m training.distill --resume runs/student                # continue where it stopped
    python -m training.distill --ship runs/dyn/checkpoints/020000.pt student.pt   # weights only

The teacher (``G_A2B_ema`` of any GNR checkpoint: the authors' release or ours) runs in the loop:
each step, a batch of face crops (``--data-a``, made by ``python -m training.prepare`` so they
frame faces as the live aligner does) is augmented as in GNR training, the teacher renders it
with the locked style (``--style``/``--style-image``/``--style-vector``) or, for a
style-conditioned student (``--dynamic-style``), with a fresh random style per image
(``torch.randn``, the authors' sampling), and the student learns to reproduce that with
L1 + (1 - SSIM) + LPIPS (:mod:`training.distill_config`). No adversarial term: the targets are
the teacher's exact outputs, so pixel and structure losses suffice.

The run directory follows GNR training's conventions (:mod:`training.loop`, whose pieces are
reused): ``config.json``, ``train.log``, ``metrics.jsonl``, TensorBoard scalars,
``samples/NNNNNN.png`` (rows: fixed faces; columns: face, then teacher | student per style),
``checkpoints/NNNNNN.pt`` written atomically (the last ``--keep`` kept). ``--resume`` restores
the student, optimizer, RNG and data order. Ctrl-C or SIGTERM saves a checkpoint and exits 130;
a NaN loss stops the run (exit 3); bad input prints one line and exits 2.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from .checkpoint import CheckpointError, checkpoint_config, load_state_strict, read_checkpoint, save_checkpoint
from .config import ModelConfig
from .data import DataError
from .distill_config import DistillConfig
from .loop import (Metrics, NaNLossError, ResumeError, RunResult, latest_checkpoint,
                   latest_path, list_checkpoints, rng_state, save_png, set_rng_state,
                   setup_logging)
from .lpips import LPIPSWeightsError
from .messages import one_line
from .networks import Generator
from .steps import Schedule, run_steps, save_rotating
from .student import STUDENT_KIND, Student, StudentConfig, is_student_checkpoint, student_flops
from .style import StyleCode, StyleError
from .train_config import DataSource, apply_changes, flag_for

log = logging.getLogger("training.distill")
LOSS_NAMES = ("l1", "ssim", "lpips", "total")
SSIM_WINDOW = 7


# ---------------------------------------------------------------------------------------------
# The teacher
# ---------------------------------------------------------------------------------------------
@dataclass
class Teacher:
    G: Generator                       # the face -> anime generator distilled
    config: ModelConfig
    info: dict                         # name, sha256, which, config: stored in student checkpoints
    style_encoder: dict | None         # G_B2A_ema's state dict (for --style-image), if present

    def style_generator(self) -> Generator:
        """G_B2A_ema, whose style encoder reads anime pictures (``--style-image``)."""
        if self.style_encoder is None:
            raise StyleError(f"--style-image needs the teacher's anime->face generator G_B2A_ema, "
                             f"and {self.info['name']} has none")
        G = Generator.from_config(self.config)
        load_state_strict(G, self.style_encoder, "G_B2A_ema", self.config, self.info["name"])
        return G.eval().requires_grad_(False)


def load_teacher(path: str | Path, which: str = "G_A2B_ema") -> Teacher:
    """A GNR checkpoint's generator ``which`` (read once), with what a student needs to know
    about it. A student checkpoint or a file that is not a GNR checkpoint is a CheckpointError."""
    from .fileio import sha256_file

    path = Path(path)
    ckpt = read_checkpoint(path)
    if is_student_checkpoint(ckpt):
        raise CheckpointError(f"{path} is a student checkpoint: distil from a GNR checkpoint "
                              "(the authors' release or one written by python -m training)")
    state = ckpt.get(which)
    if not (isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())):
        shown = sorted(map(str, ckpt))[:10]
        raise CheckpointError(f"{path} is not a GNR checkpoint with {which!r}: keys found {shown}")
    cfg = checkpoint_config({"config": ckpt["config"]} if "config" in ckpt else {which: state}, path)
    G = Generator.from_config(cfg)
    load_state_strict(G, state, which, cfg, path)
    b2a = ckpt.get("G_B2A_ema")
    info = {"name": path.name, "sha256": sha256_file(path), "which": which, "config": cfg.to_dict()}
    return Teacher(G.eval().requires_grad_(False), cfg, info, b2a if isinstance(b2a, dict) else None)


# ---------------------------------------------------------------------------------------------
# The distiller: student, optimizer and one step (no files)
# ---------------------------------------------------------------------------------------------
def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of images in [-1, 1] (7x7 Gaussian window, kornia)."""
    import kornia
    return kornia.metrics.ssim(a, b, SSIM_WINDOW, max_val=2.0).mean()


class Distiller:
    def __init__(self, cfg: DistillConfig, teacher: Teacher, device: torch.device,
                 lpips: nn.Module | None = None):
        from .augment import AuthorsAugment

        self.cfg, self.device = cfg, device
        torch.manual_seed(cfg.seed)
        self.student = Student(cfg.student).to(device).train()
        self.teacher = teacher.G.to(device).eval().requires_grad_(False)
        self.aug = AuthorsAugment(cfg.student.size, cfg.aug_degrees, cfg.aug_scale,
                                  cfg.aug_translate, cfg.aug_shear, cfg.aug_resize_extra,
                                  cfg.aug_hflip).to(device)
        if cfg.uses_lpips and lpips is None:
            raise ValueError("LPIPS is on but no LPIPS module was given")
        self.lpips = lpips.to(device) if (lpips is not None and cfg.uses_lpips) else None
        self.opt = torch.optim.Adam(self.student.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.style = None if cfg.style is None else StyleCode.from_dict(cfg.style).tensor(device)
        self.step_count = 0

    @torch.no_grad()
    def targets(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The teacher's output for crops ``x`` with styles ``z`` (N or 1 x latent), clamped to
        [-1, 1] as the apps show it."""
        return self.teacher.decode(self.teacher.encode(x).content, z).clamp(-1, 1)

    def student_output(self, x: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        return self.student(x, z if self.cfg.student.dynamic_style else None)

    def step(self, batch: torch.Tensor) -> dict[str, float]:
        cfg, i = self.cfg, self.step_count
        x = self.aug(batch.to(self.device, non_blocking=True))
        if cfg.student.dynamic_style:
            z = torch.randn(x.shape[0], cfg.student.latent_dim, device=self.device)
        else:
            z = self.style
        target = self.targets(x, z)
        lr = cfg.lr_at(i)
        for g in self.opt.param_groups:
            g["lr"] = lr
        y = self.student_output(x, z)
        l1 = (y - target).abs().mean()
        s = 1 - ssim(y, target) if cfg.ssim > 0 else torch.zeros((), device=self.device)
        lp = self.lpips(y, target).mean() if self.lpips is not None else torch.zeros((), device=self.device)
        total = cfg.l1 * l1 + cfg.ssim * s + (cfg.lpips_weight * lp if self.lpips is not None else 0)
        logs = {k: float(v.detach()) for k, v in zip(LOSS_NAMES, (l1, s, lp, total))
                if k != "lpips" or self.lpips is not None}
        for k, v in logs.items():
            if not math.isfinite(v):
                raise NaNLossError(i, k, v)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        self.step_count += 1
        logs["lr"] = lr
        return logs

    # -- checkpoints ---------------------------------------------------------------------------
    def checkpoint(self, teacher: Teacher) -> dict:
        cfg = self.cfg
        out = {"kind": STUDENT_KIND,
               "student": {k: v.detach().cpu().clone() for k, v in self.student.state_dict().items()},
               "student_config": cfg.student.to_dict(), "style": cfg.style,
               "teacher": teacher.info, "config": teacher.config.to_dict(),
               "iter": self.step_count,
               "train": {"config": cfg.to_dict(), "optim": self.opt.state_dict(),
                         "rng": rng_state(self.device)}}
        if cfg.student.dynamic_style and cfg.style_encoder and teacher.style_encoder is not None:
            out["G_B2A_ema"] = {k: v.detach().cpu().half() if v.is_floating_point() else v.cpu()
                                for k, v in teacher.style_encoder.items()}
        return out

    def load_state(self, ckpt: dict, path) -> dict | None:
        """Restore weights, optimizer and step from a checkpoint of this run; returns its RNG
        state (or None)."""
        from .student import student_from_checkpoint
        net = student_from_checkpoint(ckpt, path)
        if net.config != self.cfg.student:
            raise ResumeError(f"{path}: the student in this checkpoint ({net.config.describe()}) "
                              f"is not this run's ({self.cfg.student.describe()})")
        self.student.load_state_dict(net.state_dict())
        train = ckpt.get("train") or {}
        try:
            self.opt.load_state_dict(train["optim"])
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{path}: no optimizer state for this run to resume ({e}); "
                                  "it was shipped without its training state") from None
        self.step_count = int(ckpt["iter"])
        return train.get("rng")


# ---------------------------------------------------------------------------------------------
# Samples
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def sample_grid(d: Distiller, faces: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """Rows: fixed faces; columns: the face, then teacher | student for each style (the locked
    style once for a locked student). 3 x H x W in [0, 1]."""
    x = faces.to(d.device)
    zs = styles.to(d.device) if d.cfg.student.dynamic_style else d.style
    cols = [x]
    for z in zs:
        z = z[None]
        cols += [d.targets(x, z), d.student_output(x, z.expand(len(x), -1))]
    rows = torch.cat(cols, dim=3)
    return ((torch.cat(list(rows), dim=1).clamp(-1, 1) + 1) / 2).cpu()


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
def run_distill(cfg: DistillConfig, run_dir: Path, teacher: Teacher, device: torch.device,
                lpips: nn.Module | None = None, resume_ckpt: Path | None = None,
                mix=None, on_step: Callable[[int, dict], None] | None = None) -> RunResult:
    """Distil until ``cfg.iters`` steps are done (or NaN / Ctrl-C). ``run_dir`` exists with its
    config.json written; ``mix``: the face folders, already scanned (else scanned here);
    ``on_step(step, losses)`` is called after every step."""
    from .data import MixedFolders, fixed_images, make_loader

    run_dir = Path(run_dir)
    d = Distiller(cfg, teacher, device, lpips)
    rng = None
    if resume_ckpt is not None:
        ckpt = read_checkpoint(resume_ckpt)
        stored = (ckpt.get("teacher") or {}).get("sha256")
        if stored is not None and stored != teacher.info["sha256"]:
            raise ResumeError(f"{resume_ckpt} was distilled from a teacher with sha256 "
                              f"{stored[:12]}..., and --teacher {cfg.teacher} is another file "
                              f"({teacher.info['sha256'][:12]}...)")
        rng = d.load_state(ckpt, resume_ckpt)
        log.info("resumed from %s at step %d", resume_ckpt, d.step_count)
        del ckpt
    mix = mix or MixedFolders(cfg.data_a, cfg.student.size, what="--data-a")
    log.info("faces: %s", mix.describe())
    start = d.step_count
    it = make_loader(mix, cfg.batch, cfg.seed * 2 + 1, 0, 1, start, cfg.workers)
    if rng is not None:
        set_rng_state(rng, device)
    else:
        torch.manual_seed(cfg.seed * 1000 + 7919 + start)
    (run_dir / "samples").mkdir(exist_ok=True)
    faces = fixed_images(mix, cfg.n_sample_faces)
    styles = torch.randn(cfg.n_sample_styles, cfg.student.latent_dim,
                         generator=torch.Generator().manual_seed(cfg.seed + 12345))
    last = [latest_path(run_dir)]

    def save(step: int) -> None:
        save_rotating(run_dir, step, lambda: d.checkpoint(teacher), cfg.keep_checkpoints, last,
                      log, "distillation")

    def samples(step: int) -> None:
        save_png(sample_grid(d, faces, styles), run_dir / "samples" / f"{step:06d}.png")

    def one_step() -> tuple[int, dict]:
        logs = d.step(next(it))
        return d.step_count, logs

    if d.step_count == 0:
        samples(0)
    sched = Schedule(cfg.iters, cfg.log_every, cfg.sample_every, cfg.checkpoint_every)
    return run_steps(one_step, d.step_count, sched, metrics=Metrics(run_dir, True), save=save,
                     samples=samples, last=last, log=log, on_step=on_step)


# ---------------------------------------------------------------------------------------------
# Shipping: a student without its training state, float16 weights
# ---------------------------------------------------------------------------------------------
def ship_student(run_checkpoint: str | Path, out: str | Path, note: str = "") -> Path:
    """The student of a run checkpoint without its optimizer and RNG state, weights stored as
    float16 (they load into the float32 student as usual): what an app or the exporter needs."""
    ck = read_checkpoint(run_checkpoint)
    if not is_student_checkpoint(ck):
        raise CheckpointError(f"{run_checkpoint} is not a student checkpoint")

    def half(state):
        return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}

    keep = {k: v for k, v in ck.items() if k != "train"}
    keep["student"] = half(ck["student"])
    if "G_B2A_ema" in keep:
        keep["G_B2A_ema"] = half(keep["G_B2A_ema"])
    keep["shipped"] = {"from": Path(run_checkpoint).name, "stored_dtype": "float16",
                       "distill_config": (ck.get("train") or {}).get("config"), "note": note}
    return save_checkpoint(keep, out)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
# flag -> DistillConfig field (student fields as "student.NAME")
FLAG_FIELDS = {
    "iters": "iters", "batch": "batch", "seed": "seed", "lr": "lr", "lr_final": "lr_final",
    "l1": "l1", "ssim": "ssim", "lpips_weight": "lpips_weight", "lpips_weights": "lpips_weights",
    "lpips_lin": "lpips_lin", "log_every": "log_every", "sample_every": "sample_every",
    "checkpoint_every": "checkpoint_every", "keep": "keep_checkpoints", "workers": "workers",
    "mid_blocks": "student.mid_blocks", "level_blocks": "student.level_blocks",
    "style_hidden": "student.style_hidden", "widths": "student.widths",
}


def _widths(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.distill",
                                description="Distil a GNR generator into a small student that "
                                            "runs live on a CPU.",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Exit codes: 0 finished, 130 interrupted (checkpoint saved), "
                                       "3 a loss became NaN, 2 bad input.")
    g = p.add_argument_group("teacher, style, data and run")
    g.add_argument("--teacher", type=Path, metavar="CKPT", help="the GNR checkpoint to distil")
    g.add_argument("--which", default=None, help="its generator (default G_A2B_ema)")
    s = g.add_mutually_exclusive_group()
    s.add_argument("--style", type=int, metavar="SEED", help="lock this style (a seed, as the apps)")
    s.add_argument("--style-image", type=Path, metavar="IMG",
                   help="lock the style of an anime face (read by the teacher's G_B2A_ema)")
    s.add_argument("--style-vector", type=Path, metavar="F", help="lock 8 floats saved with numpy.save")
    s.add_argument("--dynamic-style", action="store_true",
                   help="a style-conditioned student (FiLM): every style, changeable live")
    g.add_argument("--data-a", nargs="+", metavar="DIR[:WEIGHT]",
                   help="aligned face crops (python -m training.prepare), folders mixed by weight")
    g.add_argument("--run-dir", type=Path, help="new run directory (default runs/student-YYYYmmdd-HHMMSS)")
    g.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue a run (its latest checkpoint, or a checkpoint file of it)")
    g.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda[:N]")
    g.add_argument("--threads", type=int, default=None,
                   help="PyTorch CPU threads (default: PyTorch's; 1 is faster on a busy machine)")
    g.add_argument("--ship", nargs=2, type=Path, metavar=("CKPT", "OUT"),
                   help="instead: write CKPT's student without training state, float16, to OUT")
    g = p.add_argument_group("student (defaults: the CPU design, 3.9 GFLOP at 256x256)")
    g.add_argument("--widths", type=_widths, help="widths per level, e.g. 24,48,96,192")
    g.add_argument("--mid-blocks", type=int, help="residual blocks at the lowest resolution (4)")
    g.add_argument("--level-blocks", type=int, help="residual blocks per level (1)")
    g.add_argument("--style-hidden", type=int, help="width of the style MLP (128, --dynamic-style)")
    g.add_argument("--no-style-encoder", action="store_true",
                   help="do not keep the teacher's G_B2A_ema (smaller file; no --style-image)")
    g = p.add_argument_group("schedule and losses")
    g.add_argument("--iters", type=int, help="total steps (20000)")
    g.add_argument("--batch", type=int, help="crops per step (8)")
    g.add_argument("--seed", type=int, help="random seed (0)")
    g.add_argument("--lr", type=float, help="Adam learning rate (2e-3), cosine-decayed")
    g.add_argument("--lr-final", type=float, help="final learning rate as a fraction of --lr (0.02)")
    g.add_argument("--l1", type=float, help="L1 weight (1)")
    g.add_argument("--ssim", type=float, help="(1 - SSIM) weight (1)")
    g.add_argument("--lpips-weight", type=float, help="LPIPS weight (1)")
    g.add_argument("--no-lpips", action="store_true", help="without the LPIPS term (recorded in the config)")
    g.add_argument("--lpips-weights", help="VGG16 weights, torchvision layout (vgg16-397923af.pth)")
    g.add_argument("--lpips-lin", help="LPIPS v0.1 linear weights (default: from an installed lpips package)")
    g = p.add_argument_group("bookkeeping")
    g.add_argument("--log-every", type=int, help="log scalars every N steps (10)")
    g.add_argument("--sample-every", type=int, help="write teacher|student samples every N steps (500)")
    g.add_argument("--checkpoint-every", type=int, help="write a checkpoint every N steps (1000)")
    g.add_argument("--keep", type=int, help="checkpoints kept (3)")
    g.add_argument("--workers", type=int, help="data loader processes (1)")
    return p


def _explicit(args) -> dict[str, object]:
    out = {f: getattr(args, a) for a, f in FLAG_FIELDS.items() if getattr(args, a) is not None}
    if args.no_lpips:
        out["lpips"] = False
    if args.no_style_encoder:
        out["style_encoder"] = False
    if args.data_a:
        out["data_a"] = tuple(DataSource.parse(s) for s in args.data_a)
    if args.teacher is not None:
        out["teacher"] = str(args.teacher)
    if args.which is not None:
        out["teacher_which"] = args.which
    return out


def _apply(cfg: DistillConfig, changes: dict[str, object]) -> DistillConfig:
    return apply_changes(cfg, changes, "student", StudentConfig)


def _flag(fieldname: str) -> str:
    return flag_for(fieldname, FLAG_FIELDS, {
        "lpips": "--no-lpips", "style_encoder": "--no-style-encoder", "teacher_which": "--which",
        "style": "--style/--style-image/--style-vector", "student.dynamic_style": "--dynamic-style"})


def _style(args, teacher: Teacher) -> StyleCode | None:
    dim = teacher.config.latent_dim
    if args.style is not None:
        return StyleCode.from_seed(args.style, dim)
    if args.style_vector is not None:
        return StyleCode.from_file(args.style_vector, dim)
    if args.style_image is not None:
        return StyleCode.from_image(args.style_image, teacher.style_generator())
    return None


def resolve(args, parser) -> tuple[DistillConfig, Path, Path | None, Teacher]:
    """(config, run directory, checkpoint to resume, teacher)."""
    explicit = _explicit(args)
    if args.resume is not None:
        if any(v is not None and v is not False for v in (args.style, args.style_image,
                                                          args.style_vector, args.dynamic_style)):
            parser.error("--resume continues a run with its own style: drop the style options")
        target = args.resume
        run_dir, ckpt = (target.parent.parent, target) if target.is_file() else (target, None)
        cfg_path = run_dir / "config.json"
        if not cfg_path.is_file():
            raise ResumeError(f"--resume {target}: no run config at {cfg_path} (is this a run "
                              "directory written by python -m training.distill?)")
        stored = DistillConfig.load_json(cfg_path)
        cfg = _apply(stored, explicit)
        bad = {k: v for k, v in stored.differences(cfg).items()
               if k.split(".")[0] not in DistillConfig.RESUMABLE_CHANGES}
        if bad:
            raise ResumeError("cannot resume with a different setup: " + "; ".join(
                f"{_flag(k)} is {b!r} here but {a!r} in {cfg_path}" for k, (a, b) in bad.items()))
        teacher = _teacher(Path(cfg.teacher), cfg.teacher_which)
        return cfg, run_dir, ckpt or latest_checkpoint(run_dir), teacher
    if args.teacher is None:
        parser.error("--teacher CKPT is required for a new run (or --resume RUN_DIR)")
    if not args.data_a:
        parser.error("--data-a is required for a new run (aligned face crops)")
    if args.style is None and args.style_image is None and args.style_vector is None \
            and not args.dynamic_style:
        parser.error("give the style to lock (--style SEED, --style-image IMG, --style-vector F) "
                     "or --dynamic-style")
    teacher = _teacher(args.teacher, args.which or "G_A2B_ema")
    style = _style(args, teacher)
    mc = teacher.config
    base = DistillConfig(student=StudentConfig(size=mc.size, latent_dim=mc.latent_dim,
                                               dynamic_style=args.dynamic_style),
                         style=None if style is None else style.to_dict())
    cfg = _apply(base, explicit)
    run_dir = args.run_dir or Path("runs") / time.strftime("student-%Y%m%d-%H%M%S")
    if list_checkpoints(run_dir):
        raise ResumeError(f"{run_dir} already holds checkpoints: continue it with --resume "
                          f"{run_dir}, or choose another --run-dir")
    return cfg, run_dir, None, teacher


def _teacher(path: Path, which: str) -> Teacher:
    try:
        return load_teacher(path, which)
    except (FileNotFoundError, CheckpointError) as e:
        raise CheckpointError(f"--teacher: {one_line(e)}") from None


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(True)
    try:
        if args.ship is not None:
            path = ship_student(*args.ship)
            print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")
            return 0
        from .device import resolve_device
        device = resolve_device(args.device)
        if args.threads is not None:
            if args.threads < 1:
                raise ValueError(f"--threads must be >= 1, got {args.threads}")
            torch.set_num_threads(args.threads)
        cfg, run_dir, resume_ckpt, teacher = resolve(args, parser)
        from .data import MixedFolders
        try:                                  # fail before anything starts
            mix = MixedFolders(cfg.data_a, cfg.student.size, what="--data-a")
        except DataError as e:
            raise DataError(f"--data-a: {one_line(e)}") from None
        lpips = None
        if cfg.uses_lpips:
            from .lpips import LPIPS
            lpips = LPIPS.from_files(cfg.lpips_weights, cfg.lpips_lin)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save_json(run_dir / "config.json")
        setup_logging(True, run_dir)
        log.info("run directory %s; teacher %s (%s); student %s, %.2f GFLOP a frame; LPIPS %s; on %s",
                 run_dir, teacher.info["name"], teacher.config.describe(), cfg.student.describe(),
                 student_flops(cfg.student) / 1e9, "on" if cfg.uses_lpips else "OFF", device)
        result = run_distill(cfg, run_dir, teacher, device, lpips=lpips, resume_ckpt=resume_ckpt,
                             mix=mix)
    except (DataError, CheckpointError, ResumeError, LPIPSWeightsError, StyleError,
            FileNotFoundError, ValueError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    msg = {"done": "finished", "interrupted": f"interrupted; resume with --resume {run_dir}",
           "nan": "stopped on a NaN loss"}[result.reason]
    log.info("%s at step %d; last checkpoint: %s", msg, result.step, result.last_checkpoint)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
