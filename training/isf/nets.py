"""The ISF-GAN networks: the implicit style function and the attribute discriminator/classifier.

ImplicitStyleFunction (Liu et al. 2021, ISF-GAN; the authors' ``WNetwork``): the condition ``d``
(target attributes, :class:`~training.isf.attributes.AttributeVocab`) and a random vector ``n``
are concatenated and go through a first MLP; its output is the condition of an AdaLN layer (layer
norm of the style code, whose scale and shift come from the condition); a second MLP gives the
new style code. With ``residual`` the second MLP's output is added to the input code (the
authors' ``use_residual``): at 8 dimensions a layer norm keeps neither the code's mean nor its
length, so without it "change nothing" cannot even be represented.

``noise_scale``: the random vector (N(0, 1), ``noise_dim`` values) enters the first MLP scaled
by it. At 1 a 16-d normal vector drowns the one-hot condition: measured on the demo model with a
fixed discriminator, an ISF trained on hair colour alone stayed at chance (0.09-0.13 after 200
steps) with the noise at scale 1 and reached 0.65 at 0.25 (0.86 without noise). The
diversity-sensitive loss still makes different random vectors give different results.

AttributeNet: a residual convnet (pre-activation blocks with average-pool downsampling, as the
authors' discriminator) down to 4 x 4, a shared hidden layer, then one classification head per
attribute and, for the discriminator, a real/fake head (the authors' ``out_src`` / ``out_cls``). The evaluation classifier is another AttributeNet
without the real/fake head, trained separately.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

SPACES = ("latent", "mapped")


@dataclass(frozen=True)
class ISFNetConfig:
    """What rebuilds an implicit style function (stored in every ISF checkpoint)."""

    space: str = "latent"        # "latent": the 8-d code the engines take; "mapped": the 512-d style
    style_dim: int = 8           # size of the codes it edits (latent_dim, or 512 when mapped)
    attr_dim: int = 0            # AttributeVocab.dim (values + a keep slot per attribute); 0: unset
    noise_dim: int = 16          # the random vector n (the authors' rnd_dim is 64, for 512-d W+)
    noise_scale: float = 0.25    # n ~ N(0, 1) enters the first MLP times this (see below)
    hidden: int = 256            # width of both MLPs
    mlp1_layers: int = 4         # the authors: 1 + 3 shared layers
    mlp2_layers: int = 3         # the authors: 3
    residual: bool = True

    def __post_init__(self):
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {self.space!r}")
        for k in ("style_dim", "noise_dim", "hidden", "mlp1_layers", "mlp2_layers"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(self, k)}")
        if not (self.noise_scale >= 0 and math.isfinite(self.noise_scale)):
            raise ValueError(f"noise_scale must be a finite number >= 0, got {self.noise_scale}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ISFNetConfig":
        return cls(**d)


class AdaLN(nn.Module):
    """``(1 + gamma(h)) * LayerNorm(x) + beta(h)``."""

    def __init__(self, dim: int, cond_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(cond_dim, 2 * dim)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(h).chunk(2, dim=-1)
        return (1 + gamma) * self.norm(x) + beta


def _mlp(dims: Sequence[int], norm_last: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        last = i == len(dims) - 2
        if not last or norm_last:
            layers += [nn.ReLU(), nn.LayerNorm(b)]
    return nn.Sequential(*layers)


class ImplicitStyleFunction(nn.Module):
    """``forward(code N x style_dim, d N x attr_dim, n N x noise_dim) -> N x style_dim``."""

    def __init__(self, cfg: ISFNetConfig):
        super().__init__()
        if cfg.attr_dim < 1:
            raise ValueError("ISFNetConfig.attr_dim is unset: it is the attribute vocabulary's dim")
        self.cfg = cfg
        h = cfg.hidden
        self.mlp1 = _mlp([cfg.attr_dim + cfg.noise_dim] + [h] * cfg.mlp1_layers, norm_last=True)
        self.adaln = AdaLN(cfg.style_dim, h)
        self.mlp2 = _mlp([cfg.style_dim] + [h] * (cfg.mlp2_layers - 1) + [cfg.style_dim],
                         norm_last=False)
        if cfg.residual:                 # start at the identity: the last layer outputs 0
            nn.init.zeros_(self.mlp2[-1].weight)
            nn.init.zeros_(self.mlp2[-1].bias)

    def forward(self, code: torch.Tensor, d: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if code.ndim != 2 or code.shape[1] != cfg.style_dim:
            raise ValueError(f"style codes must be N x {cfg.style_dim}, got {tuple(code.shape)}")
        if d.shape != (code.shape[0], cfg.attr_dim) or n.shape != (code.shape[0], cfg.noise_dim):
            raise ValueError(f"condition must be N x {cfg.attr_dim} and noise N x {cfg.noise_dim}, "
                             f"got {tuple(d.shape)} and {tuple(n.shape)}")
        h = self.mlp1(torch.cat([d, n * cfg.noise_scale], dim=1))
        out = self.mlp2(self.adaln(code, h))
        return code + out if cfg.residual else out


class DownBlock(nn.Module):
    """Pre-activation residual block halving the resolution (average pooling), as the ISF-GAN
    authors' discriminator (StarGAN v2's ``ResBlk``): plain convolutions, PyTorch's default
    initialisation (the GNR blocks' equalised learning rate would make Adam's steps
    sqrt(fan-in) times smaller, and these nets are trained for a few thousand steps)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1)
        self.conv2 = nn.Conv2d(cin, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.avg_pool2d(x if self.skip is None else self.skip(x), 2)
        h = F.avg_pool2d(self.conv1(F.leaky_relu(x, 0.2)), 2)
        return (s + self.conv2(F.leaky_relu(h, 0.2))) / math.sqrt(2)


class AttributeNet(nn.Module):
    """Image -> (real/fake logit N or None, [N x K_a logits per attribute])."""

    def __init__(self, size: int, classes: Sequence[int], width: int = 32, adversarial: bool = True):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"image size must be a power of two >= 8, got {size}")
        self.size, self.classes = size, tuple(int(k) for k in classes)
        cap = width * 8
        blocks: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1)]
        ch = width
        for _ in range(int(math.log2(size)) - 2):          # size -> 4
            out = min(ch * 2, cap)
            blocks.append(DownBlock(ch, out))
            ch = out
        self.blocks = nn.ModuleList(blocks)
        self.hidden = nn.Sequential(nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(ch * 16, 256),
                                    nn.LeakyReLU(0.2))
        self.adv = nn.Linear(256, 1) if adversarial else None
        self.cls = nn.Linear(256, sum(self.classes))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each block (for a feature distance)."""
        out = []
        for b in self.blocks:
            x = b(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        h = self.hidden(self.features(x)[-1])
        logits = list(self.cls(h).split(self.classes, dim=1))
        return (self.adv(h).squeeze(1) if self.adv is not None else None), logits


def feature_distance(net: AttributeNet, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS's formula on ``net``'s block activations, uncalibrated (no learned per-channel
    weights): channel-unit-normalised features, squared difference summed over channels, mean
    over space, mean over blocks. N values; 0 for identical images."""
    total = 0
    fa, fb = net.features(a), net.features(b)
    for x, y in zip(fa, fb):
        x = x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        y = y / (y.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        total = total + (x - y).pow(2).sum(1).mean(dim=(1, 2))
    return total / len(fa)
