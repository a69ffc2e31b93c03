"""PyTorch backend: the baked generator (:mod:`export.bake`) run eagerly.

* CPU: float32, blurs kept as depthwise convs (the layout measured fastest there).
* CUDA: float16, channels_last, blurs folded into the convolutions, and one CUDA graph captured
  per batch size the first time it is seen (the live path runs the same shapes every frame, so
  kernel launches are replayed instead of re-issued). Inputs are copied into the graph's static
  buffer; the output is copied out (the next replay overwrites the static one).

``TorchEngine`` has a baked style; :meth:`TorchEngine.rebake` changes it (seconds: weights are
recomputed in float64) without invalidating captured graphs (weights are copied in place).
``TorchDynamicStyleEngine`` runs the style-as-input model and has a per-frame ``set_style``.
"""
from __future__ import annotations

import torch

from export.bake import bake, bake_dynamic, default_layout
from training.style import StyleCode

from .base import BaseEngine, as_style, engine_device

__all__ = ["TorchEngine", "TorchDynamicStyleEngine", "open_torch"]


class TorchEngine(BaseEngine):
    """The locked-style generator in PyTorch (see the module docstring)."""

    def __init__(self, G, style: StyleCode | None, *, device="cpu", dtype: torch.dtype | None = None,
                 max_batch: int = 8, cuda_graphs: bool | None = None,
                 channels_last: bool | None = None, fold_blur: bool | None = None,
                 _dynamic: bool = False):
        dev = engine_device(device)
        cuda = dev.type == "cuda"
        dtype = dtype or (torch.float16 if cuda else torch.float32)
        cfg = G.config
        super().__init__(device=dev, dtype=dtype, size=cfg.size, max_batch=max_batch,
                         dynamic_style=_dynamic, latent_dim=cfg.latent_dim)
        self._G = G.to("cpu").eval()
        fold, up = default_layout(dev)
        self._layout = dict(fold_blur=fold if fold_blur is None else fold_blur, upsample=up)
        self.channels_last = cuda if channels_last is None else channels_last
        self.cuda_graphs = cuda if cuda_graphs is None else cuda_graphs
        if self.cuda_graphs and not cuda:
            raise ValueError("CUDA graphs need a CUDA device")
        prec = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))
        self.name = f"torch-{dev.type} {prec}" + (" +cudagraphs" if self.cuda_graphs else "")
        if _dynamic:
            self.style = as_style(style, cfg.latent_dim) if style is not None else \
                StyleCode.default(cfg.latent_dim)
            self.model = bake_dynamic(self._G, dtype=dtype, device=dev, **self._layout)
            self._z = self.style.tensor(dev)          # static: graphs read it in place
        else:
            if style is None:
                raise ValueError("TorchEngine needs a style to bake (or use TorchDynamicStyleEngine)")
            self.style = as_style(style, cfg.latent_dim)
            self.model = bake(self._G, self.style, dtype=dtype, device=dev, **self._layout)
            self._z = None
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if cuda:
            # fixed shapes every frame: let cuDNN time its algorithms once (during the warm-up
            # before capture), as the authors' predict.py does (FACTS.md: 14.1 -> 7.8 ms eager)
            torch.backends.cudnn.benchmark = True
        self._graphs: dict[int, tuple] = {}
        self._pool = None

    # -- running ----------------------------------------------------------------------------
    def _forward(self, x):
        return self.model(x, self._z) if self.dynamic_style else self.model(x)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    @torch.no_grad()
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if not self.cuda_graphs:
            return self._forward(self._prepare(x)).contiguous()
        n = x.shape[0]
        entry = self._graphs.get(n)
        if entry is None:
            entry = self._graphs[n] = self._capture(n)
        graph, static_in, static_out = entry
        static_in.copy_(x)
        graph.replay()
        # a copy (the next replay overwrites static_out), in the default NCHW layout
        return static_out.clone(memory_format=torch.contiguous_format)

    def _capture(self, n: int):
        s = self.size
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        static_in = torch.zeros(n, 3, s, s, device=self.device, dtype=self.dtype).contiguous(memory_format=fmt)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):                    # warm-up: cuDNN picks its algorithms here
                self._forward(static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            static_out = self._forward(static_in)
        return graph, static_in, static_out

    # -- style --------------------------------------------------------------------------------
    def rebake(self, style) -> None:
        """Change a baked style: weights recomputed (float64, seconds for the released model)
        and copied in place, so captured CUDA graphs stay valid."""
        if self.dynamic_style:
            self.set_style(style)
            return
        style = as_style(style, self.latent_dim)
        fresh = bake(self._G, style, dtype=self.dtype, device=self.device, **self._layout)
        if self.channels_last:
            fresh = fresh.to(memory_format=torch.channels_last)
        self.model.load_baked(fresh)
        self.style = style

    def close(self) -> None:
        self._graphs.clear()


class TorchDynamicStyleEngine(TorchEngine):
    """Style-as-input generator: ``set_style`` is a copy of 8 floats, cheap every frame."""

    def __init__(self, G, style: StyleCode | None = None, **kwargs):
        super().__init__(G, style, _dynamic=True, **kwargs)

    def set_style(self, style) -> None:
        style = as_style(style, self.latent_dim)
        with torch.no_grad():
            self._z.copy_(style.tensor(self.device))
        self.style = style


def open_torch(checkpoint, style: StyleCode | None, *, dynamic_style: bool = False, device="cpu",
               which: str = "G_A2B_ema", **kwargs) -> TorchEngine:
    """A torch engine from a checkpoint file (or an already loaded Generator)."""
    from training.networks import Generator

    if isinstance(checkpoint, Generator):
        G = checkpoint
    else:
        from training.checkpoint import load_generator
        G = load_generator(checkpoint, which=which, device="cpu")
    if dynamic_style:
        return TorchDynamicStyleEngine(G, style, device=device, **kwargs)
    return TorchEngine(G, style, device=device, **kwargs)
