"""Training an implicit style function for a frozen GNR checkpoint (ISF-GAN, Liu et al. 2021).

One step, with B base styles (a face's content code ``c`` and a random style code ``s``; with
``space="mapped"`` the 512-d ``G.mapping(s)``) and the frozen face->anime generator ``G``:

1. ``y0 = G.decode(c, s)`` (the unedited render); the discriminator's heads read its attributes
   (``src``). Target: each attribute is edited with probability ``edit_prob`` (at least one per
   sample) to a random value, the rest are *keep*. ``s1 = ISF(s, d, n1)``, ``y1 = G.decode(c, s1)``.
2. D step: logistic real/fake loss (labelled anime images vs ``y1``, both randomly translated and
   box-downsampled to ``d_size``),
   attribute cross-entropy on the real images, lazy R1 on the real/fake head. Adam.
3. ISF step: non-saturating adversarial loss; cross-entropy of D's heads on ``y1`` against the
   full target (edited attributes: their target; kept ones: ``src``); ``l2`` and LPIPS
   (``perceptual``, with LPIPS weights only) between ``y1`` and ``y0``; ``latent`` L2 between
   ``s1`` and ``s``; ``cycle``: ``ISF(s1, d_back, n3)`` returns ``s`` (``d_back``: the edited
   attributes back to ``src``); ``cycle_image`` its render vs ``y0``; ``ds``: minus the L1 between
   ``y1`` and the render of ``ISF(s, d, n2)``. Gradients clipped, Adam, EMA copy updated.

Before step 1, ``d_warmup`` steps train D's attribute heads alone on the labelled images.

The run directory follows GNR training's conventions and reuses its machinery
(:mod:`training.loop`): config.json, train.log, metrics.jsonl + TensorBoard, samples/NNNNNN.png
(rows: base styles; columns: unedited, then every attribute value), checkpoints/NNNNNN.pt
written atomically, ``--resume``, Ctrl-C/SIGTERM finish the step, save and exit 130, a NaN loss
stops with exit 3 before its update is applied.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from pathlib import Path
from typing import Callable

import torch
from torch.nn import functional as F

from ..checkpoint import CheckpointError, load_generator, read_checkpoint
from ..fileio import sha256_file
from ..losses import d_logistic_loss, d_r1_loss, ema_update, g_nonsaturating_loss
from ..loop import (Metrics, NaNLossError, ResumeError, RunResult, list_checkpoints, rng_state,
                    set_rng_state)
from ..messages import one_line
from ..steps import Schedule, run_steps, save_rotating
from .api import ISF_KIND
from .attributes import KEEP, AttributeVocab, read_labels
from .config import RESUMABLE_CHANGES, ISFConfig
from .data import content_bank, face_paths, load_images, split, unit
from .grid import all_edits, render_edits, save_grid
from .nets import AttributeNet, ImplicitStyleFunction

log = logging.getLogger("training.isf")

LOSS_NAMES_D = ("D_adv", "D_cls", "D_r1", "D_total")
LOSS_NAMES_G = ("G_adv", "G_cls", "G_l2", "G_perceptual", "G_latent", "G_cycle", "G_cycle_image",
                "G_ds", "G_total")


def translate(x: torch.Tensor, max_shift: float = 1 / 16) -> torch.Tensor:
    """Each image shifted by a random fraction of its size (up to ``max_shift``), borders
    repeated; differentiable (DiffAugment's translation, applied to real and fake alike)."""
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = (torch.rand(n, 2, device=x.device, dtype=x.dtype) * 2 - 1) * 2 * max_shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def predicted(logits: list[torch.Tensor]) -> torch.Tensor:
    """N x A value indices from per-attribute logits."""
    return torch.stack([lg.argmax(1) for lg in logits], dim=1)


class ISFTrainer:
    """The ISF, its EMA copy, the discriminator, their optimizers and the step; no files."""

    def __init__(self, cfg: ISFConfig, G, vocab: AttributeVocab, reals: torch.Tensor,
                 real_labels: torch.Tensor, contents: torch.Tensor, lpips=None,
                 device: torch.device = torch.device("cpu")):
        self.cfg, self.G, self.vocab, self.device = cfg, G.eval().requires_grad_(False), vocab, device
        self.reals, self.real_labels, self.contents = reals, real_labels.long(), contents
        if cfg.uses_lpips and lpips is None:
            raise ValueError("the perceptual term is on with LPIPS but no LPIPS module was given")
        self.lpips = lpips.to(device) if (lpips is not None and cfg.uses_lpips) else None
        torch.manual_seed(cfg.seed)
        self.isf = ImplicitStyleFunction(cfg.net).to(device)
        self.isf_ema = copy.deepcopy(self.isf).eval().requires_grad_(False)
        self.d_size = cfg.d_size or G.size
        if self.d_size > G.size or self.d_size & (self.d_size - 1):
            raise ValueError(f"d_size must be a power of two <= the generator's size {G.size}, "
                             f"got {self.d_size}")
        self.D = AttributeNet(self.d_size, vocab.sizes, cfg.d_width, adversarial=True).to(device)
        self.opt = torch.optim.Adam(self.isf.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.d_opt = torch.optim.Adam(self.D.parameters(), lr=cfg.d_lr, betas=cfg.betas)
        self.step_count = 0

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def mapped(self) -> bool:
        return self.cfg.net.space == "mapped"

    def base_codes(self, z: torch.Tensor) -> torch.Tensor:
        """Random 8-d codes -> codes in the ISF's space."""
        with torch.no_grad():
            return self.G.mapping(z) if self.mapped else z

    def decode(self, content: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return self.G.decode(content, codes, use_mapping=not self.mapped)

    def d_input(self, x: torch.Tensor, shift: bool = True) -> torch.Tensor:
        """What D sees: randomly translated (DiffAugment), box-downsampled to ``d_size``."""
        x = translate(x) if shift else x
        k = x.shape[-1] // self.d_size
        return F.avg_pool2d(x, k) if k > 1 else x

    def sample_targets(self, n: int) -> torch.Tensor:
        """N x A value indices; KEEP where not edited; at least one attribute edited per row."""
        sizes = torch.tensor(self.vocab.sizes)
        vals = (torch.rand(n, len(sizes)) * sizes).long()
        edit = torch.rand(n, len(sizes)) < self.cfg.edit_prob
        none = ~edit.any(1)
        edit[none, torch.randint(len(sizes), (int(none.sum()),))] = True
        return torch.where(edit, vals, torch.full_like(vals, KEEP)).to(self.device)

    def _check(self, names, values, step) -> dict[str, float]:
        out = {k: float(v.detach()) for k, v in zip(names, values)}
        for k, v in out.items():
            if not math.isfinite(v):
                raise NaNLossError(step, k, v)
        return out

    def _cls_loss(self, logits: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        return sum(F.cross_entropy(lg, target[:, a]) for a, lg in enumerate(logits))

    def warmup(self, steps: int) -> float:
        """Train only D's attribute heads (and its trunk) on the labelled images for ``steps``
        steps; returns their accuracy over the last tenth."""
        cfg, dev = self.cfg, self.device
        hits = []
        for k in range(steps):
            ridx = torch.randint(len(self.reals), (cfg.batch,))
            lab = self.real_labels[ridx].to(dev)
            _, logits = self.D(self.d_input(unit(self.reals[ridx], dev)))
            loss = self._cls_loss(logits, lab)
            if not math.isfinite(float(loss.detach())):
                raise NaNLossError(0, "D_cls (warm-up)", float(loss.detach()))
            self.d_opt.zero_grad(set_to_none=True)
            (cfg.cls * loss).backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.D.parameters(), cfg.grad_clip)
            self.d_opt.step()
            if k >= steps - max(1, steps // 10):
                hits.append(float((predicted(logits) == lab).float().mean()))
        return sum(hits) / max(1, len(hits))

    # -- one step --------------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        cfg, dev, i = self.cfg, self.device, self.step_count
        B = cfg.batch
        c = self.contents[torch.randint(len(self.contents), (B,))].to(dev)
        s = self.base_codes(torch.randn(B, self.G.latent_dim, device=dev))
        with torch.no_grad():
            y0 = self.decode(c, s)
            src = predicted(self.D(self.d_input(y0, shift=False))[1])
        tgt = self.sample_targets(B)
        full = torch.where(tgt >= 0, tgt, src)
        d = self.vocab.encode(tgt).to(dev)
        nd = cfg.net.noise_dim
        n1, n2, n3 = (torch.randn(B, nd, device=dev) for _ in range(3))
        s1 = self.isf(s, d, n1)
        y1 = self.decode(c, s1)

        # ---- discriminator ----
        ridx = torch.randint(len(self.reals), (B,))
        real = self.d_input(unit(self.reals[ridx], dev))
        real_lab = self.real_labels[ridx].to(dev)
        reg = cfg.r1 > 0 and i % cfg.r1_every == 0
        if reg:
            real.requires_grad_(True)
        self.D.requires_grad_(True)
        adv_r, cls_r = self.D(real)
        adv_f, _ = self.D(self.d_input(y1.detach()))
        D_adv = d_logistic_loss([adv_r], [adv_f])
        D_cls = self._cls_loss(cls_r, real_lab)
        D_r1 = cfg.r1 / 2 * d_r1_loss([adv_r], real) * cfg.r1_every if reg else torch.zeros((), device=dev)
        D_total = D_adv + cfg.cls * D_cls + D_r1
        logs = self._check(LOSS_NAMES_D, [D_adv, D_cls, D_r1, D_total], i)
        logs["D_acc_real"] = float((predicted(cls_r) == real_lab).float().mean())
        self.d_opt.zero_grad(set_to_none=True)
        D_total.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.D.parameters(), cfg.grad_clip)
        self.d_opt.step()

        # ---- implicit style function ----
        self.D.requires_grad_(False)
        zero = torch.zeros((), device=dev)
        adv_f, cls_f = self.D(self.d_input(y1))
        G_adv = g_nonsaturating_loss([adv_f], (1.0,))
        G_cls = self._cls_loss(cls_f, full)
        G_l2 = F.mse_loss(y1, y0)
        G_per = self.lpips(y1, y0).mean() if self.lpips is not None else zero
        G_lat = (s1 - s).pow(2).sum(1).add(1e-8).sqrt().mean()     # eps: finite gradient at 0
        back = torch.where(tgt >= 0, src, torch.full_like(src, KEEP))
        s_back = self.isf(s1, self.vocab.encode(back).to(dev), n3)
        G_cyc = (s_back - s).abs().mean()
        G_cyc_img = (self.decode(c, s_back) - y0).abs().mean() if cfg.cycle_image > 0 else zero
        G_ds = (self.decode(c, self.isf(s, d, n2)) - y1).abs().mean() if cfg.ds > 0 else zero
        G_total = (cfg.adv * G_adv + cfg.cls * G_cls + cfg.l2 * G_l2 + cfg.perceptual * G_per
                   + cfg.latent * G_lat + cfg.cycle * G_cyc + cfg.cycle_image * G_cyc_img
                   - cfg.ds * G_ds)
        logs.update(self._check(LOSS_NAMES_G, [G_adv, G_cls, G_l2, G_per, G_lat, G_cyc, G_cyc_img,
                                               G_ds, G_total], i))
        edited = tgt >= 0
        hit = (predicted(cls_f) == full) & edited
        logs["G_acc_edit"] = float(hit.sum() / edited.sum().clamp(min=1))
        self.opt.zero_grad(set_to_none=True)
        G_total.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.isf.parameters(), cfg.grad_clip)
        self.opt.step()
        ema_update(self.isf_ema, self.isf, cfg.ema_decay)
        self.step_count += 1
        return logs

    # -- state -----------------------------------------------------------------------------------
    def checkpoint(self, gnr: dict, rng: dict) -> dict:
        """Plain data only (loads with weights_only=True)."""
        def plain(m):
            return {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
        return {"kind": ISF_KIND, "isf": plain(self.isf), "isf_ema": plain(self.isf_ema),
                "D": plain(self.D), "isf_optim": self.opt.state_dict(), "D_optim": self.d_opt.state_dict(),
                "iter": self.step_count, "net": self.cfg.net.to_dict(), "config": self.cfg.to_dict(),
                "attributes": self.vocab.to_dict(), "gnr": gnr, "rng": rng}

    def load_state(self, ckpt: dict, path) -> None:
        try:
            self.isf.load_state_dict(ckpt["isf"])
            self.isf_ema.load_state_dict(ckpt["isf_ema"])
            self.D.load_state_dict(ckpt["D"])
            self.opt.load_state_dict(ckpt["isf_optim"])
            self.d_opt.load_state_dict(ckpt["D_optim"])
            self.step_count = int(ckpt["iter"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise CheckpointError(f"{path}: cannot resume from it: {one_line(e)}") from None


# -------------------------------------------------------------------------------------------------
# Setting up a run
# -------------------------------------------------------------------------------------------------
def resolve_config(cfg: ISFConfig) -> ISFConfig:
    """Fill in what follows from the inputs: the condition size (from labels.csv) and the size
    of the codes edited (from the checkpoint's generator)."""
    from ..checkpoint import checkpoint_config
    labelled = read_labels(cfg.labels, cfg.data_b, cfg.attributes or None)
    model = checkpoint_config(read_checkpoint(cfg.checkpoint), cfg.checkpoint)
    style_dim = model.latent_dim if cfg.net.space == "latent" else 512
    return cfg.replace(net=cfg.net.__class__(**{**cfg.net.to_dict(), "attr_dim": labelled.vocab.dim,
                                                "style_dim": style_dim}))


def gnr_record(checkpoint: str | Path, G) -> dict:
    return {"sha256": sha256_file(checkpoint), "file": Path(checkpoint).name,
            "model": G.config.to_dict()}


def run_isf_training(cfg: ISFConfig, run_dir: Path, resume_ckpt: Path | None = None,
                     device: torch.device = torch.device("cpu"), lpips=None,
                     on_step: Callable[[int, dict], None] | None = None) -> RunResult:
    """Train until ``cfg.iters`` steps (or NaN / Ctrl-C). ``run_dir`` exists with config.json."""
    run_dir = Path(run_dir)
    G = load_generator(cfg.checkpoint, which="G_A2B_ema", device=device)
    gnr = gnr_record(cfg.checkpoint, G)
    labelled = read_labels(cfg.labels, cfg.data_b, cfg.attributes or None)
    vocab = labelled.vocab
    if vocab.dim != cfg.net.attr_dim:
        raise ResumeError(f"{cfg.labels} now gives {vocab.dim} attribute slots, the run was set up "
                          f"with {cfg.net.attr_dim}: labels.csv changed; start a new run")
    train = split(labelled, cfg.holdout, "train")
    reals = load_images(train.files, G.size)
    real_labels = torch.from_numpy(train.labels)
    if cfg.data_a:
        faces = load_images(face_paths(cfg.data_a, cfg.max_faces), G.size)
        contents = content_bank(G, faces)
    else:
        G_B2A = load_generator(cfg.checkpoint, which="G_B2A_ema", device=device)
        contents = content_bank(G, None, anime=reals[:cfg.max_faces], G_B2A=G_B2A, seed=cfg.seed)
        del G_B2A
    log.info("%d labelled anime images for D (%d held out for evaluation), %d content codes, "
             "attributes: %s", len(reals), len(labelled.files) - len(reals), len(contents),
             vocab.describe())
    trainer = ISFTrainer(cfg, G, vocab, reals, real_labels, contents, lpips, device)

    rng_to_restore = None
    if resume_ckpt is not None:
        ckpt = read_checkpoint(resume_ckpt)
        if ckpt.get("kind") != ISF_KIND:
            raise CheckpointError(f"{resume_ckpt} is not an ISF training checkpoint")
        if (ckpt.get("gnr") or {}).get("sha256") != gnr["sha256"]:
            raise ResumeError(f"{resume_ckpt} was trained for another GNR checkpoint than "
                              f"{cfg.checkpoint} (sha256 differs)")
        stored = ckpt.get("config")
        if stored is not None:
            diff = {k: v for k, v in ISFConfig.from_dict(stored).differences(cfg).items()
                    if k not in RESUMABLE_CHANGES}
            if diff:
                raise ResumeError(f"{resume_ckpt} was written by a run with a different config: "
                                  + "; ".join(f"{k}: checkpoint {a!r} vs run {b!r}"
                                              for k, (a, b) in diff.items()))
        trainer.load_state(ckpt, resume_ckpt)
        rng_to_restore = ckpt.get("rng")
        log.info("resumed from %s at step %d", resume_ckpt, trainer.step_count)
        del ckpt
    if rng_to_restore is not None:
        set_rng_state(rng_to_restore, device)
    else:
        torch.manual_seed(cfg.seed * 1000 + 7919 + trainer.step_count)

    gen = torch.Generator().manual_seed(cfg.seed + 12345)
    rows = min(cfg.n_sample_rows, len(contents))
    sample_c = contents[torch.randperm(len(contents), generator=gen)[:rows]].to(device)
    sample_s = trainer.base_codes(torch.randn(rows, G.latent_dim, generator=gen).to(device))
    columns = all_edits(vocab)

    def edit_fn(codes, edits):
        idx = torch.tensor([vocab.indices(edits)], device=device).expand(len(codes), -1)
        n = torch.randn(1, cfg.net.noise_dim, generator=torch.Generator().manual_seed(0))
        return trainer.isf_ema(codes, vocab.encode(idx).to(device), n.expand(len(codes), -1).to(device))

    def samples(step: int) -> None:
        grid = render_edits(G, edit_fn, sample_c, sample_s, columns, use_mapping=not trainer.mapped)
        save_grid(grid, run_dir / "samples" / f"{step:06d}.png")

    last_ckpt: list[Path | None] = [list_checkpoints(run_dir)[-1][1] if list_checkpoints(run_dir) else None]

    def save(step: int) -> None:
        save_rotating(run_dir, step, lambda: trainer.checkpoint(gnr, rng_state(device)), cfg.keep,
                      last_ckpt, log)

    metrics = Metrics(run_dir, True)
    (run_dir / "samples").mkdir(exist_ok=True)
    step = trainer.step_count
    if step == 0:
        if cfg.d_warmup:
            t = time.perf_counter()
            acc = trainer.warmup(cfg.d_warmup)
            log.info("D warm-up: %d steps on the labelled images in %.0f s, attribute accuracy %.3f",
                     cfg.d_warmup, time.perf_counter() - t, acc)
        samples(0)

    def one_step() -> tuple[int, dict]:
        logs = trainer.step()
        return trainer.step_count, logs

    sched = Schedule(cfg.iters, cfg.log_every, cfg.sample_every, cfg.checkpoint_every,
                     sample_at_end=True)
    return run_steps(one_step, step, sched, metrics=metrics, save=save, samples=samples,
                     last=last_ckpt, log=log, on_step=on_step)
