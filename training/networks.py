"""GANs N' Roses networks: generator (encoder + mapping + decoder), image discriminator, latent
discriminator, and the StyleGAN2 operations they are built from.

Module and parameter names follow the authors' code (mchong6/GANsNRoses, model.py) one for one, so
``load_state_dict(strict=True)`` accepts the released checkpoint. Every operation is plain PyTorch
(no CUDA extensions are compiled at run time); the FIR filter of StyleGAN2 is a depthwise
convolution, which also exports to ONNX as a single Conv node.

Shapes at the released config (256x256 RGB in [-1, 1]):
    encode:  N x 3 x 256 x 256  ->  content N x 512 x 16 x 16, style N x 8
    mapping: N x 8              ->  N x 512
    decode:  content, N x 8 (or 1 x 8, shared by the batch)  ->  N x 3 x 256 x 256
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .config import LATENT_D_WIDTH, STYLE_DIM, ModelConfig

SQRT2 = math.sqrt(2.0)
DEFAULT_BLUR = (1, 3, 3, 1)


# ---------------------------------------------------------------------------------------------
# Reference operations
# ---------------------------------------------------------------------------------------------
def make_kernel(k: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Normalised 2-D FIR kernel; a 1-D kernel is made separable by an outer product."""
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative pads crop), convolve with ``kernel``, decimate.

    Same result as StyleGAN2's ``upfirdn2d`` (the kernel is flipped, i.e. a true convolution),
    written as one depthwise ``conv2d`` with ``stride=down``.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    p0, p1 = pad
    if p0 or p1:
        x = F.pad(x, (p0, p1, p0, p1))
    kh, kw = kernel.shape
    weight = torch.flip(kernel, (0, 1)).to(x.dtype).reshape(1, 1, kh, kw).expand(c, 1, kh, kw)
    return F.conv2d(x, weight, stride=down, groups=c)


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float = 0.2,
                     scale: float = SQRT2) -> torch.Tensor:
    """Bias (along the channel axis: 1, or the last axis of a 3-D input), leaky ReLU, gain."""
    if bias is not None:
        if x.ndim == 3:
            x = x + bias.view(1, 1, -1)
        else:
            x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, negative_slope=negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel: int, negative_slope: float = 0.2, scale: float = SQRT2):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x):
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


class ScaledLeakyReLU(nn.Module):
    def __init__(self, negative_slope: float = 0.2):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, negative_slope=self.negative_slope) * SQRT2


class Upsample(nn.Module):
    """2x upsampling with a FIR filter (used on the RGB skip path)."""

    def __init__(self, kernel: Sequence[int], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * factor ** 2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class Blur(nn.Module):
    def __init__(self, kernel: Sequence[int], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * upsample_factor ** 2
        self.register_buffer("kernel", k)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad)


class EqualConv2d(nn.Module):
    """Conv2d with equalised learning rate: weights stored N(0, 1), scaled by 1/sqrt(fan_in)."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride,
                        padding=self.padding)

    def extra_repr(self):
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, {k}, stride={self.stride}, padding={self.padding}"


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate and an optional fused leaky ReLU."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: str | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x):
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias=bias)

    def extra_repr(self):
        o, i = self.weight.shape
        return f"{i}, {o}, lr_mul={self.lr_mul}, activation={self.activation}"


# ---------------------------------------------------------------------------------------------
# Decoder blocks (style-modulated)
# ---------------------------------------------------------------------------------------------
class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution (no noise: the GNR decoder injects none).

    ``style`` is the mapped style, ``B x style_dim`` with B equal to the batch (one style per
    image) or 1 (one style shared by the whole batch, computed as an ordinary convolution).
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, downsample: bool = False,
                 blur_kernel: Sequence[int] = DEFAULT_BLUR):
        super().__init__()
        self.eps = 1e-8
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.kernel_size = kernel_size
        self.upsample = upsample
        self.downsample = downsample
        self.demodulate = demodulate
        factor = 2
        if upsample:
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1),
                             upsample_factor=factor)
        if downsample:
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)

    def extra_repr(self):
        return (f"{self.in_channel}, {self.out_channel}, {self.kernel_size}, "
                f"upsample={self.upsample}, downsample={self.downsample}")

    def modulated_weight(self, style: torch.Tensor) -> torch.Tensor:
        """Per-style convolution weights, ``B x out x in x k x k`` (modulated, demodulated)."""
        s = self.modulation(style).view(-1, 1, self.in_channel, 1, 1)
        w = self.scale * self.weight * s
        if self.demodulate:
            demod = torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4)) + self.eps)
            w = w * demod.view(-1, self.out_channel, 1, 1, 1)
        return w

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        n, c, h, w_ = x.shape
        weight = self.modulated_weight(style)
        b = weight.shape[0]
        if b == 1:            # one style for the whole batch: an ordinary convolution
            w = weight[0]
            if self.upsample:
                return self.blur(F.conv_transpose2d(x, w.transpose(0, 1), stride=2))
            if self.downsample:
                return F.conv2d(self.blur(x), w, stride=2)
            return F.conv2d(x, w, padding=self.padding)
        if b != n:
            raise ValueError(f"style batch {b} does not match input batch {n} (use 1 or {n})")
        k = self.kernel_size
        if self.upsample:     # grouped transposed conv, one group per image
            w = weight.transpose(1, 2).reshape(n * c, self.out_channel, k, k)
            out = F.conv_transpose2d(x.reshape(1, n * c, h, w_), w, stride=2, groups=n)
            return self.blur(out.reshape(n, self.out_channel, *out.shape[-2:]))
        w = weight.reshape(n * self.out_channel, c, k, k)
        if self.downsample:
            x = self.blur(x)
            out = F.conv2d(x.reshape(1, n * c, *x.shape[-2:]), w, stride=2, groups=n)
        else:
            out = F.conv2d(x.reshape(1, n * c, h, w_), w, padding=self.padding, groups=n)
        return out.reshape(n, self.out_channel, *out.shape[-2:])


class StyledConv(nn.Module):
    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, downsample: bool = False,
                 blur_kernel: Sequence[int] = DEFAULT_BLUR, demodulate: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim,
                                    demodulate=demodulate, upsample=upsample,
                                    downsample=downsample, blur_kernel=blur_kernel)
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x, style):
        return self.activate(self.conv(x, style))


class StyledResBlock(nn.Module):
    def __init__(self, in_channel: int, style_dim: int, blur_kernel: Sequence[int] = DEFAULT_BLUR,
                 demodulate: bool = True):
        super().__init__()
        self.conv1 = StyledConv(in_channel, in_channel, 3, style_dim, blur_kernel=blur_kernel,
                                demodulate=demodulate)
        self.conv2 = StyledConv(in_channel, in_channel, 3, style_dim, blur_kernel=blur_kernel,
                                demodulate=demodulate)

    def forward(self, x, style):
        return (self.conv2(self.conv1(x, style), style) + x) / SQRT2


class ToRGB(nn.Module):
    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[int] = DEFAULT_BLUR):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


# ---------------------------------------------------------------------------------------------
# Encoder / discriminator blocks
# ---------------------------------------------------------------------------------------------
class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d -> [FusedLeakyReLU | ScaledLeakyReLU]; indices match the authors'."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int,
                 downsample: bool = False, blur_kernel: Sequence[int] = DEFAULT_BLUR,
                 bias: bool = True, activate: bool = True):
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channel, out_channel, kernel_size, padding=padding,
                                  stride=stride, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channel) if bias else ScaledLeakyReLU(0.2))
        super().__init__(*layers)


class ResBlock(nn.Module):
    def __init__(self, in_channel: int, out_channel: int, blur_kernel: Sequence[int] = DEFAULT_BLUR,
                 downsample: bool = True):
        super().__init__()
        self.conv1 = ConvLayer(in_channel, in_channel, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(in_channel, out_channel, 3, downsample=downsample,
                               blur_kernel=blur_kernel)
        if downsample or in_channel != out_channel:
            self.skip = ConvLayer(in_channel, out_channel, 1, downsample=downsample,
                                  blur_kernel=blur_kernel, activate=False, bias=False)
        else:
            self.skip = None

    def forward(self, x):
        skip = x if self.skip is None else self.skip(x)
        return (self.conv2(self.conv1(x)) + skip) / SQRT2


class Encoded(NamedTuple):
    content: torch.Tensor   # N x C x s x s: where the parts of the face are
    style: torch.Tensor     # N x latent_dim: how they are rendered


class Encoder(nn.Module):
    """Shared stem, then a content head (1x1 convs) and a style head (strided convs + MLP)."""

    def __init__(self, size: int, latent_dim: int, num_down: int, n_res: int,
                 channel_multiplier: int = 2, blur_kernel: Sequence[int] = DEFAULT_BLUR,
                 channel_divisor: int = 1):
        super().__init__()
        cfg = ModelConfig(size=size, num_down=num_down, latent_dim=latent_dim, n_res=n_res,
                          channel_divisor=channel_divisor, blur_kernel=tuple(blur_kernel))
        ch = cfg.channels
        log_size = cfg.log_size
        in_channel = ch(size)
        stem: list[nn.Module] = [ConvLayer(3, in_channel, 1)]
        for i in range(log_size, log_size - num_down, -1):
            out_channel = ch(2 ** (i - 1))
            stem.append(ResBlock(in_channel, out_channel, blur_kernel, downsample=True))
            in_channel = out_channel
        stem += [ResBlock(in_channel, in_channel, blur_kernel, downsample=False)
                 for _ in range(n_res)]
        self.stem = nn.Sequential(*stem)
        self.content = nn.Sequential(ConvLayer(in_channel, in_channel, 1),
                                     ConvLayer(in_channel, in_channel, 1))
        style: list[nn.Module] = []
        for i in range(log_size - num_down, 2, -1):
            out_channel = ch(2 ** (i - 1))
            style.append(ConvLayer(in_channel, out_channel, 3, downsample=True,
                                   blur_kernel=blur_kernel))
            in_channel = out_channel
        style += [nn.Flatten(),
                  EqualLinear(ch(4) * 4 * 4, ch(4), activation="fused_lrelu"),
                  EqualLinear(ch(4), latent_dim)]
        self.style = nn.Sequential(*style)

    def forward(self, x) -> Encoded:
        act = self.stem(x)
        return Encoded(self.content(act), self.style(act))


# ---------------------------------------------------------------------------------------------
# Top-level networks
# ---------------------------------------------------------------------------------------------
def _is_tracing() -> bool:
    return (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling())


class Generator(nn.Module):
    """GNR generator: ``encode`` splits an image into content and style; ``decode`` renders a
    content code with any 8-d style code (mapped to 512-d by ``mapping``)."""

    # Eval-mode inputs outside this band are rejected (e.g. 0..255 or 0..1 mistaken for [-1, 1]
    # would pass the lower bound but 0..255 fails the upper). Decoded images may exceed [-1, 1]
    # slightly, so the band is wider than the nominal range.
    input_range_limit = 1.5

    def __init__(self, size: int, num_down: int, latent_dim: int, n_mlp: int, n_res: int,
                 channel_multiplier: int = 1, blur_kernel: Sequence[int] = DEFAULT_BLUR,
                 lr_mlp: float = 0.01, channel_divisor: int = 1):
        super().__init__()
        self.config = ModelConfig(size=size, num_down=num_down, latent_dim=latent_dim,
                                  n_mlp=n_mlp, n_res=n_res, lr_mlp=lr_mlp,
                                  channel_multiplier=channel_multiplier,
                                  channel_divisor=channel_divisor, blur_kernel=tuple(blur_kernel))
        cfg = self.config
        self.size = size
        self.latent_dim = latent_dim
        self.style_dim = STYLE_DIM
        mapping = [EqualLinear(latent_dim, STYLE_DIM, lr_mul=lr_mlp, activation="fused_lrelu")]
        mapping += [EqualLinear(STYLE_DIM, STYLE_DIM, lr_mul=lr_mlp, activation="fused_lrelu")
                    for _ in range(n_mlp - 1)]
        self.mapping = nn.Sequential(*mapping)
        self.encoder = Encoder(size, latent_dim, num_down, n_res, channel_multiplier, blur_kernel,
                               channel_divisor)

        self.log_size = cfg.log_size
        in_log_size = self.log_size - num_down
        in_channel = cfg.channels(2 ** in_log_size)
        self.adain_bottleneck = nn.ModuleList(
            [StyledResBlock(in_channel, STYLE_DIM, blur_kernel) for _ in range(n_res)])
        self.conv1 = StyledConv(in_channel, in_channel, 3, STYLE_DIM, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(in_channel, STYLE_DIM, upsample=False, blur_kernel=blur_kernel)
        self.num_layers = num_down * 2 + 1
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()   # empty in the authors' code too; kept for parity
        self.to_rgbs = nn.ModuleList()
        for i in range(in_log_size + 1, self.log_size + 1):
            out_channel = cfg.channels(2 ** i)
            self.convs.append(StyledConv(in_channel, out_channel, 3, STYLE_DIM, upsample=True,
                                         blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_channel, out_channel, 3, STYLE_DIM,
                                         blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_channel, STYLE_DIM, blur_kernel=blur_kernel))
            in_channel = out_channel

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> "Generator":
        return cls(cfg.size, cfg.num_down, cfg.latent_dim, cfg.n_mlp, cfg.n_res,
                   channel_multiplier=cfg.channel_multiplier, blur_kernel=cfg.blur_kernel,
                   lr_mlp=cfg.lr_mlp, channel_divisor=cfg.channel_divisor)

    # -- input checks ----------------------------------------------------------------------------
    def check_image(self, x: torch.Tensor, what: str = "image") -> None:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
        s = self.size
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(f"{what} must be N x 3 x {s} x {s} (RGB, the model's size), "
                             f"got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"{what} must be a floating-point tensor in [-1, 1], got {x.dtype} "
                             "(convert uint8 pixels with x.float() / 127.5 - 1)")
        if not self.training and not _is_tracing() and x.numel():
            lo, hi = torch.aminmax(x.detach())
            lo, hi = float(lo), float(hi)
            lim = self.input_range_limit
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"{what} contains NaN or infinite values")
            if lo < -lim or hi > lim:
                raise ValueError(f"{what} must hold values in [-1, 1], found [{lo:.3g}, {hi:.3g}]"
                                 + (" (looks like 0..255 pixels: use x / 127.5 - 1)"
                                    if hi > 2 else ""))

    def _check_style(self, z: torch.Tensor, n: int, dim: int, what: str) -> torch.Tensor:
        if not isinstance(z, torch.Tensor):
            raise ValueError(f"{what} must be a torch.Tensor, got {type(z).__name__}")
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != dim or z.shape[0] not in (1, n):
            raise ValueError(f"{what} must be {n} x {dim} or 1 x {dim} (one style for the batch), "
                             f"got shape {tuple(z.shape)}")
        if not z.is_floating_point():
            raise ValueError(f"{what} must be floating point, got {z.dtype}")
        return z

    # -- public API ------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> Encoded:
        """N x 3 x S x S in [-1, 1] -> Encoded(content N x C x s x s, style N x latent_dim)."""
        self.check_image(x)
        return self.encoder(x)

    def style_encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x).style

    def decode(self, content: torch.Tensor, styles: torch.Tensor,
               use_mapping: bool = True) -> torch.Tensor:
        """Render ``content`` with ``styles`` (N x latent_dim, or 1 x latent_dim shared by the
        batch; already-mapped N x 512 codes with ``use_mapping=False``)."""
        cfg = self.config
        expect = (cfg.content_channels, cfg.content_size, cfg.content_size)
        if not isinstance(content, torch.Tensor) or content.ndim != 4 \
                or tuple(content.shape[1:]) != expect:
            got = tuple(content.shape) if isinstance(content, torch.Tensor) else type(content)
            raise ValueError(f"content must be N x {expect[0]} x {expect[1]} x {expect[2]}, "
                             f"got {got}")
        if not content.is_floating_point():
            raise ValueError(f"content must be floating point, got {content.dtype}")
        dim = self.latent_dim if use_mapping else self.style_dim
        styles = self._check_style(styles, content.shape[0], dim, "style code")
        if use_mapping:
            styles = self.mapping(styles)
        out = content
        for block in self.adain_bottleneck:
            out = block(out, styles)
        out = self.conv1(out, styles)
        skip = self.to_rgb1(out, styles)
        for conv_up, conv, to_rgb in zip(self.convs[::2], self.convs[1::2], self.to_rgbs):
            out = conv(conv_up(out, styles), styles)
            skip = to_rgb(out, styles, skip)
        return skip

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None):
        """Authors' convention: returns (image, content, style); decodes with ``z`` if given,
        else with the image's own style."""
        content, style = self.encode(x)
        return self.decode(content, style if z is None else z), content, style


class Discriminator(nn.Module):
    """Image discriminator: a local (patch) branch, a global branch, and a minibatch-std head."""

    def __init__(self, size: int, channel_multiplier: int = 2,
                 blur_kernel: Sequence[int] = DEFAULT_BLUR, channel_divisor: int = 1):
        super().__init__()
        self.size = size
        self._cfg = ModelConfig(size=size, num_down=1, channel_divisor=channel_divisor,
                                blur_kernel=tuple(blur_kernel))
        ch = self._cfg.channels
        self.l_branch = nn.Sequential(*self._make_net(32), ConvLayer(ch(32), 1, 1, activate=False))
        self.g_branch = nn.Sequential(*self._make_net(8))
        self.g_adv = ConvLayer(ch(8), 1, 1, activate=False)
        self.g_std = nn.Sequential(ConvLayer(ch(8), ch(4), 3, downsample=True,
                                             blur_kernel=blur_kernel),
                                   nn.Flatten(),
                                   EqualLinear(ch(4) * 4 * 4, 128, activation="fused_lrelu"))
        self.g_final = EqualLinear(128, 1)

    def _make_net(self, out_size: int) -> list[nn.Module]:
        ch = self._cfg.channels
        layers: list[nn.Module] = [ConvLayer(3, ch(self.size), 1)]
        in_channel = ch(self.size)
        for i in range(self._cfg.log_size, int(math.log2(out_size)), -1):
            out_channel = ch(2 ** (i - 1))
            layers.append(ResBlock(in_channel, out_channel, self._cfg.blur_kernel))
            in_channel = out_channel
        return layers

    def forward(self, x):
        l_adv = self.l_branch(x)
        g_act = self.g_branch(x)
        g_adv = self.g_adv(g_act)
        feat = self.g_std(g_act)
        g_stddev = torch.sqrt(feat.var(0, keepdim=True, unbiased=False) + 1e-8).repeat(x.shape[0], 1)
        return [l_adv, g_adv, self.g_final(g_stddev)]


class FCMinibatchStd(nn.Module):
    def __init__(self, in_channel: int, out_channel: int):
        super().__init__()
        self.fc = EqualLinear(in_channel + 1, out_channel, activation="fused_lrelu")

    def forward(self, x):
        std = torch.sqrt(x.var(0, unbiased=False) + 1e-8).mean().view(1, 1).repeat(x.shape[0], 1)
        return self.fc(torch.cat([x, std], 1))


class LatDiscriminator(nn.Module):
    """The latent discriminator D_L: tells random style codes from encoded ones."""

    def __init__(self, style_dim: int):
        super().__init__()
        w = LATENT_D_WIDTH
        layers: list[nn.Module] = [EqualLinear(style_dim, w, activation="fused_lrelu")]
        layers += [EqualLinear(w, w, activation="fused_lrelu") for _ in range(3)]
        layers += [FCMinibatchStd(w, w), EqualLinear(w, 1)]
        self.fc = nn.Sequential(*layers)

    def forward(self, x):
        return [self.fc(x)]


def build_networks(cfg: ModelConfig) -> dict[str, nn.Module]:
    """Every network of a GNR checkpoint, named by its checkpoint key (EMA copies included)."""
    nets: dict[str, nn.Module] = {
        "G_A2B": Generator.from_config(cfg),
        "G_B2A": Generator.from_config(cfg),
        "D_A": Discriminator(cfg.size, blur_kernel=cfg.blur_kernel,
                             channel_divisor=cfg.channel_divisor),
        "D_B": Discriminator(cfg.size, blur_kernel=cfg.blur_kernel,
                             channel_divisor=cfg.channel_divisor),
        "D_L": LatDiscriminator(cfg.latent_dim),
    }
    for name in ("G_A2B", "G_B2A"):
        ema = Generator.from_config(cfg)
        ema.load_state_dict(nets[name].state_dict())
        nets[f"{name}_ema"] = ema.eval().requires_grad_(False)
    return nets
