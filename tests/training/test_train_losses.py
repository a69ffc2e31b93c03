"""Each GNR loss term against a hand computation on small tensors."""
from __future__ import annotations

import math

import pytest
import torch

from training.losses import (d_logistic_loss, d_r1_loss, ema_update, g_nonsaturating_loss, mix_styles,
                             shuffle_batch, style_consistency_loss)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_d_logistic_loss_sums_heads():
    real = [torch.tensor([[1.0], [-1.0]]), torch.tensor([2.0])]
    fake = [torch.tensor([[0.0], [3.0]]), torch.tensor([-2.0])]
    want = ((softplus(-1) + softplus(1)) / 2 + (softplus(0) + softplus(3)) / 2   # head 1
            + softplus(-2) + softplus(-2))                                      # head 2
    assert d_logistic_loss(real, fake).item() == pytest.approx(want, rel=1e-6)


def test_g_nonsaturating_loss_weighted_mean_over_heads():
    fake = [torch.tensor([0.0, 2.0]), torch.tensor([-1.0]), torch.tensor([[1.0]])]
    w = (1.0, 2.0, 3.0)
    want = (1 * (softplus(0) + softplus(-2)) / 2 + 2 * softplus(1) + 3 * softplus(-1)) / 3
    assert g_nonsaturating_loss(fake, w).item() == pytest.approx(want, rel=1e-6)


def test_r1_is_batch_mean_of_squared_gradient_of_the_logit_mean():
    # logits = x @ a (per sample); d(mean)/dx_i = a / N; |.|^2 summed, then mean over the batch
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], requires_grad=True)
    a = torch.tensor([2.0, -3.0])
    logits = [x @ a, (x ** 2).sum(1)]
    n = 3
    g1 = (a / n).pow(2).sum().item()                                  # same for every sample
    g2 = ((2 * x.detach() / n) ** 2).sum(1).mean().item()
    got = d_r1_loss(logits, x)
    assert got.item() == pytest.approx(g1 + g2, rel=1e-6)
    assert got.requires_grad                                           # create_graph for the penalty


def test_style_consistency_is_biased_variance_summed():
    s = torch.tensor([[1.0, 0.0], [3.0, 0.0], [5.0, 6.0]])
    # dim 0: mean 3, var (4 + 0 + 4)/3; dim 1: mean 2, var (4 + 4 + 16)/3
    assert style_consistency_loss(s).item() == pytest.approx(8 / 3 + 24 / 3, rel=1e-6)
    assert style_consistency_loss(s[[0, 0, 0]]).item() == 0


def test_mix_styles_draws_batch_rows_from_both_without_replacement():
    torch.manual_seed(0)
    rand = torch.arange(4.0)[:, None].repeat(1, 3)
    enc = 10 + torch.arange(4.0)[:, None].repeat(1, 3)
    seen_rand = seen_enc = 0
    for _ in range(50):
        out = mix_styles(rand, enc)
        assert out.shape == (4, 3)
        rows = out[:, 0].tolist()
        assert len(set(rows)) == 4                                    # no row twice
        assert set(rows) <= set(rand[:, 0].tolist()) | set(enc[:, 0].tolist())
        seen_rand += sum(r < 10 for r in rows)
        seen_enc += sum(r >= 10 for r in rows)
    assert seen_rand > 50 and seen_enc > 50                            # really a mix


def test_shuffle_batch_is_a_permutation_and_keeps_gradients():
    torch.manual_seed(1)
    x = torch.randn(6, 2, requires_grad=True)
    y = shuffle_batch(x)
    assert sorted(y[:, 0].tolist()) == sorted(x[:, 0].tolist())
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_ema_update_follows_parameters_only():
    live = torch.nn.Linear(2, 2)
    ema = torch.nn.Linear(2, 2)
    with torch.no_grad():
        for p in ema.parameters():
            p.zero_()
        for p in live.parameters():
            p.fill_(1.0)
    ema_update(ema, live, 0.9)
    for p in ema.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.1))
    ema_update(ema, live, 0.9)
    for p in ema.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.19))
