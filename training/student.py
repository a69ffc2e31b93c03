"""A small student network that reproduces one GNR generator's face -> anime map, fast enough for
a laptop CPU, and its checkpoint format.

With one style, GNR is a fixed image-to-image map; :mod:`training.distill` teaches this network
to reproduce it. The design was chosen by measurement on a 2-core CPU (onnxruntime int8,
256x256, batch 1, one run): plain 3x3 convolutions beat depthwise-separable and inverted-residual
blocks of fewer FLOPs (plain 1.8 GFLOP 15 ms, 3.9 GFLOP 21 ms; depthwise-separable 1.4 GFLOP 22
ms; inverted residual 1.3 GFLOP 17 ms), so the student is a U-Net of plain convolutions:

    input S x S x 3 -> pixel-unshuffle (S/2 x S/2 x 12, lossless) -> 3x3 conv -> widths[0]
    encoder: per level, ``level_blocks`` residual blocks, then a 3x3 stride-2 conv to the next
             width (S/2 ... S/2^L, L = len(widths))
    middle:  ``mid_blocks`` residual blocks at S/2^L (most of the translation happens here)
    decoder: per level, a 1x1 conv to 4x the next width + pixel-shuffle (sub-pixel upsampling),
             plus the encoder's skip at that level, then ``level_blocks`` residual blocks
    output:  3x3 conv to 12 channels + pixel-shuffle -> S x S x 3 (linear, like the teacher's
             ToRGB sum)

A residual block is ``act(x + conv2(act(film(conv1(x)))))`` with leaky ReLU 0.2.

``dynamic_style=True`` conditions the student on the 8-d style code, as the teacher is: a small
MLP maps the style to per-channel FiLM scales and shifts (``y * (1 + gamma) + beta``, Perez et
al. 2018) after the first conv of every middle and decoder block (the encoder, like GNR's
content encoder, does not see the style). The last MLP layer starts at zero, so FiLM starts as
the identity. :meth:`Student.lock_style` folds one style into the conv weights (exact: FiLM
follows a convolution), giving a plain locked-style student with no style path at all.

Checkpoints (``kind: "student"``, read with ``torch.load(weights_only=True)``)::

    kind            "student"
    student         the student's state dict
    student_config  StudentConfig.to_dict()
    style           StyleCode.to_dict() of the distilled style (locked students), else None
    teacher         {"name", "sha256", "which", "config"} of the distilled checkpoint
    config          the teacher's ModelConfig dict: size and latent_dim of the map, so code that
                    reads a checkpoint's model config (``training.checkpoint.checkpoint_config``)
                    sees the crop size and style size the student takes
    G_B2A_ema       (style-conditioned students, when the teacher has it) the teacher's anime ->
                    face generator, float16: its style encoder reads ``--style-image`` pictures,
                    so ``StyleCode.from_image(img, "student.pt")`` works as for a GNR checkpoint
    iter, train     the step, and the distillation state (config, optimizer, RNG) for --resume

``load_student(path)`` returns the student (eval mode, frozen) with ``.style`` set for locked
students; ``is_student_checkpoint`` tells a student checkpoint from a GNR one.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from .checkpoint import CheckpointError, read_checkpoint

__all__ = ["StudentConfig", "Student", "STUDENT_KIND", "is_student_checkpoint", "is_student_file",
           "describe_student_checkpoint", "student_file_config", "student_file_teacher",
           "load_student",
           "student_from_checkpoint",
           "student_flops", "student_parameters"]

STUDENT_KIND = "student"
MAX_LEVELS = 6


@dataclass(frozen=True)
class StudentConfig:
    """The student's architecture (see the module docstring). Defaults: the 256x256 student
    measured for the CPU (3.9 GFLOP a frame)."""

    size: int = 256
    widths: tuple[int, ...] = (24, 48, 96, 192)   # at S/2, S/4, ..., S/2^L
    mid_blocks: int = 4
    level_blocks: int = 1
    latent_dim: int = 8
    dynamic_style: bool = False
    style_hidden: int = 128
    negative_slope: float = 0.2

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        log = math.log2(self.size) if isinstance(self.size, int) and self.size > 0 else -1
        if log != int(log) or not 16 <= self.size <= 1024:
            raise ValueError(f"size must be a power of two in [16, 1024], got {self.size}")
        if not 1 <= len(self.widths) <= MAX_LEVELS:
            raise ValueError(f"widths needs 1 to {MAX_LEVELS} levels, got {list(self.widths)}")
        if self.size >> len(self.widths) < 2:
            raise ValueError(f"{len(self.widths)} levels halve {self.size} below 2x2: give fewer "
                             "widths or a larger size")
        if min(self.widths) < 4:
            raise ValueError(f"every width must be >= 4, got {list(self.widths)}")
        for name in ("mid_blocks", "level_blocks"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        for name in ("latent_dim", "style_hidden"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not 0 <= self.negative_slope < 1:
            raise ValueError(f"negative_slope must be in [0, 1), got {self.negative_slope}")
        object.__setattr__(self, "dynamic_style", bool(self.dynamic_style))

    @property
    def levels(self) -> int:
        return len(self.widths)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "StudentConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown student config fields {unknown}; known: {sorted(known)}")
        return cls(**dict(d))

    def describe(self) -> str:
        return (f"{self.size}x{self.size}, widths {'/'.join(map(str, self.widths))}, "
                f"{self.mid_blocks} middle blocks, "
                + ("style-conditioned (FiLM)" if self.dynamic_style else "locked style"))


class FiLM(nn.Module):
    """``x * (1 + gamma) + beta`` with per-image, per-channel ``gamma``/``beta`` (N x C)."""

    def forward(self, x, gamma, beta):
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class ResBlock(nn.Module):
    def __init__(self, channels: int, slope: float, film: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.film = FiLM() if film else None
        self.slope = slope
        with torch.no_grad():            # start near the identity: a deep stack trains stably
            self.conv2.weight.mul_(0.1)
            self.conv2.bias.zero_()

    def forward(self, x, film=None):
        y = self.conv1(x)
        if self.film is not None:
            y = self.film(y, *film)
        y = self.conv2(F.leaky_relu(y, self.slope))
        return F.leaky_relu(x + y, self.slope)


class Student(nn.Module):
    """The student: ``forward(x)`` (locked style) or ``forward(x, z)`` (style-conditioned; z is
    N x latent_dim or 1 x latent_dim), x N x 3 x S x S in [-1, 1] -> N x 3 x S x S."""

    def __init__(self, cfg: StudentConfig):
        super().__init__()
        self.config = cfg
        self.size = cfg.size
        self.latent_dim = cfg.latent_dim
        self.style = None                 # the StyleCode of a locked student (set by loaders)
        w, a, film = cfg.widths, cfg.negative_slope, cfg.dynamic_style
        self.stem = nn.Conv2d(12, w[0], 3, padding=1)
        self.enc = nn.ModuleList(nn.ModuleList(ResBlock(w[i], a, False) for _ in range(cfg.level_blocks))
                                 for i in range(cfg.levels - 1))
        self.down = nn.ModuleList(nn.Conv2d(w[i], w[i + 1], 3, stride=2, padding=1)
                                  for i in range(cfg.levels - 1))
        self.mid = nn.ModuleList(ResBlock(w[-1], a, film) for _ in range(cfg.mid_blocks))
        # decoder, lowest level first: upsample w[i+1] -> w[i], add the skip, blocks at w[i]
        self.up = nn.ModuleList(nn.Conv2d(w[i + 1], 4 * w[i], 1) for i in reversed(range(cfg.levels - 1)))
        self.dec = nn.ModuleList(nn.ModuleList(ResBlock(w[i], a, film) for _ in range(cfg.level_blocks))
                                 for i in reversed(range(cfg.levels - 1)))
        self.out = nn.Conv2d(w[0], 12, 3, padding=1)
        self.film_widths = [b.conv1.out_channels for b in self._film_blocks()]
        if film:
            h = cfg.style_hidden
            self.style_mlp = nn.Sequential(nn.Linear(cfg.latent_dim, h), nn.LeakyReLU(0.2),
                                           nn.Linear(h, h), nn.LeakyReLU(0.2),
                                           nn.Linear(h, 2 * sum(self.film_widths)))
            with torch.no_grad():
                self.style_mlp[-1].weight.zero_()
                self.style_mlp[-1].bias.zero_()
        else:
            self.style_mlp = None

    @classmethod
    def from_config(cls, cfg: StudentConfig) -> "Student":
        return cls(cfg)

    def _film_blocks(self) -> list[ResBlock]:
        if not self.config.dynamic_style:
            return []
        return list(self.mid) + [b for level in self.dec for b in level]

    # -- checks ------------------------------------------------------------------------------
    def check_input(self, x, z) -> None:
        s = self.size
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (3, s, s):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"student input must be N x 3 x {s} x {s} (RGB at the model's size), "
                             f"got {got}")
        if not x.is_floating_point():
            raise ValueError(f"student input must be floating point in [-1, 1], got {x.dtype}")
        if self.config.dynamic_style:
            if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.latent_dim \
                    or z.shape[0] not in (1, x.shape[0]):
                got = tuple(z.shape) if isinstance(z, torch.Tensor) else z
                raise ValueError(f"this student is style-conditioned: give a style code "
                                 f"{x.shape[0]} x {self.latent_dim} or 1 x {self.latent_dim}, "
                                 f"got {got}")
        elif z is not None:
            raise ValueError("this student has its style locked in (distilled for one style); it "
                             "takes no style code: distil with --dynamic-style for styles as input")

    # -- forward -----------------------------------------------------------------------------
    def film_params(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per FiLM block, (gamma, beta), each B x C (computed in float32)."""
        p = self.style_mlp(z.float())
        out, k = [], 0
        for c in self.film_widths:
            out.append((p[:, k:k + c], p[:, k + c:k + 2 * c]))
            k += 2 * c
        return out

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            self.check_input(x, z)
        a = self.config.negative_slope
        films = iter([(g, b) if g.dtype == x.dtype else (g.to(x.dtype), b.to(x.dtype))
                      for g, b in self.film_params(z)] if self.style_mlp is not None else [])
        h = F.leaky_relu(self.stem(F.pixel_unshuffle(x, 2)), a)
        skips = []
        for blocks, down in zip(self.enc, self.down):
            for b in blocks:
                h = b(h)
            skips.append(h)
            h = F.leaky_relu(down(h), a)
        for b in self.mid:
            h = b(h, next(films) if b.film is not None else None)
        for up, blocks in zip(self.up, self.dec):
            h = F.pixel_shuffle(up(h), 2) + skips.pop()
            for b in blocks:
                h = b(h, next(films) if b.film is not None else None)
        return F.pixel_shuffle(self.out(h), 2)

    # -- style locking -------------------------------------------------------------------------
    @torch.no_grad()
    def lock_style(self, style) -> "Student":
        """A locked-style copy for one style (a StyleCode or latent_dim floats): every FiLM is
        folded into the conv before it, in float64 (``(1+g)(Wx+b)+beta`` is a conv with weights
        ``(1+g)W`` and bias ``(1+g)b+beta``). The result has no style path and equals
        ``self(x, z)`` to float rounding."""
        if not self.config.dynamic_style:
            raise ValueError("this student has its style locked in already")
        vec = getattr(style, "vector", style)
        z = torch.as_tensor(vec if not isinstance(vec, torch.Tensor) else vec.detach().cpu(),
                            dtype=torch.float64).reshape(1, -1)
        if z.shape[1] != self.latent_dim or not torch.isfinite(z).all():
            raise ValueError(f"style must be {self.latent_dim} finite floats, got shape "
                             f"{tuple(z.shape)}")
        dev = next(self.parameters()).device
        import copy
        p = copy.deepcopy(self.style_mlp).to("cpu", torch.float64)(z)[0]
        locked = Student(replace(self.config, dynamic_style=False))
        state = {k: v.detach().to("cpu", torch.float64) for k, v in self.state_dict().items()
                 if not k.startswith("style_mlp.")}
        names = [f"mid.{i}" for i in range(len(self.mid))] + \
            [f"dec.{i}.{j}" for i, level in enumerate(self.dec) for j in range(len(level))]
        k = 0
        for name, c in zip(names, self.film_widths):
            gamma, beta = p[k:k + c], p[k + c:k + 2 * c]
            k += 2 * c
            w, b = state[f"{name}.conv1.weight"], state[f"{name}.conv1.bias"]
            state[f"{name}.conv1.weight"] = w * (1 + gamma)[:, None, None, None]
            state[f"{name}.conv1.bias"] = b * (1 + gamma) + beta
        dtype = next(self.parameters()).dtype
        locked.load_state_dict({k: v.to(dtype) for k, v in state.items()})
        from .style import StyleCode
        locked.style = style if isinstance(style, StyleCode) else \
            StyleCode.from_vector(z[0].tolist(), "vector")
        return locked.to(dev).eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------
# Size and cost
# ---------------------------------------------------------------------------------------------
def student_parameters(cfg: StudentConfig) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in Student(cfg).parameters())


@torch.no_grad()
def student_flops(cfg: StudentConfig) -> float:
    """FLOPs (2 x multiply-adds) per frame, counted by PyTorch's FlopCounterMode on a forward
    pass (on the meta device: no memory, no time)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        s = Student(cfg).eval()
        x = torch.zeros(1, 3, cfg.size, cfg.size)
        z = torch.zeros(1, cfg.latent_dim) if cfg.dynamic_style else None
        with FlopCounterMode(display=False) as fc:
            s(x, z)
    return float(fc.get_total_flops())


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------
def is_student_checkpoint(ckpt: Mapping[str, Any]) -> bool:
    """True for a checkpoint written by ``python -m training.distill``."""
    return isinstance(ckpt, Mapping) and ckpt.get("kind") == STUDENT_KIND


def describe_student_checkpoint(ckpt: Mapping[str, Any]) -> str:
    """One phrase for a student checkpoint dict, from its metadata only (no weights are read),
    e.g. ``"64x64 style-conditioned student of demo_model.pt"``."""
    cfg = ckpt.get("student_config") if isinstance(ckpt.get("student_config"), Mapping) else {}
    size = cfg.get("size", "?")
    kind = "style-conditioned" if cfg.get("dynamic_style") else "locked-style"
    teacher = ckpt.get("teacher") if isinstance(ckpt.get("teacher"), Mapping) else {}
    return f"{size}x{size} {kind} student" + (f" of {teacher['name']}" if teacher.get("name") else "")


def _mapped(path: str | os.PathLike):
    """The checkpoint at ``path``, memory-mapped (its tensors are not read), or None when it
    cannot be read this way."""
    import pickle
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError):
        return None


def is_student_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is a student checkpoint; cheap (the file is memory-mapped, its tensors
    are not read). A file that cannot be read this way is not one (the GNR loaders then report
    what is wrong with it)."""
    return is_student_checkpoint(_mapped(path))


def student_file_config(path: str | os.PathLike) -> StudentConfig | None:
    """The :class:`StudentConfig` of a student checkpoint file (``.dynamic_style`` tells a
    style-conditioned student from a locked one), None for any other file; cheap, as
    :func:`is_student_file`."""
    obj = _mapped(path)
    if not is_student_checkpoint(obj):
        return None
    try:
        return StudentConfig.from_dict(obj["student_config"])
    except (KeyError, TypeError, ValueError):
        return None


def student_file_teacher(path: str | os.PathLike) -> dict | None:
    """The teacher record (name, sha256, which, config) of a student checkpoint file, None for
    any other file; cheap, as :func:`is_student_file`."""
    obj = _mapped(path)
    if not is_student_checkpoint(obj) or not isinstance(obj.get("teacher"), Mapping):
        return None
    return dict(obj["teacher"])


def student_from_checkpoint(ckpt: Mapping[str, Any], path: str | os.PathLike = "checkpoint",
                            weights: str = "student") -> Student:
    """The student of an already read checkpoint dict (eval mode, frozen, on the CPU)."""
    if not is_student_checkpoint(ckpt):
        raise CheckpointError(
            f"{path} is not a student checkpoint (no kind 'student'; keys {sorted(map(str, ckpt))[:8]}): "
            "students are written by python -m training.distill; a GNR checkpoint loads with "
            "training.load_generator")
    try:
        cfg = StudentConfig.from_dict(ckpt["student_config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: invalid or missing student_config: {e}") from None
    state = ckpt.get(weights)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: no {weights!r} weights in this student checkpoint")
    net = Student(cfg)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing or unexpected:
        raise CheckpointError(f"{path}: student weights do not fit {cfg.describe()}: "
                              f"{len(missing)} missing (first {missing[:3]}), {len(unexpected)} "
                              f"unexpected (first {unexpected[:3]})")
    for k, shape in expected.items():
        if found[k] != shape:
            raise CheckpointError(f"{path}: student parameter {k!r} has shape {found[k]}, "
                                  f"expected {shape} for {cfg.describe()}")
    net.load_state_dict({k: v.float() for k, v in state.items()})
    if ckpt.get("style") is not None:
        from .style import StyleCode, StyleError
        try:
            net.style = StyleCode.from_dict(dict(ckpt["style"]))
        except StyleError as e:
            raise CheckpointError(f"{path}: invalid stored style: {e}") from None
    return net.eval().requires_grad_(False)


def load_student(path: str | os.PathLike, device: str | torch.device = "cpu") -> Student:
    """Load a student checkpoint (``python -m training.distill``): the student in eval mode,
    frozen, with ``.style`` the distilled StyleCode for a locked-style student (None for a
    style-conditioned one). A GNR checkpoint raises CheckpointError saying so."""
    ckpt = read_checkpoint(path)
    return student_from_checkpoint(ckpt, Path(path)).to(device)
