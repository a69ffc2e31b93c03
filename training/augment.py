"""The authors' training augmentation, with kornia, on the training device.

``train.py`` of mchong6/GANsNRoses builds, for 256x256 data::

    RandomAffine(degrees=(-20, 20), scale=(0.8, 1.2), translate=(0.1, 0.1), shear=0.15)
    -> Resize(256 + 30) -> RandomCrop((256, 256)) -> RandomHorizontalFlip()

with kornia's defaults: the affine is applied to each image with probability 0.5 (kornia's ``p``),
``shear`` is in degrees (so +-0.15 degrees: next to nothing), out-of-frame pixels are zero (mid-grey
in [-1, 1]), and the flip has probability 0.5. Parameters are drawn per image from PyTorch's
global RNG, so a run that restores the RNG state redraws the same augmentations.

For other model sizes the +30 px margin scales with the size (``aug_resize_extra`` is 30/256).
"""
from __future__ import annotations

import torch
from torch import nn

from .train_config import TrainConfig


class AuthorsAugment(nn.Module):
    """N x 3 x S x S -> N x 3 x S x S, a different random draw per image (differentiable)."""

    affine_p = 0.5   # kornia's default, which the authors did not change

    def __init__(self, size: int, degrees: float = 20.0, scale=(0.8, 1.2), translate: float = 0.1,
                 shear: float = 0.15, resize_extra: float = 30 / 256, hflip: float = 0.5):
        super().__init__()
        import kornia
        import kornia.augmentation as K

        self.size = int(size)
        self.resized = self.size + int(round(resize_extra * self.size))
        self.affine = K.RandomAffine(degrees=(-degrees, degrees), translate=(translate, translate),
                                     scale=tuple(scale), shear=shear, p=self.affine_p)
        self.resize = kornia.geometry.transform.Resize(self.resized)
        self.crop = K.RandomCrop((self.size, self.size))
        self.flip = K.RandomHorizontalFlip(p=hflip)

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> "AuthorsAugment":
        return cls(cfg.model.size, cfg.aug_degrees, cfg.aug_scale, cfg.aug_translate, cfg.aug_shear,
                   cfg.aug_resize_extra, cfg.aug_hflip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-1] != self.size or x.shape[-2] != self.size:
            raise ValueError(f"augment expects N x 3 x {self.size} x {self.size}, got {tuple(x.shape)}")
        x = self.affine(x)
        if self.resized != self.size:
            x = self.resize(x)
            x = self.crop(x)
        return self.flip(x)
