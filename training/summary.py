"""Size and cost of a generator: parameters per part and FLOPs per frame, computed from the model.

    python -m training.summary                       # released config
    python -m training.summary --checkpoint CKPT     # a checkpoint's own config
    python -m training.summary --size 128 --channel-divisor 4
"""
from __future__ import annotations

import argparse
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import ModelConfig
from .networks import Generator


def count_parameters(G: Generator) -> dict[str, int]:
    parts = {"encoder": G.encoder, "mapping": G.mapping}
    out = {name: sum(p.numel() for p in m.parameters()) for name, m in parts.items()}
    out["total"] = sum(p.numel() for p in G.parameters())
    out["decoder"] = out["total"] - out["encoder"] - out["mapping"]
    return out


@torch.no_grad()
def count_flops(G: Generator, batch: int = 1) -> dict[str, float]:
    """FLOPs (2 x multiply-adds) per frame of content encoding and of decoding with one style,
    the product's per-frame work. Counted by PyTorch's FlopCounterMode on a real forward pass."""
    G = G.eval()
    device = next(G.parameters()).device      # works on the "meta" device too (no memory)
    x = torch.zeros(batch, 3, G.size, G.size, device=device)
    z = torch.zeros(1, G.latent_dim, device=device)
    with FlopCounterMode(display=False) as enc:
        content = G.encoder(x).content
    with FlopCounterMode(display=False) as dec:
        G.decode(content, z)
    e, d = enc.get_total_flops() / batch, dec.get_total_flops() / batch
    return {"encode": float(e), "decode": float(d), "total": float(e + d)}


def summarize(G: Generator) -> dict:
    return {"config": G.config.to_dict(), "parameters": count_parameters(G),
            "flops_per_frame": count_flops(G)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.summary", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="read the config (and weights) from this checkpoint")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--num-down", type=int, default=4)
    p.add_argument("--channel-divisor", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    if args.checkpoint:
        from .checkpoint import load_generator
        G = load_generator(args.checkpoint)
    else:
        G = Generator.from_config(ModelConfig(size=args.size, num_down=args.num_down,
                                              channel_divisor=args.channel_divisor))
    s = summarize(G)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table
    t = Table(title=f"Generator {G.config.describe()}")
    t.add_column("part")
    t.add_column("parameters", justify="right")
    t.add_column("GFLOP / frame", justify="right")
    prm, fl = s["parameters"], s["flops_per_frame"]
    t.add_row("encoder", f"{prm['encoder'] / 1e6:.2f} M", f"{fl['encode'] / 1e9:.1f}")
    t.add_row("mapping", f"{prm['mapping'] / 1e6:.2f} M", "")
    t.add_row("decoder", f"{prm['decoder'] / 1e6:.2f} M", f"{fl['decode'] / 1e9:.1f}")
    t.add_row("total", f"{prm['total'] / 1e6:.2f} M", f"{fl['total'] / 1e9:.1f}")
    Console().print(t)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
