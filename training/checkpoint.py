"""Checkpoints in the authors' format, read safely and written atomically.

A GNR checkpoint is a dict with the keys ``G_A2B``, ``G_B2A``, ``G_A2B_ema``, ``G_B2A_ema``, ``D_A``,
``D_B``, ``D_L`` (state dicts), ``G_optim``, ``D_optim`` and ``iter``. Checkpoints we write carry
the same keys (so the authors' code loads them) plus ``config``: the model config as a plain dict.
Checkpoints without it (the authors' release) get their config inferred from the weights' shapes.

Every file is read with ``torch.load(weights_only=True)``: tensors and plain containers only,
never pickled code. :func:`load_torch_file` (also used for LPIPS and Inception weights) first
checks that a file is a PyTorch file at all, so an image, a video, a JSON or text file, or an
empty file given by mistake is named as what it is, in one line; the pickled-code refusal is
kept for real PyTorch files that hold objects.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .config import CHANNELS, RELEASED, ModelConfig
from .fileio import atomic_path
from .messages import one_line
from .networks import Discriminator, Generator, LatDiscriminator

GENERATOR_KEYS = ("G_A2B_ema", "G_B2A_ema", "G_A2B", "G_B2A")
NETWORK_KEYS = ("G_A2B", "G_B2A", "G_A2B_ema", "G_B2A_ema", "D_A", "D_B", "D_L")
RELEASE_HINT = ("the authors' released checkpoint is linked from the README of "
                "github.com/mchong6/GANsNRoses; our own runs write checkpoints under RUN_DIR/checkpoints")


class CheckpointError(ValueError):
    """A file that is not a usable GNR checkpoint (wrong keys, wrong shapes, unsafe content)."""


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
# The first bytes of files people pass for a checkpoint by mistake.
_LOOKS_LIKE = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
               (b"BM", "a BMP image"), (b"\x1a\x45\xdf\xa3", "a Matroska/WebM video"),
               (b"%PDF", "a PDF document"), (b"\x1f\x8b", "a gzip archive"),
               (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"))
# torch.save's legacy (pre-1.6) format opens with a pickled magic number
_LEGACY_TORCH_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def _not_torch(path: Path) -> str | None:
    """What ``path`` looks like when it is clearly not a PyTorch file (``torch.save``'s zip
    archive or its legacy pickle), else None."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head:
        return "nothing: the file is empty (0 bytes)"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            return None          # a cut-off zip: torch.load says it cannot read it
        return None if any(n.endswith("data.pkl") for n in names) else "a zip archive of other files"
    if head[:1] == b"\x80" and _LEGACY_TORCH_MAGIC in head[:32]:
        return None
    if head[4:8] == b"ftyp":
        return "an MP4/MOV video"
    if head.startswith(b"RIFF"):
        return {b"WEBP": "a WebP image", b"AVI ": "an AVI video", b"WAVE": "a WAV sound file"}.get(
            head[8:12], "a RIFF file")
    for magic, what in _LOOKS_LIKE:
        if head.startswith(magic):
            return what
    if head[:1] == b"\x80":
        return "a plain Python pickle (not written by torch.save)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown kind"
    if "\x00" in text:
        return "binary data of an unknown kind"
    return "a JSON file" if text.lstrip()[:1] in ("{", "[") else "a text file"


def load_torch_file(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with one-line CheckpointErrors: a
    file that is not a PyTorch file says what it looks like; a PyTorch file holding pickled
    objects is refused (unpickling can run code); a cut-off or damaged one says so."""
    path = Path(path)
    kind = _not_torch(path)
    if kind is not None:
        raise CheckpointError(f"{path} is not a PyTorch {what}: it looks like {kind}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        if found is None:       # an instruction the safe loader does not take, or damage
            detail = str(e).split("WeightsUnpickler error:", 1)[-1]
            raise CheckpointError(f"could not read {path} safely as a PyTorch {what} "
                                  f"({one_line(detail)}); re-save it with torch.save") from None
        raise CheckpointError(
            f"refused to load {path}: it holds pickled Python objects ({found.group(1)}), not only "
            "tensors, and unpickling them could run arbitrary code. Re-save it as plain state "
            "dicts (torch.save({'G_A2B_ema': G.state_dict(), ...}))") from None
    except Exception as e:  # noqa: BLE001 - RuntimeError, EOFError, KeyError...: a damaged file
        first = one_line(e).split(". ")[0]           # PyTorch's advice follows the cause
        raise CheckpointError(f"could not read {path} as a PyTorch {what} (truncated or "
                              f"damaged?): {first}") from None


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint file as plain data (tensors, dicts, numbers) on the CPU."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path} ({RELEASE_HINT})")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    obj = load_torch_file(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a dict of state dicts; "
                              f"expected keys {list(NETWORK_KEYS)}")
    return dict(obj)


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values())


def _generator_state(ckpt: Mapping, which: str, path) -> Mapping[str, torch.Tensor]:
    if which not in GENERATOR_KEYS:
        raise ValueError(f"which must be one of {list(GENERATOR_KEYS)}, got {which!r}")
    if which in ckpt and _is_state_dict(ckpt[which]):
        return ckpt[which]
    if _is_state_dict(ckpt) and "mapping.0.weight" in ckpt:
        return ckpt            # a bare generator state dict
    found = sorted(str(k) for k in ckpt.keys())
    shown = found[:12] + (["..."] if len(found) > 12 else [])
    raise CheckpointError(f"{path} is not a GNR checkpoint with {which!r}: keys found {shown}; "
                          f"expected keys {list(NETWORK_KEYS)} (at least {which!r})")


# ---------------------------------------------------------------------------------------------
# Config inference and strict loading with useful errors
# ---------------------------------------------------------------------------------------------
def _shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _meta_generator(cfg: ModelConfig) -> Generator:
    with torch.device("meta"):
        return Generator.from_config(cfg)


def _count(state: Mapping[str, Any], prefix: str, suffix: str = "") -> int:
    idx = {k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix) and k.endswith(suffix)}
    return len({i for i in idx if i.isdigit()})


def infer_config(state: Mapping[str, torch.Tensor], lr_mlp: float = RELEASED.lr_mlp) -> ModelConfig | None:
    """The ModelConfig whose generator has exactly these parameter names and shapes, or None.

    ``lr_mlp`` cannot be read from shapes (it only scales the mapping weights); it defaults to
    the authors' 0.01.
    """
    try:
        latent_dim = int(state["mapping.0.weight"].shape[1])
        n_mlp = _count(state, "mapping.", ".weight")
        n_res = _count(state, "adain_bottleneck.")
        num_down = _count(state, "to_rgbs.")
        style_down = _count(state, "encoder.style.", ".0.kernel")
        log_size = num_down + 2 + style_down
        size = 2 ** log_size
        stem_width = int(state["encoder.stem.0.0.weight"].shape[0])
    except (KeyError, IndexError, AttributeError):
        return None
    if size not in CHANNELS or stem_width <= 0:
        return None
    want = {k: tuple(v.shape) for k, v in state.items()}
    for divisor in (1, 2, 4, 8, 16, 32, 64, 128):
        try:
            cfg = ModelConfig(size=size, num_down=num_down, latent_dim=latent_dim, n_mlp=n_mlp,
                              n_res=n_res, lr_mlp=lr_mlp, channel_divisor=divisor)
        except ValueError:
            return None
        if cfg.channels(size) != stem_width:
            continue
        if _shapes(_meta_generator(cfg)) == want:
            return cfg
    return None


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], name: str,
                      cfg: ModelConfig, path) -> None:
    """``load_state_dict(strict=True)`` with errors that name the problem and the fix."""
    expected = _shapes(module)
    found = {k: tuple(v.shape) for k, v in state.items()}
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    hint = ""
    if name.startswith("G_"):
        match = infer_config(state, cfg.lr_mlp)
        if match is not None and match != cfg:
            hint = f"; these weights match the config {match.describe()}"
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: {name!r} does not fit a GNR {type(module).__name__} with {cfg.describe()}: "
            f"{len(missing)} missing keys (first: {missing[:3]}), {len(unexpected)} unexpected "
            f"keys (first: {unexpected[:3]}){hint}")
    for key, shape in expected.items():
        if found[key] != shape:
            raise CheckpointError(
                f"{path}: {name!r} parameter {key!r} has shape {found[key]}, expected {shape} "
                f"for {cfg.describe()}{hint}")
    module.load_state_dict(state, strict=True)


def checkpoint_config(ckpt: Mapping, path="checkpoint") -> ModelConfig:
    """The config stored in a checkpoint we wrote, else the one inferred from the weights."""
    stored = ckpt.get("config")
    if stored is not None:
        if not isinstance(stored, Mapping):
            raise CheckpointError(f"{path}: 'config' must be a dict, got {type(stored).__name__}")
        try:
            return ModelConfig.from_dict(dict(stored))
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: invalid stored config: {e}") from None
    for key in GENERATOR_KEYS:
        if key in ckpt and _is_state_dict(ckpt[key]):
            state = ckpt[key]
            break
    else:
        state = ckpt if _is_state_dict(ckpt) else {}
    cfg = infer_config(state)
    if cfg is None:
        found = sorted(str(k) for k in ckpt.keys())[:12]
        raise CheckpointError(f"{path}: no GNR generator config matches these weights (keys "
                              f"found {found}; expected {list(NETWORK_KEYS)})")
    return cfg


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
def load_generator(path: str | os.PathLike, which: str = "G_A2B_ema", device: str | torch.device = "cpu",
                   config: ModelConfig | None = None) -> Generator:
    """Load one generator (default: the EMA face->anime generator) in eval mode, frozen.

    A student checkpoint (``python -m training.distill``) holds no face->anime generator: asking
    it for one is a CheckpointError that says how to load it (``training.student.load_student``).
    Its ``G_B2A_ema`` (the teacher's style encoder, kept for ``--style-image``) loads as usual."""
    from .student import describe_student_checkpoint, is_student_checkpoint

    ckpt = read_checkpoint(path)
    if is_student_checkpoint(ckpt) and not _is_state_dict(ckpt.get(which)):
        raise CheckpointError(
            f"{path} is a student checkpoint ({describe_student_checkpoint(ckpt)}), not a GNR "
            f"checkpoint with {which!r}: load it with training.student.load_student; the apps, "
            "python -m export and the benchmarks take it as --checkpoint")
    state = _generator_state(ckpt, which, path)
    cfg = config if config is not None else checkpoint_config(
        {"config": ckpt["config"]} if "config" in ckpt else {which: state}, path)
    G = Generator.from_config(cfg)
    load_state_strict(G, state, which, cfg, path)
    return G.to(device).eval().requires_grad_(False)


def build_network(name: str, cfg: ModelConfig) -> nn.Module:
    if name.startswith("G_"):
        return Generator.from_config(cfg)
    if name in ("D_A", "D_B"):
        return Discriminator(cfg.size, blur_kernel=cfg.blur_kernel, channel_divisor=cfg.channel_divisor)
    if name == "D_L":
        return LatDiscriminator(cfg.latent_dim)
    raise ValueError(f"unknown network {name!r}; known: {list(NETWORK_KEYS)}")


def load_networks(path: str | os.PathLike, names=NETWORK_KEYS, device="cpu",
                  config: ModelConfig | None = None) -> tuple[ModelConfig, dict[str, nn.Module], dict]:
    """Load several networks strictly; returns (config, {name: module}, the raw checkpoint)."""
    ckpt = read_checkpoint(path)
    missing = [n for n in names if n not in ckpt]
    if missing:
        raise CheckpointError(f"{path} lacks {missing}; keys found {sorted(map(str, ckpt))}; "
                              f"expected {list(NETWORK_KEYS)}")
    cfg = config if config is not None else checkpoint_config(ckpt, path)
    nets = {}
    for name in names:
        net = build_network(name, cfg)
        load_state_strict(net, ckpt[name], name, cfg, path)
        nets[name] = net.to(device)
    return cfg, nets, ckpt


def make_checkpoint(nets: Mapping[str, nn.Module], cfg: ModelConfig, **extra) -> dict:
    """A checkpoint dict in the authors' layout (state dicts by network name) plus our config."""
    out: dict[str, Any] = {name: _plain_state(net) for name, net in nets.items()}
    out.update(extra)
    out["config"] = cfg.to_dict()
    return out


def _plain_state(net: nn.Module) -> dict[str, torch.Tensor]:
    mod = getattr(net, "module", net)   # unwrap DistributedDataParallel
    return {k: v.detach().cpu().clone() for k, v in mod.state_dict().items()}


def save_checkpoint(obj: Mapping, path: str | os.PathLike) -> Path:
    """Write atomically: to a temporary file beside ``path``, fsync, then rename over it. On any
    error (disk full, Ctrl-C) the temporary file is removed and an existing ``path`` is untouched."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(dict(obj), f)
    except OSError as e:
        raise OSError(e.errno, f"could not write checkpoint {path}: {e.strerror or e}; "
                               "any previous file there is untouched") from e
    return path
