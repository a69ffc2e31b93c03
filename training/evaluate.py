"""Evaluate a checkpoint: FID, the paper's diversity FID (DFID) and LPIPS diversity, as JSON.

    python -m training.evaluate runs/s2a/checkpoints/300000.pt --test-a data/testA --test-b data/testB \\
        --inception-weights pt_inception-2015-12-05-6726825d.pth --lpips-weights vgg16-397923af.pth \\
        --out runs/s2a/eval.json

* **FID** — every test face translated with one random style (z ~ N(0, I)), against the target
  domain's test images; Inception-v3 pool features (2048-d), Fréchet distance of the Gaussians.
* **DFID** (GNR paper, Sec. 5) — for each of ``--dfid-inputs`` test faces, ``--styles``
  translations of *that one face* with random styles, FID of that set against the target domain;
  averaged over the faces. A translator that ignores its style code produces near-identical
  outputs for one face, whose FID to the whole anime domain is large, so DFID measures diversity
  that plain FID misses. (With few styles per face the per-face covariance is rank-deficient, so
  DFID is only comparable between runs evaluated with the same ``--styles``.)
* **LPIPS diversity** — mean LPIPS(VGG) distance between pairs of translations of the same face
  under different random styles (higher = more diverse).

Weights come from local files only: Inception-v3 in the layout of pytorch-fid's
``pt_inception-2015-12-05-6726825d.pth`` (torchvision's parameter names; a torchvision ImageNet
``inception_v3`` state dict also loads but gives non-standard FID values), VGG16 and the LPIPS
linear layers as in :mod:`training.lpips`.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"


class InceptionWeightsError(FileNotFoundError):
    """Inception weights missing or not an Inception-v3 state dict."""


# ---------------------------------------------------------------------------------------------
# Inception-v3, the FID variant (parameter names as torchvision / pytorch-fid)
# ---------------------------------------------------------------------------------------------
class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg3(x):   # the FID network's pooling excludes the zero padding from the average
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x):
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_avg3(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch3x3(x),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for m in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = m(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg3(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b7 = x
        for m in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = m(b7)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool    # the last block of the FID network pools with max, not average
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pool = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pool)], 1)


class InceptionV3Features(nn.Module):
    """N x 3 x H x W in [-1, 1] -> N x 2048 pool features (input resized to 299, bilinear)."""

    input_size = 299       # the FID standard; the network itself runs on any size >= 75

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.requires_grad_(False).eval()

    @classmethod
    def from_file(cls, path: str | Path | None) -> "InceptionV3Features":
        if path is None:
            raise InceptionWeightsError(
                f"FID needs Inception-v3 weights from a local file: pass --inception-weights PATH "
                f"(pytorch-fid's {INCEPTION_FILE}); nothing is downloaded")
        path = Path(path)
        if not path.is_file():
            raise InceptionWeightsError(f"Inception weights not found: {path} (pass --inception-weights "
                                        f"PATH to pytorch-fid's {INCEPTION_FILE})")
        from .checkpoint import CheckpointError, load_torch_file
        try:
            state = load_torch_file(path, "Inception-v3 weights file")
        except CheckpointError as e:
            raise InceptionWeightsError(f"{e} (pass --inception-weights PATH to pytorch-fid's "
                                        f"{INCEPTION_FILE})") from None
        m = cls()
        m.load(state, path)
        return m

    def load(self, state: Mapping[str, torch.Tensor], path="Inception weights") -> None:
        if not isinstance(state, Mapping):
            raise InceptionWeightsError(f"{path} is not a state dict")
        own = {k: v for k, v in self.state_dict().items() if not k.endswith("num_batches_tracked")}
        missing = [k for k in own if k not in state]
        if missing:
            raise InceptionWeightsError(f"{path} is not an Inception-v3 state dict: missing {missing[:3]} "
                                        f"({len(missing)} keys)")
        for k, v in own.items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise InceptionWeightsError(f"{path}: {k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}")
        self.load_state_dict({k: state[k].float() for k in own}, strict=False)

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x.float(), size=(self.input_size, self.input_size), mode="bilinear",
                          align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------
def gaussian_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"need at least 2 feature vectors, got shape {feats.shape}")
    return feats.mean(0), np.cov(feats, rowvar=False)


def frechet_distance(mu1, s1, mu2, s2) -> float:
    """|mu1 - mu2|^2 + tr(s1 + s2 - 2 (s1 s2)^(1/2)), with the trace of the matrix square root
    computed from the symmetric form s1^(1/2) s2 s1^(1/2) (exact for PSD covariances)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root1 @ s2 @ root1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(ev, 0, None)).sum())
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)
    return max(d, 0.0)


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """FID of two feature sets (rows). With fewer samples than dimensions (DFID's small sets) it
    uses tr((S1 S2)^(1/2)) = nuclear norm of X1 X2^T / sqrt((n1-1)(n2-1)) for the centred
    features X1, X2: the same value as the d x d route, without any d x d decomposition."""
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    n1, n2, d = len(f1), len(f2), f1.shape[1]
    if n1 < 2 or n2 < 2:
        raise ValueError(f"FID needs at least 2 samples per set, got {n1} and {n2}")
    if n1 * n2 > d * d:
        return frechet_distance(*gaussian_stats(f1), *gaussian_stats(f2))
    x1, x2 = f1 - f1.mean(0), f2 - f2.mean(0)
    c1, c2 = n1 - 1, n2 - 1
    tr_sqrt = float(np.linalg.svd(x1 @ x2.T, compute_uv=False).sum()) / math.sqrt(c1 * c2)
    dist = float(((f1.mean(0) - f2.mean(0)) ** 2).sum() + (x1 * x1).sum() / c1 + (x2 * x2).sum() / c2
                 - 2 * tr_sqrt)
    return max(dist, 0.0)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def _features(net: nn.Module, images: torch.Tensor, batch: int, device) -> np.ndarray:
    out = [net(images[i:i + batch].to(device)).double().cpu() for i in range(0, len(images), batch)]
    return torch.cat(out).numpy()


def _load_folder(folder: str | Path, size: int, limit: int | None) -> torch.Tensor:
    from .data import MixedFolders
    from .train_config import DataSource
    mix = MixedFolders([DataSource(str(folder))], size, what=str(folder))
    n = len(mix) if limit is None else min(limit, len(mix))
    return torch.stack([mix.dataset[i] for i in range(n)])


@torch.no_grad()
def evaluate(G: nn.Module, faces: torch.Tensor, targets: torch.Tensor, inception: nn.Module,
             lpips: nn.Module | None = None, styles: int = 10, dfid_inputs: int = 50, seed: int = 0,
             batch: int = 16, device="cpu") -> dict:
    """Metrics of translating ``faces`` with ``G`` against ``targets`` (both N x 3 x S x S)."""
    gen = torch.Generator().manual_seed(seed)
    G = G.to(device).eval()
    inception = inception.to(device).eval()
    latent = G.latent_dim
    target_feats = _features(inception, targets, batch, device)

    def translate(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        outs = []
        for i in range(0, len(x), batch):
            content = G.encode(x[i:i + batch].to(device)).content
            outs.append(G.decode(content, z[i:i + batch].to(device)).clamp(-1, 1).cpu())
        return torch.cat(outs)

    z = torch.randn(len(faces), latent, generator=gen)
    fakes = translate(faces, z)
    fid = fid_from_features(_features(inception, fakes, batch, device), target_feats)

    dfids, lp = [], []
    k = min(dfid_inputs, len(faces))
    for i in range(k):
        one = faces[i:i + 1].expand(styles, -1, -1, -1)
        zs = torch.randn(styles, latent, generator=gen)
        outs = translate(one, zs)
        dfids.append(fid_from_features(_features(inception, outs, batch, device), target_feats))
        if lpips is not None and styles >= 2:
            a, b = torch.triu_indices(styles, styles, offset=1)
            d = torch.cat([lpips(outs[a[j:j + batch]].to(device), outs[b[j:j + batch]].to(device)).flatten().cpu()
                           for j in range(0, len(a), batch)])
            lp.append(float(d.mean()))
    out = {"fid": fid, "dfid": float(np.mean(dfids)), "dfid_std": float(np.std(dfids)),
           "dfid_inputs": k, "styles_per_input": styles, "n_faces": len(faces), "n_targets": len(targets)}
    if lp:
        out["lpips_diversity"] = float(np.mean(lp))
        out["lpips_diversity_std"] = float(np.std(lp))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--test-a", required=True, help="source-domain test images (faces)")
    p.add_argument("--test-b", required=True, help="target-domain test images (anime)")
    p.add_argument("--which", default="G_A2B_ema", help="generator key (default G_A2B_ema)")
    p.add_argument("--inception-weights", help=f"local Inception-v3 weights ({INCEPTION_FILE})")
    p.add_argument("--lpips-weights", help="VGG16 weights for LPIPS diversity (torchvision layout)")
    p.add_argument("--lpips-lin", help="LPIPS v0.1 linear weights (default: from an installed lpips package)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS diversity")
    p.add_argument("--styles", type=int, default=10, help="random styles per face for DFID / LPIPS (10)")
    p.add_argument("--dfid-inputs", type=int, default=50, help="faces used for DFID (50)")
    p.add_argument("--max-a", type=int, help="use at most N test faces")
    p.add_argument("--max-b", type=int, help="use at most N target images")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, help="write the metrics JSON here (default: print only)")
    a = p.parse_args(argv)
    if a.styles < 2:
        p.error("--styles must be >= 2")
    from .checkpoint import CheckpointError, load_generator
    from .data import DataError
    from .lpips import LPIPS, LPIPSWeightsError
    t0 = time.perf_counter()
    try:
        inception = InceptionV3Features.from_file(a.inception_weights)
        lpips = None if a.no_lpips else LPIPS.from_files(a.lpips_weights, a.lpips_lin)
        G = load_generator(a.checkpoint, which=a.which)
        faces = _load_folder(a.test_a, G.size, a.max_a)
        targets = _load_folder(a.test_b, G.size, a.max_b)
        if len(faces) < 2 or len(targets) < 2:
            raise DataError("FID needs at least 2 images in --test-a and in --test-b")
        res = evaluate(G, faces, targets, inception, lpips, a.styles, a.dfid_inputs, a.seed, a.batch, a.device)
    except (InceptionWeightsError, LPIPSWeightsError, CheckpointError, DataError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    res.update({"checkpoint": str(a.checkpoint), "generator": a.which, "config": G.config.to_dict(),
                "inception_weights": str(a.inception_weights), "seed": a.seed,
                "seconds": round(time.perf_counter() - t0, 2)})
    text = json.dumps(res, indent=2)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
