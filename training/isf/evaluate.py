"""Evaluating an ISF with a classifier trained separately from its discriminator.

``train_classifier``: an :class:`~training.isf.nets.AttributeNet` (no real/fake head) trained on
the *held-out* labelled images (the share the ISF's discriminator never saw, see
:func:`training.isf.data.in_holdout`), with translation, resolution loss and noise so that it
also reads the generator's softer renders; 10 % of those images are kept for its own
validation accuracy, stored in its file.

``evaluate`` renders ``n_styles`` base styles (a face's content + a random code) and, for every
attribute value, the edit asking for it (two edit seeds), and reports per attribute:

* ``accuracy``: share of edited renders the classifier reads as the value asked for (mean over
  values; ``per_value`` too), next to ``baseline``: the share of *unedited* renders already read
  as that value (what asking for nothing gets), and ``accuracy_changed``: accuracy over the base
  styles that did not already have it;
* ``kept``: share of renders whose *other* attributes the classifier reads as on the unedited
  render (mean over the other attributes; ``kept_per_attribute`` too);
* content preservation: ``face_l1``, the mean absolute difference ([0, 1] units) between the
  edited and unedited render inside the inner-face box (eyes, nose, mouth, cheeks: 22-78 % of the
  width, 30-78 % of the height), and ``content_ratio``: the distance between the GNR content codes
  (``G_B2A_ema``'s content encoder) of the edited and unedited renders divided by the same
  distance between the renders of two *different faces* in the same style (0: pose and
  expression untouched; 1: as different as another face);
* diversity between the two edit seeds (over the first ``n_detail`` base styles, as
  ``content_ratio``): ``diversity_l1`` (whole-image mean absolute difference,
  [0, 1] units), ``diversity_feature`` (LPIPS's formula on the evaluation classifier's features,
  without LPIPS's learned weights: not on LPIPS's scale) and ``diversity_lpips`` when LPIPS
  weights are given.

``random_styles_change_it``: without any ISF, the share of faces (of the first ``n_detail``) for
which the classifier reads at least two different values among 8 random styles: whether the
style code can change the attribute at all (GNR puts pose and expression in the content code).

``reference`` holds the same distances between each base render and the render of the same face
with another *random* style, for scale. The JSON is written atomically.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ..checkpoint import CheckpointError, load_generator, read_checkpoint, save_checkpoint
from ..fileio import write_bytes_atomic
from ..train_config import DataSource
from .api import ISFError, load_isf
from .attributes import AttributeVocab, read_labels
from .data import content_bank, face_paths, load_images, split, unit
from .nets import AttributeNet, feature_distance
from .train import predicted, translate

log = logging.getLogger("training.isf")

CLASSIFIER_KIND = "gnr-anime attribute classifier"
FACE_BOX = (0.22, 0.78, 0.30, 0.78)          # x0, x1, y0, y1 as fractions of the render


# -------------------------------------------------------------------------------------------------
# The separate classifier
# -------------------------------------------------------------------------------------------------
def soften(x: torch.Tensor) -> torch.Tensor:
    """Random translation, resolution loss (down to 50-100 % and back) and noise."""
    x = translate(x)
    s = x.shape[-1]
    k = int(torch.randint(s // 2, s + 1, ()))
    if k < s:
        x = F.interpolate(F.interpolate(x, size=(k, k), mode="bilinear", antialias=True,
                                        align_corners=False), size=(s, s), mode="bilinear",
                          align_corners=False)
    return x + torch.randn_like(x) * float(torch.rand(())) * 0.06


def train_classifier(data_b: str | Path, labels: str | Path, out: str | Path, *, size: int = 64,
                     holdout: float = 0.5, which: str = "holdout", attributes: Sequence[str] | None = None,
                     iters: int = 1500, batch: int = 32, lr: float = 1e-3, width: int = 32,
                     seed: int = 0, val_fraction: float = 0.1) -> dict:
    """Train the evaluation classifier on the ``which`` split; returns its summary (also stored
    in the file, with the weights)."""
    labelled = split(read_labels(labels, data_b, attributes), holdout, which)
    vocab = labelled.vocab
    imgs = load_images(labelled.files, size)
    lab = torch.from_numpy(labelled.labels)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(imgs), generator=g)
    n_val = max(1, int(len(imgs) * val_fraction))
    val, tr = order[:n_val], order[n_val:]
    torch.manual_seed(seed)
    net = AttributeNet(size, vocab.sizes, width, adversarial=False)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters)
    t0 = time.perf_counter()
    for it in range(iters):
        idx = tr[torch.randint(len(tr), (batch,))]
        _, logits = net(soften(unit(imgs[idx])))
        loss = sum(F.cross_entropy(lg, lab[idx][:, a]) for a, lg in enumerate(logits))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (it + 1) % 100 == 0:
            log.info("classifier step %d/%d  loss %.4f", it + 1, iters, float(loss.detach()))
    net.eval()
    with torch.no_grad():
        pred = torch.cat([predicted(net(unit(imgs[val[i:i + 256]]))[1]) for i in range(0, len(val), 256)])
    acc = (pred == lab[val]).float().mean(0)
    summary = {"val_accuracy": {n: round(float(a), 4) for n, a in zip(vocab.names, acc)},
               "train_images": len(tr), "val_images": n_val, "split": which, "holdout": holdout,
               "labels": str(labels), "iters": iters, "seconds": round(time.perf_counter() - t0, 1)}
    save_checkpoint({"kind": CLASSIFIER_KIND, "classifier": net.state_dict(), "size": size,
                     "width": width, "attributes": vocab.to_dict(), "summary": summary}, out)
    return summary


def load_classifier(path: str | Path) -> tuple[AttributeNet, AttributeVocab, dict]:
    ck = read_checkpoint(path)
    if ck.get("kind") != CLASSIFIER_KIND:
        raise CheckpointError(f"{path} is not an attribute classifier (python -m training.isf classifier)")
    vocab = AttributeVocab.from_dict(ck["attributes"])
    net = AttributeNet(int(ck["size"]), vocab.sizes, int(ck["width"]), adversarial=False)
    net.load_state_dict(ck["classifier"])
    return net.eval().requires_grad_(False), vocab, dict(ck.get("summary") or {})


# -------------------------------------------------------------------------------------------------
# Evaluation
# -------------------------------------------------------------------------------------------------
def _box(x: torch.Tensor) -> torch.Tensor:
    s = x.shape[-1]
    x0, x1, y0, y1 = (round(f * s) for f in FACE_BOX)
    return x[..., y0:y1, x0:x1]


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute difference in [0, 1] pixel units."""
    return (a.clamp(-1, 1) - b.clamp(-1, 1)).abs().flatten(1).mean(1) / 2


def _mean(t: torch.Tensor) -> float:
    return round(float(t.float().mean()), 4)


@torch.no_grad()
def evaluate(isf_path: str | Path, checkpoint: str | Path, classifier: str | Path,
             data_a: Sequence[DataSource], *, n_styles: int = 200, n_detail: int = 100,
             seed: int = 0, edit_seeds: tuple[int, int] = (0, 1), lpips=None, batch: int = 50) -> dict:
    """See the module docstring. Accuracy, kept attributes and ``face_l1`` are measured over all
    ``n_styles`` base styles; ``content_ratio`` and diversity (a second render per edit) over the
    first ``n_detail`` of them."""
    isf = load_isf(isf_path, checkpoint=checkpoint)
    clf, cvocab, csummary = load_classifier(classifier)
    # The classifier may know more attributes than the ISF edits (one classifier for ISFs
    # trained on some columns of labels.csv); each one the ISF knows must have the same values.
    known = dict(zip(cvocab.names, cvocab.values))
    if any(tuple(known.get(n, ())) != tuple(v) for n, v in zip(isf.vocab.names, isf.vocab.values)):
        raise ISFError(f"the classifier knows {cvocab.describe()}, the ISF {isf.vocab.describe()}: "
                       "train the classifier on the same labels.csv")
    cols = [cvocab.names.index(n) for n in isf.vocab.names]
    G = load_generator(checkpoint)
    try:
        G_B2A = load_generator(checkpoint, which="G_B2A_ema")
    except CheckpointError:
        G_B2A = None
    if clf.size != G.size:
        raise ISFError(f"the classifier reads {clf.size}px images, the generator renders {G.size}px")
    if not data_a:
        raise ValueError("evaluate needs face images (--data-a) to render the base styles on")
    faces = load_images(face_paths(data_a, n_styles), G.size)
    contents = content_bank(G, faces)
    gen = torch.Generator().manual_seed(seed)
    face_idx = torch.arange(n_styles) % len(contents)
    other_face = (face_idx + 1 + torch.randint(len(contents) - 1, (n_styles,), generator=gen)) % len(contents) \
        if len(contents) > 1 else face_idx
    z = torch.randn(n_styles, G.latent_dim, generator=gen)
    z_other = torch.randn(n_styles, G.latent_dim, generator=gen)
    mapped = isf.space == "mapped"

    def codes(zz):
        return G.mapping(zz) if mapped else zz

    def render(fidx, cc):
        return torch.cat([G.decode(contents[fidx[i:i + batch]], cc[i:i + batch], use_mapping=not mapped)
                          for i in range(0, len(cc), batch)])

    def classify(y):
        return torch.cat([predicted(clf(y[i:i + batch].clamp(-1, 1))[1]) for i in range(0, len(y), batch)])[:, cols]

    def content_code(y):
        return torch.cat([G_B2A.encode(y[i:i + batch].clamp(-1, 1)).content.flatten(1)
                          for i in range(0, len(y), batch)])

    def fdist(a, b):
        return torch.cat([feature_distance(clf, a[i:i + batch].clamp(-1, 1), b[i:i + batch].clamp(-1, 1))
                          for i in range(0, len(a), batch)])

    def lp(a, b):
        return torch.cat([lpips(a[i:i + batch].clamp(-1, 1), b[i:i + batch].clamp(-1, 1)).flatten()
                          for i in range(0, len(a), batch)])

    t0 = time.perf_counter()
    s = codes(z)
    y0 = render(face_idx, s)
    p0 = classify(y0)
    y_restyle = render(face_idx, codes(z_other))
    m = min(n_detail, n_styles)
    y_otherface = render(other_face[:m], s[:m])
    cc0 = content_code(y0[:m]) if G_B2A is not None else None
    face_gap = (cc0 - content_code(y_otherface[:m])).norm(dim=1).mean() if cc0 is not None else None
    reference = {"face_l1": _mean(_l1(_box(y_restyle), _box(y0))), "l1": _mean(_l1(y_restyle, y0)),
                 "feature": _mean(fdist(y_restyle[:m], y0[:m]))}
    if cc0 is not None:
        reference["content_ratio"] = _mean((content_code(y_restyle[:m]) - cc0).norm(dim=1).mean() / face_gap)
    if lpips is not None:
        reference["lpips"] = _mean(lp(y_restyle[:m], y0[:m]))

    # What the style code alone can change: the same face under 8 random styles.
    k_styles = 8
    fz = torch.randn(m * k_styles, G.latent_dim, generator=gen)
    pk = classify(render(face_idx[:m].repeat_interleave(k_styles), codes(fz))).view(m, k_styles, -1)
    varies = (pk != pk[:, :1]).any(dim=1).float().mean(0)          # per attribute

    names = isf.vocab.names
    per_attr: dict[str, dict] = {}
    for a, name in enumerate(names):
        rows = []
        for v, value in enumerate(isf.vocab.values[a]):
            edits = {name: value}
            y1 = render(face_idx, isf.edit_codes(s, edits, seed=edit_seeds[0]))
            y2 = render(face_idx[:m], isf.edit_codes(s[:m], edits, seed=edit_seeds[1]))
            p1 = classify(y1)
            hit = p1[:, a] == v
            changed = p0[:, a] != v
            others = [b for b in range(len(names)) if b != a]
            kept = {names[b]: _mean(p1[:, b] == p0[:, b]) for b in others}
            row = {"value": value, "accuracy": _mean(hit), "baseline": _mean(p0[:, a] == v),
                   "accuracy_changed": _mean(hit[changed]) if changed.any() else None,
                   "kept": _mean(torch.stack([p1[:, b] == p0[:, b] for b in others]).float()) if others else None,
                   "kept_per_attribute": kept,
                   "face_l1": _mean(_l1(_box(y1), _box(y0))),
                   "diversity_l1": _mean(_l1(y1[:m], y2)), "diversity_feature": _mean(fdist(y1[:m], y2))}
            if cc0 is not None:
                row["content_ratio"] = _mean((content_code(y1[:m]) - cc0).norm(dim=1).mean() / face_gap)
            if lpips is not None:
                row["diversity_lpips"] = _mean(lp(y1[:m], y2))
            rows.append(row)
        keys = [k for k in rows[0] if k not in ("value", "kept_per_attribute")]
        summary = {k: (round(float(np.mean([r[k] for r in rows if r[k] is not None])), 4)
                       if any(r[k] is not None for r in rows) else None) for k in keys}
        summary["lift"] = round(summary["accuracy"] - summary["baseline"], 4)
        summary["random_styles_change_it"] = _mean(varies[a])
        summary["per_value"] = rows
        per_attr[name] = summary
        log.info("%s: accuracy %.3f (baseline %.3f), kept %s, face_l1 %.4f, diversity_l1 %.4f",
                 name, summary["accuracy"], summary["baseline"], summary["kept"],
                 summary["face_l1"], summary["diversity_l1"])
    return {
        "isf": str(isf_path), "checkpoint": str(checkpoint), "classifier": str(classifier),
        "isf_space": isf.space, "isf_iter": isf.info.get("iter"),
        "n_styles": n_styles, "n_detail": m, "faces": len(contents), "seed": seed, "edit_seeds": list(edit_seeds),
        "classifier_summary": csummary,
        "measures": {
            "accuracy": "classifier (trained on held-out labelled anime, not the ISF's D) reads the value asked for",
            "kept": "classifier reads every other attribute as on the unedited render",
            "face_l1": "mean |edited - unedited| in [0,1] units inside the inner-face box " + str(FACE_BOX),
            "content_ratio": "GNR content-code distance edited vs unedited / two different faces, same style",
            "diversity_l1": "mean |seed0 - seed1| in [0,1] units, whole render",
            "diversity_feature": "LPIPS formula on the classifier's features, uncalibrated (not LPIPS's scale)",
            "diversity_lpips": "LPIPS (VGG) between the two seeds, only when LPIPS weights are given",
            "random_styles_change_it": "share of faces whose classified value differs among 8 random "
                                       "styles (no ISF): what the style code alone can change"},
        "reference_random_restyle": reference,
        "attributes": per_attr,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def write_json(obj: dict, path: str | Path) -> Path:
    return write_bytes_atomic(path, (json.dumps(obj, indent=2) + "\n").encode())
