"""The GNR loss terms, each a small function checked against a hand computation in the tests.

Conventions follow the authors' ``util.py`` / ``train.py`` exactly:

* A discriminator returns a *list* of logit tensors (the image D: local patch map, global map,
  minibatch-std logit; the latent D: one logit).
* ``d_logistic_loss`` sums ``softplus(-real).mean() + softplus(fake).mean()`` over the list.
* ``g_nonsaturating_loss`` is ``sum_k w_k softplus(-fake_k).mean()`` divided by the list length.
* ``d_r1_loss`` sums, over the list, the batch mean of the squared gradient norm of
  ``logits.mean()`` w.r.t. the real input (note: ``.mean()``, not ``.sum()``, as in their code).
* Style consistency is the (biased) variance of the style codes over the batch, summed over
  dimensions — the batch being augmentations of one image, this is zero when the style encoder
  ignores the augmentation.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import autograd
from torch.nn import functional as F


def d_logistic_loss(real_pred: Sequence[torch.Tensor], fake_pred: Sequence[torch.Tensor]) -> torch.Tensor:
    loss = 0
    for real, fake in zip(real_pred, fake_pred, strict=True):
        loss = loss + F.softplus(-real).mean() + F.softplus(fake).mean()
    return loss


def g_nonsaturating_loss(fake_pred: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    loss = 0
    for fake, w in zip(fake_pred, weights, strict=True):
        loss = loss + w * F.softplus(-fake).mean()
    return loss / len(fake_pred)


def d_r1_loss(real_pred: Sequence[torch.Tensor], real_input: torch.Tensor) -> torch.Tensor:
    penalty = 0
    for real in real_pred:
        (grad,) = autograd.grad(outputs=real.float().mean(), inputs=real_input, create_graph=True)
        penalty = penalty + grad.float().pow(2).reshape(grad.shape[0], -1).sum(1).mean()
    return penalty


def style_consistency_loss(style: torch.Tensor) -> torch.Tensor:
    """Variance over the batch (biased), summed over style dimensions."""
    return style.float().var(0, unbiased=False).sum()


def shuffle_batch(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` in a random order (PyTorch's global RNG, like the authors')."""
    return x[torch.randperm(x.shape[0], device=x.device)]


def mix_styles(random_style: torch.Tensor, encoded_style: torch.Tensor) -> torch.Tensor:
    """The authors' input styles: ``batch`` rows drawn without replacement from the 2*batch
    random and encoded codes together."""
    both = torch.cat([random_style, encoded_style], 0)
    return both[torch.randperm(both.shape[0], device=both.device)][: random_style.shape[0]]


@torch.no_grad()
def ema_update(ema: torch.nn.Module, live: torch.nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * live`` over parameters (buffers are constant FIR
    kernels in these networks), as the authors' ``accumulate``."""
    live = getattr(live, "module", live)
    ema_params = dict(ema.named_parameters())
    for name, p in live.named_parameters():
        ema_params[name].mul_(decay).add_(p.detach(), alpha=1 - decay)
