"""The GNR networks: key-for-key compatibility with the authors' checkpoints, bit-exact parity
with the authors' code, and the behaviour of encode/decode."""
from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import DATA
from training import Generator, ModelConfig, RELEASED, build_networks
from training.config import STYLE_DIM
from training.networks import Discriminator, LatDiscriminator, upfirdn2d, make_kernel
from training.summary import summarize

MANIFEST = json.loads((DATA / "gnr_manifest.json").read_text())


@pytest.fixture(scope="module")
def released_meta():
    """Every network of the released config, on the meta device (shapes only, no memory)."""
    with torch.device("meta"):
        return build_networks(RELEASED)


@pytest.mark.parametrize("key,part", [("G_A2B", "G"), ("G_B2A", "G"), ("G_A2B_ema", "G"),
                                      ("G_B2A_ema", "G"), ("D_A", "D"), ("D_B", "D"), ("D_L", "D_L")])
def test_state_dict_matches_authors_manifest(released_meta, key, part):
    # The manifest lists, in order, every parameter and buffer name with its shape, as the
    # authors' model.py builds them at the released config (size 256, num_down 4, latent 8,
    # n_mlp 5, n_res 1): encoder stem/content/style branches, mapping MLP, modulated convs,
    # to_rgbs, the blur-kernel buffers, D's local/global/std branches and D_L.
    ours = [(k, list(v.shape)) for k, v in released_meta[key].state_dict().items()]
    assert ours == list(MANIFEST[part].items())


def test_manifest_covers_every_submodule():
    g = MANIFEST["G"]
    for prefix in ("encoder.stem.", "encoder.content.", "encoder.style.", "mapping.",
                   "adain_bottleneck.", "conv1.", "to_rgb1.", "convs.", "to_rgbs."):
        assert any(k.startswith(prefix) for k in g), prefix
    assert "to_rgbs.0.upsample.kernel" in g and "convs.0.conv.blur.kernel" in g
    assert "encoder.stem.1.conv2.0.kernel" in g
    assert any(k.startswith("g_std.") for k in MANIFEST["D"])
    assert "fc.4.fc.weight" in MANIFEST["D_L"]      # the minibatch-std layer of D_L


def test_released_size_and_cost(released_meta):
    s = summarize(released_meta["G_A2B"])
    assert s["parameters"]["total"] == 39_581_207
    assert abs(s["flops_per_frame"]["total"] / 1e9 - 64.0) < 0.5
    assert sum(p.numel() for p in released_meta["D_A"].parameters()) == 18_365_315


def test_bit_exact_parity_with_authors_code():
    # Made by running the authors' model.py (their channel table divided by 16) on the
    # astronaut's face with random weights; see tests/data/README.md.
    ref = torch.load(DATA / "authors_reference_tiny.pt", weights_only=True)
    cfg = ModelConfig(**ref["config"])
    G = Generator.from_config(cfg).eval()
    G.load_state_dict(ref["G"], strict=True)
    D = Discriminator(cfg.size, channel_divisor=cfg.channel_divisor).eval()
    D.load_state_dict(ref["D"], strict=True)
    DL = LatDiscriminator(cfg.latent_dim).eval()
    DL.load_state_dict(ref["D_L"], strict=True)
    with torch.no_grad():
        content, style = G.encode(ref["x"])
        torch.testing.assert_close(content, ref["content"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(style, ref["style"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(G.decode(content, style), ref["y_own"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(G.decode(content, ref["z"]), ref["y_z"], rtol=1e-5, atol=1e-5)
        for ours, theirs in zip(D(ref["x"]), ref["d_out"]):
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(DL(ref["zl"])[0], ref["dl_out"][0], rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_G():
    torch.manual_seed(0)
    cfg = ModelConfig(size=32, num_down=2, latent_dim=8, n_mlp=2, n_res=1, channel_divisor=16)
    G = Generator.from_config(cfg).eval()
    with torch.no_grad():   # non-zero biases, so every term matters
        for name, p in G.named_parameters():
            if name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return G


def test_encode_decode_shapes_and_style_behaviour(tiny_G, face_batch):
    G = tiny_G
    with torch.no_grad():
        content, style = G.encode(face_batch)
        assert content.shape == (2, 32, 8, 8) and style.shape == (2, 8)
        enc = G.encode(face_batch)
        assert torch.equal(enc.content, content)          # a named tuple with .content/.style
        z1, z2 = torch.randn(1, 8, generator=torch.Generator().manual_seed(1)), \
            torch.randn(1, 8, generator=torch.Generator().manual_seed(2))
        a, b, a2 = G.decode(content, z1), G.decode(content, z2), G.decode(content, z1)
    assert a.shape == (2, 3, 32, 32)
    assert torch.equal(a, a2)                                # same style -> same output
    assert (a - b).abs().mean() > 1e-3 * a.abs().mean()      # another style -> another image
    assert torch.equal(G.style_encode(face_batch), style)


def test_batch_equals_singles_and_shared_style(tiny_G, face_batch):
    G = tiny_G
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        content = G.encode(face_batch).content
        batched = G.decode(content, z)
        singles = torch.cat([G.decode(content[i:i + 1], z[i:i + 1]) for i in range(2)])
        shared = G.decode(content, z[:1])                    # one style for the batch
        expanded = G.decode(content, z[:1].expand(2, -1))    # the same style, per image
        y, c, s = G(face_batch, z)
    torch.testing.assert_close(batched, singles, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(shared, expanded, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, batched, rtol=0, atol=0)


def test_mapping_is_public_and_use_mapping_false(tiny_G, face_batch):
    G = tiny_G
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        c = G.encode(face_batch).content
        w = G.mapping(z)
        assert w.shape == (2, STYLE_DIM)
        torch.testing.assert_close(G.decode(c, w, use_mapping=False), G.decode(c, z))


@pytest.mark.parametrize("bad,match", [
    (torch.zeros(1, 4, 32, 32), r"N x 3 x 32 x 32"),                 # RGBA
    (torch.zeros(1, 3, 64, 64), r"N x 3 x 32 x 32"),                 # not the model's size
    (torch.zeros(3, 32, 32), r"N x 3 x 32 x 32"),                    # no batch axis
    (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), r"floating-point"),
    (torch.full((1, 3, 32, 32), 200.0), r"0\.\.255"),                # pixels, not [-1, 1]
    (torch.full((1, 3, 32, 32), float("nan")), r"NaN"),
])
def test_encode_rejects_bad_images(tiny_G, bad, match):
    with pytest.raises(ValueError, match=match):
        tiny_G.encode(bad)


def test_decode_rejects_bad_codes(tiny_G, face_batch):
    with torch.no_grad():
        c = tiny_G.encode(face_batch).content
    with pytest.raises(ValueError, match="content must be"):
        tiny_G.decode(c[:, :16], torch.zeros(2, 8))
    with pytest.raises(ValueError, match="style code must be 2 x 8 or 1 x 8"):
        tiny_G.decode(c, torch.zeros(2, 7))
    with pytest.raises(ValueError, match="style code must be 2 x 8 or 1 x 8"):
        tiny_G.decode(c, torch.zeros(3, 8))
    with pytest.raises(ValueError, match="floating point"):
        tiny_G.decode(c, torch.zeros(2, 8, dtype=torch.long))


def test_upfirdn2d_matches_direct_definition():
    # Up by zero insertion, pad, true convolution, decimate: checked against a loop.
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 5)
    k = make_kernel([1, 3, 3, 1])
    out = upfirdn2d(x, k * 4, up=2, down=1, pad=(2, 1))
    up = torch.zeros(1, 2, 10, 10)
    up[..., ::2, ::2] = x
    up = torch.nn.functional.pad(up, (2, 1, 2, 1))
    ref = torch.zeros(1, 2, 10, 10)
    kf = (k * 4).flip(0, 1)
    for i in range(10):
        for j in range(10):
            ref[..., i, j] = (up[..., i:i + 4, j:j + 4] * kf).sum((-1, -2))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    down = upfirdn2d(x, k, down=2, pad=(1, 1))
    assert down.shape == (1, 2, 2, 2)    # (5 + 2 - 4) // 2 + 1


def test_config_validation():
    with pytest.raises(ValueError, match="power of two"):
        ModelConfig(size=100)
    with pytest.raises(ValueError, match="num_down"):
        ModelConfig(size=32, num_down=4)
    with pytest.raises(ValueError, match="unknown model config fields"):
        ModelConfig.from_dict({"size": 256, "bogus": 1})
    assert ModelConfig.from_dict(RELEASED.to_dict()) == RELEASED
