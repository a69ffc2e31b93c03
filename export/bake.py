"""The locked-style fast path: a GNR generator turned into plain convolutions.

``bake(G, style)`` returns a module that maps aligned crops (N x 3 x S x S, [-1, 1]) straight to
stylised crops, equal to ``G.decode(G.encode(x).content, style)``:

* every modulated convolution of the decoder is modulated and demodulated ONCE for the style (in
  float64), so the decoder becomes ordinary ``conv2d`` / ``conv_transpose2d`` layers;
* constant gains are folded into the weights: the sqrt(2) of every leaky ReLU (leaky ReLU is
  positively homogeneous), the 1/sqrt(2) of every residual sum, the equalised-lr scales;
* the ToRGB skip upsample (zero insertion + blur) is one depthwise 4x4 stride-2 transposed conv.

Two layouts for the StyleGAN2 blurs, both exact (:func:`default_layout` picks per device):

* ``fold_blur=True`` (GPU): each blur folded into its neighbouring convolution — blur + 3x3
  stride-2 conv -> one 6x6 stride-2 conv; blur + 1x1 stride-2 skip -> one 4x4 stride-2 conv;
  3x3 stride-2 transposed conv + blur -> one 6x6 stride-2 transposed conv, run as
  ``conv_transpose2d`` or (``upsample="polyphase"``) as ONE 3x3 conv making the four output
  phases followed by ``pixel_shuffle``. No memory-bound blur pass is left; the FLOPs double
  (FACTS.md: 2x faster at batch 8 on an H100).
* ``fold_blur=False`` (CPU): each blur a depthwise conv with a fixed kernel (a 4x4 stride-2 blur
  before a 1x1 stride-2 skip), half the FLOPs, which is what a compute-bound CPU wants
  (onnxruntime, 2 cores: 6x6 stride-2 conv 64 ms vs blur + 3x3 stride-2 25 ms at 64->128
  channels, 256x256). ``upsample="polyphase"`` writes the 3x3 stride-2 transposed conv as a 2x2
  sub-pixel conv (slower in float, but int8 runtimes quantize it; they have no int8
  ConvTranspose).

``bake_dynamic(G)`` is the style-as-input variant, one graph for every style: ``forward(x, z)``
with ``z`` the 8-d style latent (B x 8, B = 1 or N). It modulates the activations instead of the
weights (scale the input channels by the style, convolve with the fixed weight, scale the output
channels by the demodulation coefficients). The style path (mapping MLP, modulation, demodulation
coefficients) always runs in float32, even when the convolutions run in float16: demodulation's
epsilon (1e-8) underflows in half precision.

In fp32 every variant matches the reference to about 1e-6 relative (float64 folding).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from training.networks import (SQRT2, Blur, ConvLayer, EqualConv2d, FusedLeakyReLU, Generator,
                               ModulatedConv2d, ResBlock, ScaledLeakyReLU, StyledConv, ToRGB,
                               upfirdn2d)

__all__ = ["bake", "bake_dynamic", "BakedGenerator", "DynamicStyleGenerator", "default_layout",
           "style_tensor", "UPSAMPLE_MODES"]

NEG_SLOPE = 0.2
UPSAMPLE_MODES = ("polyphase", "transposed")
_F64 = torch.float64


# ---------------------------------------------------------------------------------------------
# Kernel folding (float64)
# ---------------------------------------------------------------------------------------------
def _full_conv(w: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Full 2-D convolution of every k x k slice of ``w`` (A x B x k x k) with ``kernel`` (K x K):
    A x B x (k+K-1) x (k+K-1)."""
    a, b, k, _ = w.shape
    kk = kernel.shape[-1]
    out = F.conv2d(w.reshape(a * b, 1, k, k), torch.flip(kernel, (0, 1)).reshape(1, 1, kk, kk),
                   padding=kk - 1)
    return out.reshape(a, b, k + kk - 1, k + kk - 1)


def fold_blur_then_conv(weight: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``conv2d(upfirdn2d(x, kernel, pad=p), weight, stride=s)`` == ``conv2d(pad(x, p), W')``
    with ``W'`` = ``weight`` (a correlation kernel) fully convolved with the flipped blur kernel."""
    return _full_conv(weight, torch.flip(kernel, (0, 1)))


def fold_convT_then_blur(weight_t: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``upfirdn2d(conv_transpose2d(x, Wt, stride=2), kernel, pad=(p, p))`` ==
    ``conv_transpose2d(x, V, stride=2, padding=K-1-p)`` with ``V`` = ``Wt`` fully convolved with
    ``kernel`` (``Wt``: in x out x k x k)."""
    return _full_conv(weight_t, kernel)


def convT_to_polyphase(v: torch.Tensor, stride: int, padding: int) -> tuple[torch.Tensor, int]:
    """Rewrite ``conv_transpose2d(x, v, stride, padding)`` (v: in x out x K x K; ``padding`` may
    be negative, which extends the output) as ``pixel_shuffle(conv2d(x, U, padding=lo), stride)``
    with ``U``: (out*stride^2) x in x T x T.

    Output pixel ``n = stride*m + r`` receives ``x[m + j] * v[r + padding - stride*j]`` for every
    ``j`` with a valid tap; the taps of all phases, j in [jmin, jmax], are gathered into one
    T x T correlation kernel (T = jmax - jmin + 1, lo = -jmin). Exact: the same products, only
    reindexed. The conv yields ``H + 2*lo - T + 1`` phase rows: the caller crops or pads.
    """
    cin, cout, kk, _ = v.shape
    js = [j for r in range(stride) for j in range(-kk - abs(padding), kk + abs(padding) + 1)
          if 0 <= r + padding - stride * j < kk]
    jmin, jmax = min(js), max(js)
    t = jmax - jmin + 1
    u = v.new_zeros(cout, stride, stride, cin, t, t)
    for ry in range(stride):
        for rx in range(stride):
            for jy in range(jmin, jmax + 1):
                iy = ry + padding - stride * jy
                if not 0 <= iy < kk:
                    continue
                for jx in range(jmin, jmax + 1):
                    ix = rx + padding - stride * jx
                    if 0 <= ix < kk:
                        u[:, ry, rx, :, jy - jmin, jx - jmin] = v[:, :, iy, ix].t()
    return u.reshape(cout * stride * stride, cin, t, t), -jmin


# ---------------------------------------------------------------------------------------------
# Plain layers of the baked graph
# ---------------------------------------------------------------------------------------------
def _param(t: torch.Tensor | None, dtype) -> nn.Parameter | None:
    return None if t is None else nn.Parameter(t.to(dtype).contiguous(), requires_grad=False)


class Conv(nn.Module):
    """[zero pad] -> conv2d(+bias) -> [leaky ReLU 0.2] (gains already folded into the weights)."""

    def __init__(self, weight, bias, stride=1, padding=0, act=False, pad=None, dtype=torch.float32):
        super().__init__()
        self.weight = _param(weight, dtype)
        self.bias = _param(bias, dtype)
        self.stride, self.padding, self.act = stride, padding, act
        self.pad = tuple(pad) if pad else None

    def forward(self, x, w=None):
        if self.pad:
            x = F.pad(x, self.pad)
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
        return F.leaky_relu(y, NEG_SLOPE) if self.act else y

    def extra_repr(self):
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, {k}x{k}, stride={self.stride}, padding={self.padding}, act={self.act}"


class ConvT(nn.Module):
    """conv_transpose2d(+bias) -> [leaky ReLU 0.2]."""

    def __init__(self, weight, bias, stride=2, padding=0, act=False, groups=1, dtype=torch.float32):
        super().__init__()
        self.weight = _param(weight, dtype)
        self.bias = _param(bias, dtype)
        self.stride, self.padding, self.act, self.groups = stride, padding, act, groups

    def forward(self, x, w=None):
        y = F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                               groups=self.groups)
        return F.leaky_relu(y, NEG_SLOPE) if self.act else y

    def extra_repr(self):
        i, o, k, _ = self.weight.shape
        return f"{i}, {o * self.groups}, {k}x{k}, stride={self.stride}, padding={self.padding}, " \
               f"act={self.act}"


class PolyphaseUp(nn.Module):
    """A stride-2 transposed conv as one conv producing the 4 output phases, then pixel_shuffle.
    Bias and leaky ReLU run before the shuffle (per-channel ops commute with it) so runtimes fuse
    them into the conv."""

    def __init__(self, weight, bias, padding, act=False, factor=2, dtype=torch.float32):
        super().__init__()
        self.weight = _param(weight, dtype)
        self.bias = _param(None if bias is None else bias.repeat_interleave(factor * factor), dtype)
        self.padding, self.act, self.factor = padding, act, factor

    def forward(self, x, w=None):
        y = F.conv2d(x, self.weight, self.bias, padding=self.padding)
        if self.act:
            y = F.leaky_relu(y, NEG_SLOPE)
        return F.pixel_shuffle(y, self.factor)

    def extra_repr(self):
        o, i, k, _ = self.weight.shape
        return f"{i}, {o // self.factor ** 2} (x{self.factor ** 2} phases), {k}x{k}, " \
               f"padding={self.padding}, act={self.act}"


class DepthwiseFIR(nn.Module):
    """An unfolded StyleGAN2 blur (``fold_blur=False``): a depthwise conv with the fixed FIR
    kernel (flipped: ``upfirdn2d`` is a true convolution), an optional stride (a blur followed by
    a 1x1 stride-2 conv only needs every other output), and an optional bias + leaky ReLU (those
    of a transposed conv that the blur follows)."""

    def __init__(self, channels, kernel, pad=(0, 0), stride=1, bias=None, act=False,
                 dtype=torch.float32):
        super().__init__()
        kk = kernel.shape[-1]
        w = torch.flip(kernel, (0, 1)).reshape(1, 1, kk, kk).repeat(channels, 1, 1, 1)
        self.weight = _param(w, dtype)
        self.bias = _param(bias, dtype)
        p0, p1 = pad
        self.padding = p0 if p0 == p1 else 0
        self.pad = None if p0 == p1 else (p0, p1, p0, p1)
        self.stride, self.act, self.groups = stride, act, channels

    def forward(self, x, w=None):
        if self.pad:
            x = F.pad(x, self.pad)
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, groups=self.groups)
        return F.leaky_relu(y, NEG_SLOPE) if self.act else y

    def extra_repr(self):
        k = self.weight.shape[-1]
        return f"{self.groups}, {k}x{k} depthwise, stride={self.stride}, padding={self.padding}, " \
               f"act={self.act}"


class ReferenceFIR(nn.Module):
    """Fallback for blur geometries the folds do not cover (non-default blur kernels): the
    reference ``upfirdn2d``. Correct, but exports to ONNX poorly."""

    def __init__(self, kernel, up=1, pad=(0, 0), dtype=torch.float32):
        super().__init__()
        self.register_buffer("kernel", kernel.to(dtype))
        self.up, self.pad = up, tuple(pad)

    def forward(self, x, w=None):
        return upfirdn2d(x, self.kernel, up=self.up, pad=self.pad)


class Chain(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x, w=None):
        for layer in self.layers:
            x = layer(x, w)
        return x


class Residual(nn.Module):
    """``main(x) + skip(x)``; the 1/sqrt(2) of the authors' residual sum is folded into both
    branches (an identity skip keeps an explicit scale)."""

    def __init__(self, main: nn.Module, skip: nn.Module | None):
        super().__init__()
        self.main, self.skip = main, skip
        self.skip_scale = 1 / SQRT2

    def forward(self, x, w=None):
        s = x * self.skip_scale if self.skip is None else self.skip(x, w)
        return self.main(x, w) + s


# ---------------------------------------------------------------------------------------------
# Encoder (content path only; shared by both variants)
# ---------------------------------------------------------------------------------------------
def _eq_weight(conv: EqualConv2d) -> torch.Tensor:
    return conv.weight.detach().to("cpu", _F64) * conv.scale


def _convlayer(layer: ConvLayer, gain: float, fold: bool, dtype) -> nn.Module:
    """One ConvLayer ([Blur] EqualConv2d [activation]) with an extra output ``gain`` folded in."""
    mods = list(layer)
    blur = mods.pop(0) if isinstance(mods[0], Blur) else None
    conv: EqualConv2d = mods.pop(0)
    act = mods.pop(0) if mods else None
    w = _eq_weight(conv)
    b = conv.bias.detach().to("cpu", _F64) if conv.bias is not None else None
    if isinstance(act, FusedLeakyReLU):
        b = act.bias.detach().to("cpu", _F64) if b is None else b + act.bias.detach().to("cpu", _F64)
        g = act.scale * gain
    elif isinstance(act, ScaledLeakyReLU):
        g = SQRT2 * gain
    else:
        g = gain
    w = w * g
    b = b * g if b is not None else None
    has_act = act is not None
    if blur is None:
        return Conv(w, b, conv.stride, conv.padding, has_act, dtype=dtype)
    kernel = blur.kernel.detach().to("cpu", _F64)
    p0, p1 = blur.pad
    cin = w.shape[1]
    if not fold:
        if w.shape[-1] == 1 and conv.stride == 2 and conv.padding == 0:
            # a 1x1 stride-2 conv only reads every other blurred pixel: blur with stride 2
            return Chain(DepthwiseFIR(cin, kernel, (p0, p1), stride=2, dtype=dtype),
                         Conv(w, b, 1, 0, has_act, dtype=dtype))
        return Chain(DepthwiseFIR(cin, kernel, (p0, p1), dtype=dtype),
                     Conv(w, b, conv.stride, conv.padding, has_act, dtype=dtype))
    wf = fold_blur_then_conv(w, kernel)
    if p0 == p1 and conv.padding == 0:
        return Conv(wf, b, conv.stride, p0, has_act, dtype=dtype)
    pad = (p0 + conv.padding, p1 + conv.padding) * 2
    return Conv(wf, b, conv.stride, 0, has_act, pad=pad, dtype=dtype)


def _resblock(block: ResBlock, fold: bool, dtype) -> nn.Module:
    main = Chain(_convlayer(block.conv1, 1.0, fold, dtype),
                 _convlayer(block.conv2, 1 / SQRT2, fold, dtype))
    skip = None if block.skip is None else _convlayer(block.skip, 1 / SQRT2, fold, dtype)
    return Residual(main, skip)


def _encoder(G: Generator, fold: bool, dtype) -> nn.Module:
    stem = list(G.encoder.stem)
    layers = [_convlayer(stem[0], 1.0, fold, dtype)]
    layers += [_resblock(b, fold, dtype) for b in stem[1:]]
    layers += [_convlayer(c, 1.0, fold, dtype) for c in G.encoder.content]
    return Chain(*layers)


# ---------------------------------------------------------------------------------------------
# Decoder, baked (one style)
# ---------------------------------------------------------------------------------------------
def _up_layer(wt: torch.Tensor, b, blur: Blur, act: bool, fold: bool, upsample: str, dtype):
    """Transposed 3x3 stride-2 conv (``wt``: in x out x k x k) followed by its blur."""
    kernel = blur.kernel.detach().to("cpu", _F64)
    p0, p1 = blur.pad
    kk = kernel.shape[0]
    if not fold or p0 != p1 or kk - 1 - p0 < 0:
        # unfolded: bias and activation come after the blur
        return Chain(_unfolded_up(wt, upsample, dtype, p0),
                     DepthwiseFIR(wt.shape[1], kernel, _unfolded_pad(wt, blur, upsample),
                                  bias=b, act=act, dtype=dtype))
    v = fold_convT_then_blur(wt, kernel)
    padding = kk - 1 - p0
    if upsample == "polyphase":
        u, q = convT_to_polyphase(v, 2, padding)
        return PolyphaseUp(u, b, q, act, dtype=dtype)
    return ConvT(v, b, 2, padding, act, dtype=dtype)


def _unfolded_up(wt, upsample, dtype, blur_pad0: int = 1) -> nn.Module:
    """The transposed conv of an unfolded upsampling layer, before its blur: ``conv_transpose2d``,
    or (``upsample="polyphase"``) its sub-pixel form — a 2x2 conv making the 4 output phases,
    then pixel_shuffle — which is a plain Conv that int8 runtimes quantize (onnxruntime has no
    int8 ConvTranspose on the CPU). The polyphase output starts ``blur_pad0`` pixels early, so it
    already holds the blur's leading zero padding."""
    if upsample == "polyphase":
        u, lo = convT_to_polyphase(wt, 2, -blur_pad0)
        return PolyphaseUp(u, None, lo, False, dtype=dtype)
    return ConvT(wt, None, 2, 0, dtype=dtype)


def _unfolded_pad(wt, blur: Blur, upsample) -> tuple[int, int]:
    """The blur's padding after :func:`_unfolded_up`."""
    p0, p1 = blur.pad
    if upsample != "polyphase":
        return p0, p1
    k = wt.shape[-1]
    u, lo = convT_to_polyphase(wt[:1, :1], 2, -p0)
    t = u.shape[-1]
    # transposed output length 2H + k - 2 (+ p0 + p1 of blur padding); the polyphase conv gives
    # 2 * (H + 2*lo - t + 1) samples starting p0 early: pad the rest at the end
    extra = (k - 2 + p0 + p1) - 2 * (2 * lo - t + 1)
    if extra < 0:
        raise NotImplementedError("blur geometry not supported by the polyphase layout")
    return 0, extra


def _styled_conv_baked(sc: StyledConv, wstyle, gain, fold, upsample, dtype) -> nn.Module:
    mc: ModulatedConv2d = sc.conv
    w = mc.modulated_weight(wstyle)[0]                            # out x in x k x k, float64
    g = sc.activate.scale * gain
    w = w * g
    b = sc.activate.bias.detach().to("cpu", _F64) * g
    if mc.upsample:
        return _up_layer(w.transpose(0, 1), b, mc.blur, True, fold, upsample, dtype)
    if mc.downsample:       # not used by the GNR decoder; kept for completeness
        raise NotImplementedError("downsampling modulated convs do not occur in the GNR decoder")
    return Conv(w, b, 1, mc.padding, act=True, dtype=dtype)


def _skip_upsample(to_rgb: ToRGB, fold: bool, dtype) -> nn.Module:
    up = to_rgb.upsample
    kernel = up.kernel.detach().to("cpu", _F64)
    kk = kernel.shape[0]
    pa0, pa1 = up.pad
    padding = kk - 1 - pa0
    if up.factor == 2 and pa0 == pa1 + 1 and padding >= 0:
        # zero insertion + pad + FIR == a depthwise stride-2 transposed conv with the kernel
        # itself (done whatever fold_blur says: it is the same operation, minus the zeros)
        wt = kernel.reshape(1, 1, kk, kk).repeat(3, 1, 1, 1)
        return ConvT(wt, None, 2, padding, groups=3, dtype=dtype)
    return ReferenceFIR(kernel, up=up.factor, pad=(pa0, pa1), dtype=dtype)


class _RGB(nn.Module):
    """ToRGB: 1x1 conv (bias included) [+ upsampled skip]."""

    def __init__(self, conv: nn.Module, skip_up: nn.Module | None):
        super().__init__()
        self.conv, self.skip_up = conv, skip_up

    def forward(self, x, skip=None, w=None):
        out = self.conv(x, w)
        if skip is not None:
            out = out + self.skip_up(skip, w)
        return out


class _Decoder(nn.Module):
    def __init__(self, bottleneck, conv1, rgb1, ups, convs, rgbs):
        super().__init__()
        self.bottleneck = nn.ModuleList(bottleneck)
        self.conv1, self.rgb1 = conv1, rgb1
        self.ups, self.convs, self.rgbs = nn.ModuleList(ups), nn.ModuleList(convs), nn.ModuleList(rgbs)

    def forward(self, x, w=None):
        for block in self.bottleneck:
            x = block(x, w)
        x = self.conv1(x, w)
        skip = self.rgb1(x, None, w)
        for up, conv, rgb in zip(self.ups, self.convs, self.rgbs):
            x = conv(up(x, w), w)
            skip = rgb(x, skip, w)
        return skip


def style_tensor(style, latent_dim: int) -> torch.Tensor:
    """A StyleCode, tensor, array or sequence of ``latent_dim`` floats -> 1 x latent_dim float64."""
    vec = getattr(style, "vector", style)
    t = torch.as_tensor(vec if not isinstance(vec, torch.Tensor) else vec.detach().cpu(),
                        dtype=_F64).reshape(-1)
    if t.numel() != latent_dim:
        raise ValueError(f"style must have {latent_dim} values (the model's latent_dim), "
                         f"got {t.numel()}")
    if not torch.isfinite(t).all():
        raise ValueError("style contains NaN or infinite values")
    return t.reshape(1, latent_dim)


class BakedGenerator(nn.Module):
    """Locked-style GNR: ``forward(x)`` N x 3 x S x S -> N x 3 x S x S, plain convolutions only."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, config, style: torch.Tensor,
                 fold_blur: bool, upsample: str):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.config = config
        self.size = config.size
        self.style = style.detach().float().reshape(-1).clone()
        self.fold_blur, self.upsample = fold_blur, upsample

    def forward(self, x):
        return self.decoder(self.encoder(x))

    def load_baked(self, other: "BakedGenerator") -> None:
        """Copy another bake's weights into this one in place (same structure): parameter
        addresses do not change, so captured CUDA graphs stay valid."""
        with torch.no_grad():
            for (n1, p1), (n2, p2) in zip(self.named_parameters(), other.named_parameters()):
                if n1 != n2 or p1.shape != p2.shape:
                    raise ValueError(f"bake structure differs at {n1} / {n2}")
                p1.copy_(p2)
        self.style = other.style.clone()

    def extra_repr(self):
        return f"size={self.size}, fold_blur={self.fold_blur}, upsample={self.upsample!r}"


def default_layout(device: str | torch.device) -> tuple[bool, str]:
    """(fold_blur, upsample) measured fastest on ``device``'s type.

    CUDA: blurs folded (the blur, not the convs, is the bottleneck there: FACTS.md, 2x at batch
    8 on an H100), transposed convs as ``conv_transpose2d``. CPU: blurs kept as depthwise convs,
    since folding doubles the FLOPs and a 2-core CPU is compute-bound (onnxruntime: 6x6 stride-2
    conv 64 ms vs blur + 3x3 stride-2 25 ms at 64->128 channels, 256x256).
    """
    if torch.device(device).type == "cuda":
        return True, "transposed"
    return False, "transposed"


def _layout(device, fold_blur, upsample) -> tuple[bool, str]:
    d_fold, d_up = default_layout(device)
    return (d_fold if fold_blur is None else bool(fold_blur)), (d_up if upsample is None else upsample)


def _check_options(upsample: str, dtype) -> None:
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
    if dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")


@torch.no_grad()
def bake(G: Generator, style, *, fold_blur: bool | None = None, upsample: str | None = None,
         dtype: torch.dtype = torch.float32, device: str | torch.device | None = None) -> BakedGenerator:
    """Bake ``style`` (8 floats: a StyleCode, tensor or array) into ``G``: a module whose
    ``forward(x)`` equals ``G.decode(G.encode(x).content, style)``.

    Weights are modulated, demodulated and folded in float64, then cast to ``dtype``; the module
    lives on ``device`` (default: G's device). ``G`` is not modified. ``fold_blur`` and
    ``upsample`` left as None take :func:`default_layout` for the device.
    """
    device = torch.device(device) if device is not None else next(G.parameters()).device
    fold_blur, upsample = _layout(device, fold_blur, upsample)
    _check_options(upsample, dtype)
    cfg = G.config
    z = style_tensor(style, cfg.latent_dim)
    G64 = copy.deepcopy(G).to("cpu", _F64).eval()
    wstyle = G64.mapping(z)
    fold = fold_blur
    s = lambda m, gain=1.0: _styled_conv_baked(m, wstyle, gain, fold, upsample, dtype)  # noqa: E731
    bottleneck = [Residual(Chain(s(b.conv1), s(b.conv2, 1 / SQRT2)), None)
                  for b in G64.adain_bottleneck]

    def rgb(t: ToRGB, with_skip: bool):
        w = t.conv.modulated_weight(wstyle)[0]
        conv = Conv(w, t.bias.detach().reshape(-1), dtype=dtype)
        return _RGB(conv, _skip_upsample(t, fold, dtype) if with_skip else None)

    decoder = _Decoder(bottleneck, s(G64.conv1), rgb(G64.to_rgb1, False),
                       [s(c) for c in G64.convs[::2]], [s(c) for c in G64.convs[1::2]],
                       [rgb(t, True) for t in G64.to_rgbs])
    model = BakedGenerator(_encoder(G64, fold, dtype), decoder, cfg, z, fold_blur, upsample)
    return model.to(device).eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------
# Style-as-input variant
# ---------------------------------------------------------------------------------------------
class Mapping(nn.Module):
    """The style MLP, always float32 (equalised-lr scales and leaky-ReLU gains folded)."""

    def __init__(self, G64: Generator):
        super().__init__()
        ws, bs = [], []
        for lin in G64.mapping:
            g = SQRT2  # every mapping layer is fused_lrelu
            ws.append(lin.weight.detach() * lin.scale * g)
            bs.append(lin.bias.detach() * lin.lr_mul * g)
        for i, (w, b) in enumerate(zip(ws, bs)):
            self.register_buffer(f"w{i}", w.float())
            self.register_buffer(f"b{i}", b.float())
        self.n = len(ws)

    def forward(self, z):
        x = z.float()
        for i in range(self.n):
            x = F.leaky_relu(F.linear(x, getattr(self, f"w{i}").float(), getattr(self, f"b{i}").float()),
                             NEG_SLOPE)
        return x


class ModConv(nn.Module):
    """A modulated conv with static weights: ``x * s`` -> conv -> ``* d`` -> bias -> act, with
    ``s`` = modulation(w) and ``d`` = gain / sqrt(sum_i s_i^2 * |W_oi|^2 + eps), both float32."""

    def __init__(self, mc: ModulatedConv2d, layer: nn.Module, bias, gain: float, act: bool,
                 dtype, out_channels: int):
        super().__init__()
        self.layer = layer            # Conv / ConvT / PolyphaseUp / Chain with fixed weights, no bias
        self.register_buffer("mod_w", (mc.modulation.weight.detach() * mc.modulation.scale).float())
        self.register_buffer("mod_b", (mc.modulation.bias.detach() * mc.modulation.lr_mul).float())
        self.demod = mc.demodulate
        if self.demod:
            w = mc.weight.detach()[0] * mc.scale                  # out x in x k x k, float64
            self.register_buffer("wsq", w.pow(2).sum(dim=(2, 3)).float())
        self.eps = mc.eps
        self.gain = float(gain)
        self.bias = _param(None if bias is None else bias.reshape(1, -1, 1, 1), dtype)
        self.act = act
        self.out_channels = out_channels

    def forward(self, x, w):
        s = F.linear(w, self.mod_w.float(), self.mod_b.float())             # B x in, fp32
        y = self.layer(x * s.to(x.dtype)[:, :, None, None])
        if self.demod:
            d = torch.rsqrt(F.linear(s * s, self.wsq.float()) + self.eps) * self.gain   # fp32
            y = y * d.to(y.dtype)[:, :, None, None]
        elif self.gain != 1.0:
            y = y * self.gain
        if self.bias is not None:
            y = y + self.bias
        return F.leaky_relu(y, NEG_SLOPE) if self.act else y


def _styled_conv_dynamic(sc: StyledConv, gain, fold, upsample, dtype) -> ModConv:
    mc: ModulatedConv2d = sc.conv
    w = mc.weight.detach()[0] * mc.scale                            # out x in x k x k, float64
    g = sc.activate.scale * gain
    b = sc.activate.bias.detach() * g
    if mc.upsample:
        kernel = mc.blur.kernel.detach()
        p0, p1 = mc.blur.pad
        kk = kernel.shape[0]
        wt = w.transpose(0, 1)
        if not fold or p0 != p1:
            layer = Chain(_unfolded_up(wt, upsample, dtype, p0),
                          DepthwiseFIR(wt.shape[1], kernel, _unfolded_pad(wt, mc.blur, upsample),
                                       dtype=dtype))
        else:
            v = fold_convT_then_blur(wt, kernel)
            if upsample == "polyphase":
                u, q = convT_to_polyphase(v, 2, kk - 1 - p0)
                layer = PolyphaseUp(u, None, q, False, dtype=dtype)
            else:
                layer = ConvT(v, None, 2, kk - 1 - p0, dtype=dtype)
    else:
        layer = Conv(w, None, 1, mc.padding, dtype=dtype)
    return ModConv(mc, layer, b, g, True, dtype, mc.out_channel)


def _to_rgb_dynamic(t: ToRGB, with_skip: bool, fold, dtype) -> _RGB:
    mc = t.conv
    w = mc.weight.detach()[0] * mc.scale
    conv = ModConv(mc, Conv(w, None, dtype=dtype), t.bias.detach().reshape(-1), 1.0, False,
                   dtype, 3)
    return _RGB(conv, _skip_upsample(t, fold, dtype) if with_skip else None)


class DynamicStyleGenerator(nn.Module):
    """Style-as-input GNR: ``forward(x, z)`` with x N x 3 x S x S and z B x latent_dim (B = 1: one
    style for the batch, or B = N). Static weights; one graph for every style."""

    def __init__(self, encoder, mapping, decoder, config, fold_blur, upsample):
        super().__init__()
        self.encoder, self.mapping, self.decoder = encoder, mapping, decoder
        self.config = config
        self.size = config.size
        self.latent_dim = config.latent_dim
        self.fold_blur, self.upsample = fold_blur, upsample

    def forward(self, x, z):
        w = self.mapping(z)
        return self.decoder(self.encoder(x), w)

    def extra_repr(self):
        return f"size={self.size}, fold_blur={self.fold_blur}, upsample={self.upsample!r}"


@torch.no_grad()
def bake_dynamic(G: Generator, *, fold_blur: bool | None = None, upsample: str | None = None,
                 dtype: torch.dtype = torch.float32,
                 device: str | torch.device | None = None) -> DynamicStyleGenerator:
    """The style-as-input variant of ``bake``: ``forward(x, z)`` equals
    ``G.decode(G.encode(x).content, z)``. Convolution weights are cast to ``dtype``; the style
    path (mapping, modulation, demodulation) stays float32 whatever ``dtype`` is."""
    device = torch.device(device) if device is not None else next(G.parameters()).device
    fold_blur, upsample = _layout(device, fold_blur, upsample)
    _check_options(upsample, dtype)
    G64 = copy.deepcopy(G).to("cpu", _F64).eval()
    fold = fold_blur
    s = lambda m, gain=1.0: _styled_conv_dynamic(m, gain, fold, upsample, dtype)  # noqa: E731
    bottleneck = [Residual(Chain(s(b.conv1), s(b.conv2, 1 / SQRT2)), None)
                  for b in G64.adain_bottleneck]
    decoder = _Decoder(bottleneck, s(G64.conv1), _to_rgb_dynamic(G64.to_rgb1, False, fold, dtype),
                       [s(c) for c in G64.convs[::2]], [s(c) for c in G64.convs[1::2]],
                       [_to_rgb_dynamic(t, True, fold, dtype) for t in G64.to_rgbs])
    model = DynamicStyleGenerator(_encoder(G64, fold, dtype), Mapping(G64), decoder, G.config,
                                  fold_blur, upsample)
    return model.to(device).eval().requires_grad_(False)
