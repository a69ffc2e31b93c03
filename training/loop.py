"""The GNR training loop: one step as the authors' ``train.py`` runs it, plus the run directory.

A step (``Trainer.step``), with ``ori_A``/``ori_B`` a batch of B images from each domain:

1. ``aug_A = aug(ori_A)`` (B different images: the discriminator's reals, and the source of the
   *encoded* styles) and ``A = aug(ori_A[j].expand(B))`` — B augmentations of ONE image ``j``
   (the style-consistency batch). Same for B.
2. Encode ``A`` (content + style); encode the styles of ``aug_B`` with G_B2A (the A->B input
   styles come from real anime) and of ``aug_A`` with G_A2B. Input styles: B of the 2B random and
   encoded codes, shuffled. Decode ``A``'s content with them.
3. D phase: logistic loss on D_A, D_B (reals ``aug_*``, fakes detached) and D_L (reals = random
   codes, fakes = encoded codes); every ``d_reg_every`` steps add lazy R1 on all three,
   ``r1 / 2 * R1 * d_reg_every``. Adam step.
4. G phase: non-saturating adversarial (image D x1, latent D x2), style consistency (variance of
   ``A``'s style codes x50), cycle reconstruction with *shuffled* styles (MSE x20 + LPIPS x10),
   style reconstruction (x5). Adam step; both StepLRs step; EMA copies follow (0.999).

Multi-process (``torchrun``): every rank runs the same step on its own data shard; gradients are
averaged with one ``all_reduce`` per optimizer before each Adam step. (PyTorch's DDP wrapper is not
used: GNR calls ``encode``/``decode``/``style_encode`` rather than ``forward``, several times a step,
and R1 needs double backward — both outside what DDP's hooks support.) Rank 0 logs, samples and
writes checkpoints.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from .augment import AuthorsAugment
from .checkpoint import (NETWORK_KEYS, CheckpointError, checkpoint_config,
                         load_state_strict, make_checkpoint, read_checkpoint)
from .config import ModelConfig
from .data import MixedFolders, fixed_images, make_loader
from .losses import (d_logistic_loss, d_r1_loss, ema_update, g_nonsaturating_loss, mix_styles,
                     shuffle_batch, style_consistency_loss)
from .networks import build_networks
from .train_config import TrainConfig

log = logging.getLogger("training")

CKPT_RE = re.compile(r"^(\d{6,})\.pt$")
LOSS_NAMES_D = ("D_adv", "D_r1")
LOSS_NAMES_G = ("G_adv", "G_con", "G_cycle", "lpips", "G_style", "G_total")


class NaNLossError(RuntimeError):
    """A loss became NaN or infinite; the step's update was not applied."""

    def __init__(self, step: int, name: str, value: float):
        super().__init__(f"loss {name!r} became {value} at step {step}; stopped before applying "
                         "that step's update (the last checkpoint written is the last good state)")
        self.step, self.name, self.value = step, name, value


class ResumeError(ValueError):
    """A run directory that cannot be resumed with the options given."""


# ---------------------------------------------------------------------------------------------
# Distributed helpers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def amp_problem(device_type: str, native_bf16: bool) -> str | None:
    """Why ``--amp`` (bf16 autocast) cannot run here, in one line; None where it can. bf16 is
    refused where the GPU has no native bf16 (before Ampere): emulated bf16 is slow, and the
    authors' grouped modulated convolutions already ran 4.5x slower at batch 8 under fp16
    autocast on an H100 (FACTS.md). It is not the default anywhere: measure it first."""
    if device_type != "cuda":
        return "--amp (bf16 autocast) needs a CUDA device; this run is on the CPU"
    if not native_bf16:
        return ("--amp (bf16 autocast) needs a GPU with native bf16 (Ampere, compute capability "
                "8.0, or newer); this GPU has none (torch.cuda.is_bf16_supported() is False): "
                "train without --amp")
    return None


def _native_bf16(device: torch.device) -> bool:
    if device.type != "cuda":
        return False
    with torch.cuda.device(device):
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:          # PyTorch before 2.3 has no emulation argument
            return bool(torch.cuda.is_bf16_supported())


def setup_distributed(device: str = "auto") -> DistInfo:
    """Single process, or the process group ``torchrun`` describes in the environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but PyTorch sees no CUDA device")
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1:
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local, dev)


def _all_reduce_mean(t: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        import torch.distributed as dist
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= world
    return t


def average_gradients(params: list[nn.Parameter], world: int) -> None:
    """Average the gradients of ``params`` over ranks with one flat all-reduce."""
    if world <= 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    _all_reduce_mean(flat, world)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def broadcast_parameters(modules: dict[str, nn.Module], world: int) -> None:
    if world <= 1:
        return
    import torch.distributed as dist
    for m in modules.values():
        for t in list(m.parameters()) + list(m.buffers()):
            dist.broadcast(t.data, src=0)


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------
class Trainer:
    """Networks, optimizers, schedulers and the step; no files, no data loading."""

    def __init__(self, cfg: TrainConfig, dist: DistInfo = DistInfo(), lpips: nn.Module | None = None):
        self.cfg = cfg
        self.dist = dist
        self.device = dist.device
        torch.manual_seed(cfg.seed)                 # identical initial weights on every rank
        self.nets: dict[str, nn.Module] = {k: v.to(self.device) for k, v in build_networks(cfg.model).items()}
        for k in ("G_A2B", "G_B2A", "D_A", "D_B", "D_L"):
            self.nets[k].train()
        self.aug = AuthorsAugment.from_config(cfg).to(self.device)
        if cfg.uses_lpips and lpips is None:
            raise ValueError("LPIPS is on (cycle_lpips > 0 and lpips=True) but no LPIPS module was given")
        self.lpips = lpips.to(self.device) if (lpips is not None and cfg.uses_lpips) else None
        n = self.nets
        self.g_params = list(n["G_A2B"].parameters()) + list(n["G_B2A"].parameters())
        self.d_params = list(n["D_L"].parameters()) + list(n["D_A"].parameters()) + list(n["D_B"].parameters())
        self.G_optim = torch.optim.Adam(self.g_params, lr=cfg.lr, betas=cfg.betas)
        self.D_optim = torch.optim.Adam(self.d_params, lr=cfg.lr, betas=cfg.d_betas)
        self.G_sched = torch.optim.lr_scheduler.StepLR(self.G_optim, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
        self.D_sched = torch.optim.lr_scheduler.StepLR(self.D_optim, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
        self.step_count = 0          # completed steps
        if cfg.amp:
            problem = amp_problem(self.device.type, _native_bf16(self.device))
            if problem:
                raise ValueError(problem)
        self._amp = cfg.amp

    # -- helpers ---------------------------------------------------------------------------------
    def _autocast(self):
        if self._amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _check(self, names: tuple[str, ...], values: list[torch.Tensor], step: int) -> dict[str, float]:
        vec = torch.stack([v.detach().float().reshape(()) for v in values])
        vec = _all_reduce_mean(vec, self.dist.world)
        out = {k: float(v) for k, v in zip(names, vec.tolist())}
        for k, v in out.items():
            if not math.isfinite(v):
                raise NaNLossError(step, k, v)
        return out

    def init_from(self, ckpt: dict, path) -> list[str]:
        """Load whatever networks a checkpoint holds (fine-tuning); returns the names loaded."""
        loaded = []
        for name in NETWORK_KEYS:
            if name in ckpt:
                load_state_strict(self.nets[name], ckpt[name], name, self.cfg.model, path)
                loaded.append(name)
        if "G_A2B" not in loaded and "G_A2B_ema" in loaded:       # a generator-only release
            for live in ("G_A2B", "G_B2A"):
                if f"{live}_ema" in loaded:
                    self.nets[live].load_state_dict(self.nets[f"{live}_ema"].state_dict())
                    loaded.append(live)
        for live in ("G_A2B", "G_B2A"):               # EMA starts at the live weights if absent
            if live in loaded and f"{live}_ema" not in loaded:
                self.nets[f"{live}_ema"].load_state_dict(self.nets[live].state_dict())
        if not any(k.startswith("G_") for k in loaded):
            raise CheckpointError(f"{path} holds no generator weights (keys {sorted(map(str, ckpt))[:10]})")
        return loaded

    # -- one step ----------------------------------------------------------------------------------
    def step(self, ori_A: torch.Tensor, ori_B: torch.Tensor) -> dict[str, float]:
        cfg, n = self.cfg, self.nets
        i = self.step_count
        G_A2B, G_B2A, D_A, D_B, D_L = n["G_A2B"], n["G_B2A"], n["D_A"], n["D_B"], n["D_L"]
        batch = ori_A.shape[0]
        ori_A = ori_A.to(self.device, non_blocking=True)
        ori_B = ori_B.to(self.device, non_blocking=True)
        aug_A = self.aug(ori_A)
        aug_B = self.aug(ori_B)
        A = self.aug(ori_A[[int(torch.randint(batch, ()))]].expand_as(ori_A))
        B = self.aug(ori_B[[int(torch.randint(batch, ()))]].expand_as(ori_B))
        reg = i % cfg.d_reg_every == 0 and cfg.r1 > 0
        if reg:
            aug_A.requires_grad_(True)
            aug_B.requires_grad_(True)

        with self._autocast():
            A2B_content, A2B_style = G_A2B.encode(A)
            B2A_content, B2A_style = G_B2A.encode(B)
            aug_A2B_style = G_B2A.style_encode(aug_B)      # anime styles drive A -> B
            aug_B2A_style = G_A2B.style_encode(aug_A)      # face styles drive B -> A
            rand_A2B_style = torch.randn(batch, cfg.model.latent_dim, device=self.device).requires_grad_()
            rand_B2A_style = torch.randn(batch, cfg.model.latent_dim, device=self.device).requires_grad_()
            input_A2B_style = mix_styles(rand_A2B_style, aug_A2B_style)
            input_B2A_style = mix_styles(rand_B2A_style, aug_B2A_style)
            fake_A2B = G_A2B.decode(A2B_content, input_A2B_style)
            fake_B2A = G_B2A.decode(B2A_content, input_B2A_style)

            # ---- discriminators ----
            real_A_logit = D_A(aug_A)
            real_B_logit = D_B(aug_B)
            real_L_logit1 = D_L(rand_A2B_style)
            real_L_logit2 = D_L(rand_B2A_style)
            fake_B_logit = D_B(fake_A2B.detach())
            fake_A_logit = D_A(fake_B2A.detach())
            fake_L_logit1 = D_L(aug_A2B_style.detach())
            fake_L_logit2 = D_L(aug_B2A_style.detach())
        D_adv = (d_logistic_loss(real_A_logit, fake_A_logit) + d_logistic_loss(real_B_logit, fake_B_logit)
                 + d_logistic_loss(real_L_logit1, fake_L_logit1) + d_logistic_loss(real_L_logit2, fake_L_logit2))
        D_loss = D_adv
        if reg:
            r1 = (d_r1_loss(real_A_logit, aug_A) + d_r1_loss(real_B_logit, aug_B)
                  + d_r1_loss(real_L_logit1, rand_A2B_style) + d_r1_loss(real_L_logit2, rand_B2A_style))
            D_r1 = cfg.r1 / 2 * r1 * cfg.d_reg_every
            D_loss = D_loss + D_r1
            logs = self._check(LOSS_NAMES_D + ("D_total",), [D_adv, D_r1, D_loss], i)
        else:
            logs = self._check(("D_adv", "D_total"), [D_adv, D_loss], i)
        self.D_optim.zero_grad(set_to_none=True)
        D_loss.backward()
        average_gradients(self.d_params, self.dist.world)
        self.D_optim.step()

        # ---- generators ----
        with self._autocast():
            fake_B_logit = D_B(fake_A2B)
            fake_A_logit = D_A(fake_B2A)
            fake_L_logit1 = D_L(aug_A2B_style)
            fake_L_logit2 = D_L(aug_B2A_style)
            heads = cfg.adv_image_heads
            G_adv = (cfg.adv_image * (g_nonsaturating_loss(fake_A_logit, heads)
                                      + g_nonsaturating_loss(fake_B_logit, heads))
                     + cfg.adv_latent * (g_nonsaturating_loss(fake_L_logit1, (1.0,))
                                         + g_nonsaturating_loss(fake_L_logit2, (1.0,))))
            G_con = cfg.style_consistency * (style_consistency_loss(A2B_style) + style_consistency_loss(B2A_style))
            A2B2A_content, A2B2A_style = G_B2A.encode(fake_A2B)
            B2A2B_content, B2A2B_style = G_A2B.encode(fake_B2A)
            fake_A2B2A = G_B2A.decode(A2B2A_content, shuffle_batch(A2B_style))
            fake_B2A2B = G_A2B.decode(B2A2B_content, shuffle_batch(B2A_style))
            G_cycle = cfg.cycle_mse * (F.mse_loss(fake_A2B2A.float(), A) + F.mse_loss(fake_B2A2B.float(), B))
            if self.lpips is not None:
                G_lpips = cfg.cycle_lpips * (self.lpips(fake_A2B2A.float(), A).mean()
                                             + self.lpips(fake_B2A2B.float(), B).mean())
            else:
                G_lpips = torch.zeros((), device=self.device)
            G_style = cfg.style_recon * (F.mse_loss(A2B2A_style.float(), input_A2B_style.float())
                                         + F.mse_loss(B2A2B_style.float(), input_B2A_style.float()))
        G_loss = G_adv + G_cycle + G_con + G_lpips + G_style
        logs.update(self._check(LOSS_NAMES_G, [G_adv, G_con, G_cycle, G_lpips, G_style, G_loss], i))
        self.G_optim.zero_grad(set_to_none=True)
        G_loss.backward()
        average_gradients(self.g_params, self.dist.world)
        self.G_optim.step()

        self.G_sched.step()
        self.D_sched.step()
        ema_update(n["G_A2B_ema"], G_A2B, cfg.ema_decay)
        ema_update(n["G_B2A_ema"], G_B2A, cfg.ema_decay)
        self.step_count += 1
        logs["lr"] = self.G_optim.param_groups[0]["lr"]
        return logs

    # -- state -------------------------------------------------------------------------------------
    def checkpoint(self, rng_states: list[dict]) -> dict:
        """The authors' keys (+ our ``config`` and ``train``), plain data only."""
        train = {
            "config": self.cfg.to_dict(),
            "G_sched": self.G_sched.state_dict(),
            "D_sched": self.D_sched.state_dict(),
            "rng": rng_states,
            "world": self.dist.world,
        }
        return make_checkpoint({k: self.nets[k] for k in NETWORK_KEYS}, self.cfg.model,
                               G_optim=self.G_optim.state_dict(), D_optim=self.D_optim.state_dict(),
                               iter=self.step_count, train=train)

    def load_state(self, ckpt: dict, path) -> None:
        for name in NETWORK_KEYS:
            if name not in ckpt:
                raise CheckpointError(f"{path} lacks {name!r}; cannot resume from it")
            load_state_strict(self.nets[name], ckpt[name], name, self.cfg.model, path)
        try:
            self.G_optim.load_state_dict(ckpt["G_optim"])
            self.D_optim.load_state_dict(ckpt["D_optim"])
            train = ckpt.get("train") or {}
            if "G_sched" in train:
                self.G_sched.load_state_dict(train["G_sched"])
                self.D_sched.load_state_dict(train["D_sched"])
            else:      # the authors' checkpoints: the schedule follows from the iteration
                for s in (self.G_sched, self.D_sched):
                    s.last_epoch = int(ckpt["iter"])
                    for g, base in zip(s.optimizer.param_groups, s.base_lrs):
                        g["lr"] = base * self.cfg.lr_gamma ** (int(ckpt["iter"]) // self.cfg.lr_step)
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{path}: optimizer/scheduler state does not fit this run: {e}") from None
        self.step_count = int(ckpt["iter"])


# ---------------------------------------------------------------------------------------------
# RNG state
# ---------------------------------------------------------------------------------------------
def rng_state(device: torch.device) -> dict:
    st = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    return st


def set_rng_state(st: dict, device: torch.device) -> None:
    torch.set_rng_state(st["cpu"])
    if device.type == "cuda" and st.get("cuda") is not None:
        torch.cuda.set_rng_state(st["cuda"], device)


def gather_rng(dist: DistInfo) -> list[dict]:
    st = rng_state(dist.device)
    if dist.world <= 1:
        return [st]
    import torch.distributed as tdist
    out: list[Any] = [None] * dist.world
    tdist.all_gather_object(out, st)
    return out


# ---------------------------------------------------------------------------------------------
# Run directory
# ---------------------------------------------------------------------------------------------
def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        m = CKPT_RE.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest_checkpoint(run_dir: Path) -> Path:
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        raise ResumeError(f"{run_dir} has no checkpoints (looked for {Path(run_dir) / 'checkpoints'}/NNNNNN.pt)")
    return ckpts[-1][1]


class Metrics:
    """metrics.jsonl always; TensorBoard scalars when tensorboard is installed (rank 0 only)."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.enabled = enabled
        self.tb = None
        self.file = None
        if not enabled:
            return
        self.file = open(run_dir / "metrics.jsonl", "a")
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError as e:
            log.warning("tensorboard is not importable (%s): scalars go to metrics.jsonl only "
                        "(pip install tensorboard)", e)

    def write(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps({"step": step, **values}) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in values.items():
                group = "loss" if k[:2] in ("D_", "G_") or k == "lpips" else "train"
                self.tb.add_scalar(f"{group}/{k}", v, step)

    def close(self):
        if self.file:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


def write_training_curve(run_dir: Path) -> Path | None:
    """losses over steps (from metrics.jsonl) as RUN_DIR/training_curve.png."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = {r["step"]: r for r in rows}                       # a resumed run rewrites steps
    rows = [rows[k] for k in sorted(rows)]
    if not rows:
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no training_curve.png")
        return None
    keys = ["D_adv", "D_r1", "G_adv", "G_con", "G_cycle", "lpips", "G_style"]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, k in zip(axes.flat, keys + ["it_per_s"]):
        pts = [(r["step"], r[k]) for r in rows if k in r]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, lw=0.6, alpha=0.5)
            w = max(1, len(ys) // 50)
            if w > 1:
                sm = [sum(ys[max(0, j - w + 1):j + 1]) / len(ys[max(0, j - w + 1):j + 1]) for j in range(len(ys))]
                ax.plot(xs, sm, lw=1.5)
        off = k == "lpips" and pts and not any(y for _, y in pts)
        ax.set_title(f"{k} (off)" if off else k)
        ax.set_xlabel("step")
    fig.suptitle(f"GNR training: {Path(run_dir).name}")
    fig.tight_layout()
    out = Path(run_dir) / "training_curve.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


@torch.no_grad()
def sample_grid(G_A2B: nn.Module, G_B2A: nn.Module, faces_A: torch.Tensor, faces_B: torch.Tensor,
                styles: torch.Tensor) -> torch.Tensor:
    """Rows: fixed faces. Left block: face, then face->anime with each fixed style; right block:
    anime, then anime->face with each fixed style. 3 x H x W in [0, 1]."""
    dev = next(G_A2B.parameters()).device

    def block(G, x):
        x = x.to(dev)
        content = G.encode(x).content
        cols = [x] + [G.decode(content, s[None].to(dev)) for s in styles]
        return torch.cat(cols, dim=3)            # N x 3 x S x (k+1)S

    a = block(G_A2B, faces_A)
    b = block(G_B2A, faces_B)
    n = min(a.shape[0], b.shape[0])
    gap = torch.ones(n, 3, a.shape[2], max(2, a.shape[2] // 16), device=dev)
    rows = torch.cat([a[:n], gap, b[:n]], dim=3)
    grid = torch.cat(list(rows), dim=1)          # 3 x nS x W
    return ((grid.clamp(-1, 1) + 1) / 2).cpu()


def save_png(img: torch.Tensor, path: Path) -> None:
    from PIL import Image
    arr = (img.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype("uint8")
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(arr).save(tmp)
    os.replace(tmp, path)


class StopFlag:
    """SIGINT/SIGTERM set a flag checked between steps (a step is never cut in half); a second
    Ctrl-C interrupts at once."""

    def __init__(self):
        self.flag = False
        self._old: dict[int, Any] = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:       # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.flag and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.flag = True
        log.warning("%s received: finishing this step, saving a checkpoint, then exiting "
                    "(Ctrl-C again to quit without saving)", signal.Signals(signum).name)

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclass
class RunResult:
    step: int
    reason: str                  # "done" | "interrupted" | "nan"
    last_checkpoint: Path | None
    exit_code: int


def run_training(cfg: TrainConfig, run_dir: Path, dist: DistInfo, lpips: nn.Module | None = None,
                 init: Path | None = None, resume_ckpt: Path | None = None,
                 on_step: Callable[[int, dict], None] | None = None) -> RunResult:
    """Train until ``cfg.iters`` steps are done (or NaN / Ctrl-C). ``run_dir`` must exist with
    config.json written (by ``__main__``) on rank 0."""
    run_dir = Path(run_dir)
    trainer = Trainer(cfg, dist, lpips)
    rng_to_restore = None
    if resume_ckpt is not None:
        try:
            ckpt = read_checkpoint(resume_ckpt)
        except CheckpointError as e:
            others = [p for _, p in list_checkpoints(run_dir) if p != Path(resume_ckpt)]
            hint = (f"; an earlier checkpoint of this run can be resumed with --resume {others[-1]}"
                    if others else "")
            raise CheckpointError(f"{e}{hint}") from None
        stored = ckpt.get("train", {}).get("config") if isinstance(ckpt.get("train"), dict) else None
        if stored is not None:
            diff = {k: v for k, v in TrainConfig.from_dict(stored).differences(cfg).items()
                    if k.split(".")[0] not in TrainConfig.RESUMABLE_CHANGES}
            if diff:
                raise ResumeError(f"{resume_ckpt} was written by a run with a different config: "
                                  + "; ".join(f"{k}: checkpoint {a!r} vs run {b!r}" for k, (a, b) in diff.items()))
        trainer.load_state(ckpt, resume_ckpt)
        rngs = (ckpt.get("train") or {}).get("rng") or []
        if len(rngs) == dist.world:
            rng_to_restore = rngs[dist.rank]
        else:
            log.warning("checkpoint holds RNG states for %d process(es), this run has %d: random "
                        "draws after resuming will differ from an uninterrupted run", len(rngs), dist.world)
        log.info("resumed from %s at step %d", resume_ckpt, trainer.step_count)
        del ckpt
    elif init is not None:
        ckpt = read_checkpoint(init)
        loaded = trainer.init_from(ckpt, init)
        log.info("initialised %s from %s", ", ".join(loaded), init)
        del ckpt
    broadcast_parameters(trainer.nets, dist.world)

    mix_a = MixedFolders(cfg.data_a, cfg.model.size, what="--data-a")
    mix_b = MixedFolders(cfg.data_b, cfg.model.size, what="--data-b")
    if dist.main:
        log.info("domain A: %s", mix_a.describe())
        log.info("domain B: %s", mix_b.describe())
    start = trainer.step_count
    it_a = make_loader(mix_a, cfg.batch, cfg.seed * 2 + 1, dist.rank, dist.world, start, cfg.workers)
    it_b = make_loader(mix_b, cfg.batch, cfg.seed * 2 + 2, dist.rank, dist.world, start, cfg.workers)
    # The step's random draws (augmentation, styles, shuffles): a stream per rank, saved with
    # every checkpoint and restored on resume.
    if rng_to_restore is not None:
        set_rng_state(rng_to_restore, dist.device)
    else:
        torch.manual_seed(cfg.seed * 1000 + 7919 * (dist.rank + 1) + start)

    faces_a = faces_b = styles = None
    metrics = Metrics(run_dir, dist.main)
    if dist.main:
        (run_dir / "samples").mkdir(exist_ok=True)
        faces_a = fixed_images(mix_a, cfg.n_sample_faces)
        faces_b = fixed_images(mix_b, cfg.n_sample_faces)
        styles = torch.randn(cfg.n_sample_styles, cfg.model.latent_dim,
                             generator=torch.Generator().manual_seed(cfg.seed + 12345))

    last_ckpt: list[Path | None] = [latest_path(run_dir) if dist.main else None]

    def save(step: int) -> None:
        rngs = gather_rng(dist)
        if not dist.main:
            return
        from .steps import save_rotating      # (steps imports this module)
        save_rotating(run_dir, step, lambda: trainer.checkpoint(rngs), cfg.keep_checkpoints,
                      last_ckpt, log)

    def samples(step: int) -> None:
        if not dist.main:
            return
        n = trainer.nets
        save_png(sample_grid(n["G_A2B_ema"], n["G_B2A_ema"], faces_a, faces_b, styles),
                 run_dir / "samples" / f"{step:06d}.png")
        was = n["G_A2B"].training, n["G_B2A"].training
        n["G_A2B"].eval(), n["G_B2A"].eval()
        try:       # the live (non-EMA) generators too, as the authors' "normal" grid
            save_png(sample_grid(n["G_A2B"], n["G_B2A"], faces_a, faces_b, styles),
                     run_dir / "samples" / f"{step:06d}_live.png")
        finally:
            n["G_A2B"].train(was[0]), n["G_B2A"].train(was[1])

    result = RunResult(trainer.step_count, "done", None, 0)
    window_t, window_n = time.perf_counter(), 0
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    curve_t = time.perf_counter()
    step = trainer.step_count
    if dist.main and step == 0:
        samples(0)
    with StopFlag() as stop:
        try:
            while step < cfg.iters:
                ori_a, ori_b = next(it_a), next(it_b)
                logs = trainer.step(ori_a, ori_b)
                step = trainer.step_count
                window_n += 1
                for k, v in logs.items():          # each scalar: its mean over the log window
                    sums[k] = sums.get(k, 0.0) + v
                    counts[k] = counts.get(k, 0) + 1
                if on_step is not None:
                    on_step(step, logs)
                if step % cfg.log_every == 0 or step == cfg.iters:
                    now = time.perf_counter()
                    means = {k: sums[k] / counts[k] for k in sums}
                    means["lr"] = logs["lr"]
                    means["it_per_s"] = window_n / max(now - window_t, 1e-9)
                    window_t, window_n, sums, counts = now, 0, {}, {}
                    metrics.write(step, means)
                    if dist.main:
                        log.info("step %d/%d  %s", step, cfg.iters, "  ".join(
                            f"{k} {v:.4g}" for k, v in means.items() if k != "lr"))
                if step % cfg.sample_every == 0:
                    samples(step)
                if step % cfg.checkpoint_every == 0 or step == cfg.iters:
                    save(step)
                    if dist.main and time.perf_counter() - curve_t > 600:   # plotting takes ~1 s
                        write_training_curve(run_dir)
                        curve_t = time.perf_counter()
                stop_now = torch.tensor([1.0 if stop.flag else 0.0])
                if dist.world > 1:
                    import torch.distributed as tdist
                    stop_now = stop_now.to(dist.device)
                    tdist.all_reduce(stop_now, op=tdist.ReduceOp.MAX)
                if float(stop_now) > 0 and step < cfg.iters:
                    if step % cfg.checkpoint_every != 0:
                        save(step)
                    result = RunResult(step, "interrupted", last_ckpt[0], 130)
                    break
        except NaNLossError as e:
            if dist.main:
                log.error("%s: %s", e, last_ckpt[0] or "no checkpoint was written yet")
            result = RunResult(e.step, "nan", last_ckpt[0], 3)
        finally:
            metrics.close()
    if result.reason == "done":
        result = RunResult(step, "done", last_ckpt[0], 0)
        check_ranks_in_sync(trainer, dist)
    if dist.main:
        write_training_curve(run_dir)
    return result


def latest_path(run_dir: Path) -> Path | None:
    ck = list_checkpoints(run_dir)
    return ck[-1][1] if ck else None


def check_ranks_in_sync(trainer: Trainer, dist: DistInfo) -> None:
    """All ranks must hold the same weights (same init, averaged gradients)."""
    if dist.world <= 1:
        return
    import torch.distributed as tdist
    s = torch.stack([sum(p.detach().double().sum() for p in m.parameters())
                     for m in trainer.nets.values()]).to(dist.device)
    all_s = [torch.zeros_like(s) for _ in range(dist.world)]
    tdist.all_gather(all_s, s)
    if dist.main:
        spread = max(float((a - all_s[0]).abs().max()) for a in all_s)
        if spread > 1e-6 * max(1.0, float(all_s[0].abs().max())):
            raise RuntimeError(f"ranks diverged: parameter checksums differ by {spread}")
        log.info("all %d ranks hold identical weights", dist.world)


def config_for_init(init: Path) -> ModelConfig:
    return checkpoint_config(read_checkpoint(init), init)


def setup_logging(main: bool, run_dir: Path | None = None) -> None:
    level = logging.INFO if main else logging.WARNING
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if run_dir is not None and main:
        handlers.append(logging.FileHandler(Path(run_dir) / "train.log"))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers,
                        force=True)
