"""Using a trained ISF: load it, parse edits, edit style codes.

    from training.isf import load_isf
    isf = load_isf("realtime/assets/demo_isf.pt", checkpoint="realtime/assets/demo_model.pt")
    isf.attributes                      # {"hair": ("black", ...), "hair_length": ("long", "short"), ...}
    edits = isf.parse(["hair=red", "mouth=smile"])   # EditError (one line, lists the known ones)
    z2 = isf.edit(StyleCode.from_seed(7), edits, seed=0)   # a StyleCode again (8 floats)

``edit`` takes a :class:`~training.style.StyleCode` or 8 floats (list, tuple, numpy array,
torch tensor; also N x 8) and returns the same kind. ``seed`` picks the random vector of the
multimodal edit: the same (code, edits, seed) always gives the same result. No edits returns
the code unchanged. An ISF remembers the sha256 of the GNR checkpoint it was trained for;
``load_isf(..., checkpoint=)`` or :meth:`ISF.check_gnr` refuse another one
(:class:`ISFMismatchError`).

An ISF file holds plain data only (read with ``torch.load(weights_only=True)``): the network's
weights, its config, the attribute vocabulary and the GNR checkpoint's sha256, file name and
model config.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from ..fileio import sha256_file
from ..messages import one_line
from ..style import StyleCode
from .attributes import AttributeVocab, EditError
from .nets import ISFNetConfig, ImplicitStyleFunction

__all__ = ["ISF", "ISFError", "ISFMismatchError", "load_isf", "ship_isf", "gnr_sha256", "ISF_KIND", "EditError"]

ISF_KIND = "gnr-anime implicit style function"


class ISFError(ValueError):
    """A file that is not a usable ISF, or an ISF used where it does not fit."""


class ISFMismatchError(ISFError):
    """The ISF was trained for another GNR checkpoint."""


class ISF:
    """A loaded implicit style function (eval mode, no gradients) and what it knows."""

    def __init__(self, net: ImplicitStyleFunction, vocab: AttributeVocab, gnr: Mapping[str, Any],
                 path: str | os.PathLike = "ISF", info: Mapping[str, Any] | None = None):
        self.net = net.eval().requires_grad_(False)
        self.vocab = vocab
        self.gnr = dict(gnr)
        self.path = Path(path)
        self.info = dict(info or {})

    # -- what it knows ---------------------------------------------------------------------------
    @property
    def attributes(self) -> dict[str, tuple[str, ...]]:
        """Attribute names -> their values, in order."""
        return dict(zip(self.vocab.names, self.vocab.values))

    @property
    def space(self) -> str:
        return self.net.cfg.space

    @property
    def style_dim(self) -> int:
        return self.net.cfg.style_dim

    @property
    def gnr_sha256(self) -> str:
        return str(self.gnr.get("sha256", ""))

    def describe(self) -> str:
        return self.vocab.describe()

    def parse(self, edits: str | Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
        """``"hair=red"`` / ``["hair=red", "mouth=smile"]`` / ``{"hair": "red"}`` -> checked dict;
        :class:`EditError` (one line listing the known attributes and values) otherwise."""
        return self.vocab.parse_edits(edits)

    def check_gnr(self, checkpoint: str | os.PathLike | None = None, sha256: str | None = None,
                  name: str | None = None) -> None:
        """Refuse (:class:`ISFMismatchError`) a GNR checkpoint file, or a checkpoint's sha256 as an
        exported engine records it, other than the one this ISF was trained for. ``name``: what
        to call the model in the message (default: the checkpoint's path)."""
        if checkpoint is None and sha256 is None:
            raise ValueError("give the GNR checkpoint path or its sha256")
        got = sha256 if sha256 is not None else gnr_sha256(checkpoint)
        want = self.gnr_sha256
        if got != want:
            what = name or (f"{checkpoint}" if checkpoint is not None else "that model")
            raise ISFMismatchError(
                f"{self.path.name} was trained for the GNR checkpoint {self.gnr.get('file', '?')} "
                f"(sha256 {want[:12]}...), not {what} (sha256 {got[:12]}...); train an ISF for it: "
                f"python -m training.isf --checkpoint CKPT --data-b ANIME_DIR --labels labels.csv")

    # -- editing ---------------------------------------------------------------------------------
    def noise(self, seed: int, n: int = 1) -> torch.Tensor:
        """The random vector of the multimodal edit for ``seed`` (the same one for all n rows)."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 63:
            raise EditError(f"edit seed must be an integer in [0, 2**63), got {seed!r}")
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(1, self.net.cfg.noise_dim, generator=g).expand(n, -1)

    def condition(self, edits: Mapping[str, str], n: int = 1) -> torch.Tensor:
        idx = torch.tensor([self.vocab.indices(edits)], dtype=torch.long).expand(n, -1)
        return self.vocab.encode(idx)

    @torch.no_grad()
    def edit_codes(self, codes: torch.Tensor, edits: str | Sequence[str] | Mapping[str, str],
                   seed: int = 0) -> torch.Tensor:
        """N x style_dim codes (in this ISF's space) -> edited codes, same dtype and device."""
        edits = self.parse(edits)
        if not edits:
            return codes
        if codes.ndim != 2 or codes.shape[1] != self.style_dim:
            raise EditError(f"style codes must be N x {self.style_dim}, got {tuple(codes.shape)}")
        p = next(self.net.parameters())
        x = codes.to(p.device, torch.float32)
        n = x.shape[0]
        out = self.net(x, self.condition(edits, n).to(p.device), self.noise(seed, n).to(p.device))
        return out.to(codes.device, codes.dtype)

    def edit(self, z, edits: str | Sequence[str] | Mapping[str, str], seed: int = 0):
        """Edit a style code. ``z``: a StyleCode, or ``style_dim`` floats (list, tuple, numpy
        array, torch tensor; or N x ``style_dim``). Returns the same kind and shape."""
        if self.space != "latent":
            raise ISFError(f"{self.path.name} edits the 512-d mapped style (trained with --space "
                           "mapped); engines take the 8-d code: use edit_codes on G.mapping(z)")
        parsed = self.parse(edits)
        if isinstance(z, StyleCode):
            z.check_dim(self.style_dim)
            if not parsed:
                return z
            out = self.edit_codes(z.tensor(), parsed, seed)[0]
            what = ",".join(f"{k}={v}" for k, v in parsed.items())
            return StyleCode(tuple(out.double().tolist()), f"{z.source}, edited {what} (seed {seed})")
        if isinstance(z, torch.Tensor):
            if z.shape[-1] != self.style_dim or z.ndim not in (1, 2):
                raise EditError(f"a style is {self.style_dim} floats (or N x {self.style_dim}), "
                                f"got shape {tuple(z.shape)}")
            return self.edit_codes(z.reshape(-1, self.style_dim), parsed, seed).reshape(z.shape)
        arr = np.asarray(z, dtype=np.float64)
        if arr.ndim not in (1, 2) or arr.shape[-1] != self.style_dim or not np.isfinite(arr).all():
            raise EditError(f"a style is {self.style_dim} finite floats (or N x {self.style_dim}), "
                            f"got {type(z).__name__} of shape {arr.shape}")
        out = self.edit_codes(torch.from_numpy(arr.reshape(-1, self.style_dim)), parsed, seed)
        out = out.numpy().reshape(arr.shape)
        if isinstance(z, np.ndarray):
            return out.astype(z.dtype if np.issubdtype(z.dtype, np.floating) else np.float64)
        listed = out.tolist()
        if isinstance(z, tuple):
            return tuple(tuple(r) for r in listed) if arr.ndim == 2 else tuple(listed)
        return listed


def gnr_sha256(checkpoint: str | os.PathLike) -> str:
    """The sha256 of the GNR checkpoint a model file renders as: the file's own for a GNR
    checkpoint; for a student checkpoint (``python -m training.distill``), its teacher's (a
    student of the GNR model an ISF was trained for takes that ISF's edits too)."""
    from ..student import student_file_teacher
    teacher = student_file_teacher(checkpoint) or {}
    return str(teacher["sha256"]) if teacher.get("sha256") else sha256_file(checkpoint)


def _net_from(ckpt: Mapping, key: str, path) -> ImplicitStyleFunction:
    try:
        cfg = ISFNetConfig.from_dict(dict(ckpt["net"]))
        net = ImplicitStyleFunction(cfg)
        net.load_state_dict({k: v.float() for k, v in ckpt[key].items()})
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ISFError(f"{path}: the ISF weights do not fit their config: {one_line(e)}") from None
    return net


def load_isf(path: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
             device: str | torch.device = "cpu") -> ISF:
    """An ISF file (shipped with :func:`ship_isf`) or an ISF training checkpoint (its EMA
    weights). With ``checkpoint``, refuse an ISF trained for another GNR checkpoint."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ISF file not found: {path} (train one with python -m training.isf)")
    try:
        ckpt = read_checkpoint(path)
    except CheckpointError as e:
        raise ISFError(str(e)) from None
    if ckpt.get("kind") != ISF_KIND:
        raise ISFError(f"{path} is not an ISF file (keys: {', '.join(sorted(map(str, ckpt))[:8])}); "
                       "ISF files are written by python -m training.isf")
    key = "isf_ema" if "isf_ema" in ckpt else "isf"
    try:
        vocab = AttributeVocab.from_dict(ckpt["attributes"])
        gnr = dict(ckpt["gnr"])
    except (KeyError, TypeError, ValueError) as e:
        raise ISFError(f"{path}: attribute vocabulary or GNR record missing or broken ({e})") from None
    net = _net_from(ckpt, key, path).to(device)
    info = {"iter": ckpt.get("iter"), "config": ckpt.get("config"), "weights": key}
    isf = ISF(net, vocab, gnr, path, info)
    if checkpoint is not None:
        isf.check_gnr(checkpoint)
    return isf


def ship_isf(run_checkpoint: str | os.PathLike, out: str | os.PathLike, note: str = "") -> Path:
    """The small file to ship: the EMA ISF weights, its config, the attribute vocabulary and
    the GNR record (no discriminator, no optimizer state)."""
    ck = read_checkpoint(run_checkpoint)
    if ck.get("kind") != ISF_KIND or "isf_ema" not in ck:
        raise ISFError(f"{run_checkpoint} is not an ISF training checkpoint")
    keep = {"kind": ISF_KIND, "isf": {k: v.clone() for k, v in ck["isf_ema"].items()},
            "net": ck["net"], "attributes": ck["attributes"], "gnr": ck["gnr"],
            "iter": ck.get("iter"), "config": ck.get("config"), "note": note}
    return save_checkpoint(keep, out)
