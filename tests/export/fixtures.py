"""Shared helpers for the export and engine tests: a tiny generator with every parameter
non-trivial, a tiny checkpoint on disk, and real face crops."""
from __future__ import annotations

import torch

from training import ModelConfig, build_networks
from training.checkpoint import make_checkpoint, save_checkpoint

TINY = ModelConfig(size=32, num_down=2, latent_dim=8, n_mlp=2, n_res=1, channel_divisor=16)
SMALL = ModelConfig(size=64, num_down=3, latent_dim=8, n_mlp=2, n_res=1, channel_divisor=16)


def perturbed_networks(cfg: ModelConfig, seed: int = 0) -> dict:
    """Every network of a checkpoint, random weights, biases perturbed so they matter (the
    authors' init sets them to 0 or 1)."""
    torch.manual_seed(seed)
    nets = build_networks(cfg)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, net in nets.items():
            for pname, p in net.named_parameters():
                if "bias" in pname:
                    p.add_(torch.randn(p.shape, generator=g) * 0.1)
            net.eval().requires_grad_(False)
    return nets


def tiny_generator(cfg: ModelConfig = TINY, seed: int = 0):
    return perturbed_networks(cfg, seed)["G_A2B_ema"]


def write_checkpoint(path, cfg: ModelConfig = TINY, seed: int = 0):
    nets = perturbed_networks(cfg, seed)
    return save_checkpoint(make_checkpoint(nets, cfg, iter=0), path)


def reference(G, x, z):
    with torch.no_grad():
        return G.decode(G.encode(x).content, z)


def rel_err(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max())
