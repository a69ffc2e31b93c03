"""The locked-style model and its style-as-input variant equal the reference generator."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from export.bake import (BakedGenerator, DepthwiseFIR, DynamicStyleGenerator, bake, bake_dynamic,
                         convT_to_polyphase, default_layout, fold_blur_then_conv,
                         fold_convT_then_blur)
from training.style import StyleCode
from tests.export.fixtures import reference, rel_err
from training.networks import make_kernel, upfirdn2d

LAYOUTS = [(True, "transposed"), (True, "polyphase"), (False, "transposed"), (False, "polyphase")]
STYLES = [StyleCode.from_seed(s) for s in (0, 1, 2)]


@pytest.mark.parametrize("fold,up", LAYOUTS)
@pytest.mark.parametrize("style", STYLES, ids=lambda s: s.source)
def test_bake_equals_reference(tiny_G, faces32, fold, up, style):
    z = style.tensor()
    m = bake(tiny_G, style, fold_blur=fold, upsample=up)
    with torch.no_grad():
        out = m(faces32)
    assert out.shape == faces32.shape
    assert rel_err(out, reference(tiny_G, faces32, z)) <= 1e-5


def test_bake_at_three_levels(small_G, faces64):
    # num_down=3: three upsampling levels, a 64x64 output, folded and unfolded
    style = StyleCode.from_seed(11)
    ref = reference(small_G, faces64, style.tensor())
    for fold in (True, False):
        with torch.no_grad():
            out = bake(small_G, style, fold_blur=fold)(faces64)
        assert rel_err(out, ref) <= 1e-5


@pytest.mark.parametrize("fold,up", LAYOUTS)
def test_dynamic_style_equals_reference_for_several_styles(tiny_G, faces32, fold, up):
    m = bake_dynamic(tiny_G, fold_blur=fold, upsample=up)
    assert isinstance(m, DynamicStyleGenerator)
    with torch.no_grad():
        for style in STYLES:                              # one style for the batch (1 x 8)
            z = style.tensor()
            assert rel_err(m(faces32, z), reference(tiny_G, faces32, z)) <= 1e-5
        zs = torch.cat([s.tensor() for s in STYLES + STYLES[:1]])   # one style per image (N x 8)
        assert rel_err(m(faces32, zs), reference(tiny_G, faces32, zs)) <= 1e-5


def test_dynamic_style_fp16_keeps_the_style_path_in_fp32(tiny_G, faces32):
    m = bake_dynamic(tiny_G, dtype=torch.float16, fold_blur=True)
    assert m.mapping.w0.dtype == torch.float32
    mods = [mod for mod in m.modules() if hasattr(mod, "wsq")]
    assert mods and all(mod.wsq.dtype == torch.float32 and mod.mod_w.dtype == torch.float32
                        for mod in mods)
    z = STYLES[1].tensor()
    with torch.no_grad():
        out = m(faces32.half(), z).float()
    ref = reference(tiny_G, faces32, z)
    mse = float(((out - ref) ** 2).mean())
    peak = max(2.0, float(ref.max() - ref.min()))
    assert 10 * torch.log10(torch.tensor(peak ** 2 / mse)) >= 40


def test_folded_model_has_no_separate_blur(tiny_G):
    folded = bake(tiny_G, STYLES[0], fold_blur=True)
    unfolded = bake(tiny_G, STYLES[0], fold_blur=False)
    assert not any(isinstance(m, DepthwiseFIR) for m in folded.modules())
    assert any(isinstance(m, DepthwiseFIR) for m in unfolded.modules())
    k = {tuple(p.shape[-2:]) for n, p in folded.named_parameters() if p.ndim == 4}
    assert (6, 6) in k and (4, 4) in k       # 3x3 s2 + blur -> 6x6; 1x1 s2 + blur -> 4x4


def test_bake_does_not_modify_the_generator(tiny_G):
    before = {k: v.clone() for k, v in tiny_G.state_dict().items()}
    bake(tiny_G, STYLES[0])
    bake_dynamic(tiny_G)
    after = tiny_G.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(v.dtype == torch.float32 for v in after.values())


def test_default_layout_by_device():
    assert default_layout("cuda") == (True, "transposed")
    assert default_layout("cpu")[0] is False


def test_bake_rejects_bad_styles(tiny_G):
    with pytest.raises(ValueError, match="8 values"):
        bake(tiny_G, [0.0] * 7)
    with pytest.raises(ValueError, match="NaN"):
        bake(tiny_G, torch.tensor([float("nan")] + [0.0] * 7))
    with pytest.raises(ValueError, match="upsample"):
        bake(tiny_G, STYLES[0], upsample="nearest")


def test_load_baked_keeps_parameter_storage(tiny_G, faces32):
    m = bake(tiny_G, STYLES[0])
    ptrs = [p.data_ptr() for p in m.parameters()]
    m.load_baked(bake(tiny_G, STYLES[2]))
    assert [p.data_ptr() for p in m.parameters()] == ptrs
    with torch.no_grad():
        assert rel_err(m(faces32), reference(tiny_G, faces32, STYLES[2].tensor())) <= 1e-5


# --- the folding identities themselves, in float64 -------------------------------------------
def test_blur_then_strided_conv_folds_exactly():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 12, 12, generator=g, dtype=torch.float64)
    k = make_kernel([1, 3, 3, 1]).double()
    for ksize, pad in ((3, (2, 2)), (1, (1, 1))):
        w = torch.randn(5, 3, ksize, ksize, generator=g, dtype=torch.float64)
        ref = F.conv2d(upfirdn2d(x, k, pad=pad), w, stride=2)
        out = F.conv2d(x, fold_blur_then_conv(w, k), stride=2, padding=pad[0])
        assert torch.allclose(out, ref, atol=1e-12)


def test_transposed_conv_then_blur_folds_exactly_and_polyphase_matches():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 7, 7, generator=g, dtype=torch.float64)
    k = make_kernel([1, 3, 3, 1]).double() * 4
    wt = torch.randn(4, 5, 3, 3, generator=g, dtype=torch.float64)
    ref = upfirdn2d(F.conv_transpose2d(x, wt, stride=2), k, pad=(1, 1))
    v = fold_convT_then_blur(wt, k)
    out = F.conv_transpose2d(x, v, stride=2, padding=2)
    assert out.shape == ref.shape == (2, 5, 14, 14)
    assert torch.allclose(out, ref, atol=1e-12)
    u, q = convT_to_polyphase(v, 2, 2)
    assert torch.allclose(F.pixel_shuffle(F.conv2d(x, u, padding=q), 2), ref, atol=1e-12)


def test_skip_upsample_is_a_depthwise_transposed_conv(tiny_G):
    m = bake(tiny_G, STYLES[0])
    up = m.decoder.rgbs[0].skip_up
    x = torch.randn(1, 3, 8, 8)
    kernel = tiny_G.to_rgbs[0].upsample.kernel
    ref = upfirdn2d(x, kernel, up=2, pad=tiny_G.to_rgbs[0].upsample.pad)
    assert torch.allclose(up(x), ref, atol=1e-6)
    assert isinstance(m, BakedGenerator)
