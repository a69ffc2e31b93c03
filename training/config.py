"""Model configuration: one frozen dataclass, stored as a plain dict inside every checkpoint we write.

The defaults are the authors' released GANs N' Roses checkpoint (selfie2anime, 256x256):
``Generator(size=256, num_down=4, latent_dim=8, n_mlp=5, n_res=1, lr_mlp=0.01)``.
``channel_divisor`` is ours: it divides every width of the authors' channel table, so tests and
the shipped demo model can use the same architecture at a fraction of the cost.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

# The authors' width per feature-map resolution (model.py `channels`). Their `channel_multiplier`
# argument is accepted but never used: this table is what sets every width.
CHANNELS: dict[int, int] = {
    4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16,
}
STYLE_DIM = 512        # width of the mapped style (fixed in the authors' code)
LATENT_D_WIDTH = 256   # width of the latent discriminator's MLP (fixed in the authors' code)
MIN_CHANNELS = 4


@dataclass(frozen=True)
class ModelConfig:
    size: int = 256
    num_down: int = 4
    latent_dim: int = 8
    n_mlp: int = 5
    n_res: int = 1
    lr_mlp: float = 0.01
    channel_multiplier: int = 1
    channel_divisor: int = 1
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)

    def __post_init__(self):
        log = math.log2(self.size) if self.size > 0 else -1
        if log != int(log) or not 32 <= self.size <= 1024:
            raise ValueError(f"size must be a power of two in [32, 1024], got {self.size}")
        if not 1 <= self.num_down <= int(log) - 2:
            raise ValueError(
                f"num_down must be in [1, {int(log) - 2}] for size {self.size} "
                f"(the content map must stay at least 4x4), got {self.num_down}")
        for name in ("latent_dim", "n_mlp", "channel_divisor"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_res < 0:
            raise ValueError(f"n_res must be >= 0, got {self.n_res}")
        if self.lr_mlp <= 0:
            raise ValueError(f"lr_mlp must be > 0, got {self.lr_mlp}")
        object.__setattr__(self, "blur_kernel", tuple(int(k) for k in self.blur_kernel))

    # -- derived sizes -------------------------------------------------------------------------
    def channels(self, resolution: int) -> int:
        """Width of a feature map at ``resolution`` (the authors' table divided by channel_divisor)."""
        return max(CHANNELS[resolution] // self.channel_divisor, MIN_CHANNELS)

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def content_size(self) -> int:
        """Side of the content code (16 for the released 256 / num_down=4 model)."""
        return self.size >> self.num_down

    @property
    def content_channels(self) -> int:
        return self.channels(self.content_size)

    # -- (de)serialisation: plain types only, so torch.load(weights_only=True) reads it ---------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["blur_kernel"] = list(self.blur_kernel)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config fields {unknown}; known: {sorted(known)}")
        return cls(**d)

    def describe(self) -> str:
        diff = {k: v for k, v in self.to_dict().items() if v != RELEASED.to_dict()[k]}
        return "released config" if not diff else ", ".join(f"{k}={v}" for k, v in diff.items())


RELEASED = ModelConfig()
