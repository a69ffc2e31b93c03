"""GANs N' Roses: networks, checkpoints (the authors' format) and training.

    from training import load_generator
    G = load_generator("ckpt/001500.pt", which="G_A2B_ema", device="cpu")
    content, style = G.encode(x)          # x: N x 3 x 256 x 256 in [-1, 1]
    y = G.decode(content, z)              # z: N x 8 (or 1 x 8 for the whole batch)
"""
from .checkpoint import (CheckpointError, load_generator, load_networks, make_checkpoint,
                         read_checkpoint, save_checkpoint)
from .config import RELEASED, ModelConfig
from .networks import Discriminator, Encoded, Generator, LatDiscriminator, build_networks

__all__ = [
    "CheckpointError", "Discriminator", "Encoded", "Generator", "LatDiscriminator", "ModelConfig",
    "RELEASED", "build_networks", "load_generator", "load_networks", "make_checkpoint",
    "read_checkpoint", "save_checkpoint",
]
