"""LPIPS (VGG, v0.1) written here, loading local weight files only.

The ``lpips`` package imports torchvision (which does not import beside our torch), and would
fetch VGG16 from the web on first use. This module needs two local files:

* the VGG16 convolution weights in torchvision's layout (``features.N.weight`` / ``.bias``, e.g.
  ``vgg16-397923af.pth``; a full VGG16 state dict works, its classifier is ignored), given with
  ``--lpips-weights`` or found in PyTorch's hub cache (``$TORCH_HOME/hub/checkpoints``);
* the LPIPS linear layers (``lin0.model.1.weight`` ... ``lin4.model.1.weight``), which the lpips
  package ships as ``lpips/weights/v0.1/vgg.pth``: found inside an installed lpips package (the
  file is located without importing lpips) or given with ``--lpips-lin``.

Computation (Zhang et al. 2018, as ``lpips.LPIPS(net='vgg')`` with its defaults): inputs in
[-1, 1] are shifted and scaled to VGG's statistics; features at relu1_2, relu2_2, relu3_3,
relu4_3, relu5_3 are unit-normalised over channels; squared differences are weighted per channel
by the linear layers, averaged over space and summed over layers. Output: N x 1 x 1 x 1.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from .checkpoint import CheckpointError, load_torch_file

# torchvision's vgg16().features: (in, out) of each conv; "M" is a 2x2 max-pool.
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
# Indices into that Sequential where LPIPS taps features (after relu1_2 ... relu5_3), exclusive.
LPIPS_TAPS = (4, 9, 16, 23, 30)
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
VGG16_FILE = "vgg16-397923af.pth"


class LPIPSWeightsError(FileNotFoundError):
    """LPIPS was asked for but its weight files are missing or wrong."""


def _hint() -> str:
    return ("pass --lpips-weights PATH (torchvision's VGG16 state dict, e.g. vgg16-397923af.pth) "
            "and, unless the lpips package is installed, --lpips-lin PATH (lpips/weights/v0.1/vgg.pth); "
            "or train without the LPIPS cycle term with --no-lpips (recorded in the run's config)")


def default_vgg_path() -> Path | None:
    """VGG16 weights already in PyTorch's local hub cache, if any (never downloads)."""
    home = Path(os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"))
    p = home / "hub" / "checkpoints" / VGG16_FILE
    return p if p.is_file() else None


def default_lin_path() -> Path | None:
    """``lpips/weights/v0.1/vgg.pth`` inside an installed lpips package (not imported)."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "weights" / "v0.1" / "vgg.pth"
        if p.is_file():
            return p
    return None


def _load_state(path: Path, what: str) -> Mapping[str, torch.Tensor]:
    if not path.is_file():
        raise LPIPSWeightsError(f"{what} file not found: {path}; {_hint()}")
    try:
        state = load_torch_file(path, f"{what} file")
    except CheckpointError as e:
        raise LPIPSWeightsError(f"{e}; {_hint()}") from None
    if not isinstance(state, Mapping):
        raise LPIPSWeightsError(f"{path} holds a {type(state).__name__}, not a state dict ({what})")
    return state


class VGG16Features(nn.Module):
    """torchvision's ``vgg16().features`` up to relu5_3, with the same parameter names."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in VGG16_LAYOUT:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
                c = v
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, start = [], 0
        for stop in LPIPS_TAPS:
            for i in range(start, stop):
                x = self.features[i](x)
            out.append(x)
            start = stop
        return out


class LPIPS(nn.Module):
    """Frozen LPIPS(VGG) distance; ``forward(a, b)`` with a, b in [-1, 1] -> N x 1 x 1 x 1."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.net = VGG16Features()
        self.lins = nn.ParameterList([nn.Parameter(torch.zeros(1, c, 1, 1)) for c in LPIPS_CHANNELS])
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True):   # always in eval mode (no dropout, frozen)
        return super().train(False)

    @classmethod
    def from_files(cls, vgg_path: str | os.PathLike | None = None,
                   lin_path: str | os.PathLike | None = None) -> "LPIPS":
        vgg = Path(vgg_path) if vgg_path else default_vgg_path()
        lin = Path(lin_path) if lin_path else default_lin_path()
        if vgg is None:
            raise LPIPSWeightsError(f"LPIPS needs VGG16 weights and none were given or found in "
                                    f"PyTorch's hub cache; {_hint()}")
        if lin is None:
            raise LPIPSWeightsError(f"LPIPS needs its linear-layer weights (lpips/weights/v0.1/vgg.pth) "
                                    f"and none were given or found in an installed lpips package; {_hint()}")
        m = cls()
        m.load_vgg(_load_state(vgg, "VGG16 weights"), vgg)
        m.load_lin(_load_state(lin, "LPIPS linear weights"), lin)
        return m

    def load_vgg(self, state: Mapping[str, torch.Tensor], path="VGG16 weights") -> None:
        own = self.net.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise LPIPSWeightsError(f"{path} is not a torchvision VGG16 state dict: missing "
                                    f"{missing[:3]} (expected keys like 'features.0.weight'); {_hint()}")
        for k, v in own.items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise LPIPSWeightsError(f"{path}: {k} has shape {tuple(state[k].shape)}, VGG16 has "
                                        f"{tuple(v.shape)}")
        self.net.load_state_dict({k: state[k].float() for k in own})

    def load_lin(self, state: Mapping[str, torch.Tensor], path="LPIPS linear weights") -> None:
        for i, c in enumerate(LPIPS_CHANNELS):
            for key in (f"lin{i}.model.1.weight", f"lin{i}.model.0.weight", f"lins.{i}.model.1.weight"):
                if key in state:
                    break
            else:
                raise LPIPSWeightsError(f"{path} is not LPIPS v0.1 VGG linear weights: no "
                                        f"'lin{i}.model.1.weight' (keys: {sorted(state)[:6]})")
            w = state[key]
            if tuple(w.shape) != (1, c, 1, 1):
                raise LPIPSWeightsError(f"{path}: {key} has shape {tuple(w.shape)}, expected (1, {c}, 1, 1)")
            with torch.no_grad():
                self.lins[i].copy_(w.float())

    @staticmethod
    def _unit(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
        return x / (torch.sqrt((x * x).sum(dim=1, keepdim=True)) + eps)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa = self.net((a - self.shift) / self.scale)
        fb = self.net((b - self.shift) / self.scale)
        total = 0
        for lin, x, y in zip(self.lins, fa, fb):
            d = (self._unit(x) - self._unit(y)) ** 2
            total = total + F.conv2d(d, lin).mean(dim=(2, 3), keepdim=True)
        return total


def random_weight_files(folder: str | os.PathLike, seed: int = 0) -> tuple[Path, Path]:
    """Write VGG16 and LPIPS-linear files with random weights (for tests and smoke runs)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    m = LPIPS()
    vgg = {k: (torch.randn(v.shape, generator=g) * (2.0 / max(v[0].numel(), 1)) ** 0.5
               if k.endswith("weight") else torch.zeros(v.shape))
           for k, v in m.net.state_dict().items()}
    lin = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) / c
           for i, c in enumerate(LPIPS_CHANNELS)}
    torch.save(vgg, folder / "vgg16_random.pth")
    torch.save(lin, folder / "lpips_lin_random.pth")
    return folder / "vgg16_random.pth", folder / "lpips_lin_random.pth"
