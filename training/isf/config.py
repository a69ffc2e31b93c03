"""The ISF training configuration: one frozen dataclass, written to RUN_DIR/config.json and into
every checkpoint, so a run can be resumed (and checked) exactly.

Loss weights (every one a flag of ``python -m training.isf``). Defaults follow the authors'
``train_mmuit.py`` (yhlleo/stylegan-mmuit) where the term exists there:

===================  ========  ===============================================================
field                default   term
===================  ========  ===============================================================
``adv``              0.1       non-saturating adversarial loss of the edited images (authors
                               1; see below)
``cls``              1         attribute classification of the edited images by D's heads:
                               edited attributes -> their target, the others -> what D reads
                               on the unedited image (authors' ``lambda_cls`` 1)
``perceptual``       1         LPIPS(edited, unedited) (authors' ``lambda_lpips`` 1); only with
                               LPIPS weights (--lpips-weights); recorded as off otherwise
``l2``               1         mean squared difference of edited and unedited images
``latent``           0.1       L2 distance of the edited code from the original (authors'
                               neighbouring constraint ``lambda_nb`` 0.1)
``cycle``            1         L1 of ISF(ISF(s, d), d_original) - s: editing back returns the
                               original code (authors' ``lambda_lat_cyc`` 1)
``cycle_image``      0         L1 of the image decoded from that code to the unedited image
                               (authors' ``lambda_src_cyc`` 1; off by default here: one more
                               decode per step on the CPU, and the code cycle already ties it)
``ds``               0.2       diversity-sensitive: minus the mean L1 between the images of two
                               random vectors for the same edit (authors' ``lambda_ds`` 0.2)
``r1``               1         R1 penalty on D's real/fake head at real images (authors 1),
                               lazily every ``r1_every`` steps
===================  ========  ===============================================================

Where this differs from the authors, and why (measured on the demo model, CPU runs of a few
hundred to a thousand steps, where the authors run 100k on GPUs):

* ``adv`` 0.1, not 1: the authors' generator draws in the domain of its training images; a
  frozen GNR's renders never pass for the labelled drawings, so D separates them at once (its
  logistic loss fell to 0.07 within 400 steps) and at weight 1 that gradient swamped the
  attribute signal (no edit was learnt in 440 steps).
* ``lr`` 1e-3 (ISF) and ``d_lr`` 1e-3 with Adam betas (0.9, 0.99), not 1e-5 with (0, 0.99):
  with a fixed discriminator, lr 1e-4/3e-4 learnt hair colour edits several times slower than
  1e-3 in the same 200 steps.
* before the first step, ``d_warmup`` steps train only D's attribute heads on the labelled
  images (no generator pass, a small share of a step's cost), so that the classification signal
  means something from the ISF's first step (not in the authors' code: a CPU schedule).
* ``d_size``: D may see the renders box-downsampled (32 for the 64 px demo: 4x cheaper).

Gradients are clipped at 1 as the authors do. The ISF's EMA copy (decay ``ema_decay``) is what
gets shipped.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..train_config import DataSource
from .nets import ISFNetConfig

# Fields that may change when a run is resumed (bookkeeping and length, not the recipe).
RESUMABLE_CHANGES = frozenset({"iters", "log_every", "sample_every", "checkpoint_every", "keep",
                               "workers"})


@dataclass(frozen=True)
class ISFConfig:
    net: ISFNetConfig = field(default_factory=ISFNetConfig)
    # -- inputs ----------------------------------------------------------------------------------
    checkpoint: str = ""                      # the frozen GNR checkpoint
    data_b: str = ""                          # anime images (labels.csv's 'file' is relative to it)
    labels: str = ""                          # labels.csv
    attributes: tuple[str, ...] = ()          # the columns used (empty: every column)
    data_a: tuple[DataSource, ...] = ()       # face images for content codes (empty: from anime)
    holdout: float = 0.5                      # share of labelled images kept away from the ISF
    max_faces: int = 1000                     # content codes kept in memory
    # -- schedule ------------------------------------------------------------------------------
    iters: int = 1500
    batch: int = 8
    seed: int = 0
    lr: float = 1e-3
    d_lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    edit_prob: float = 0.5                    # chance each attribute is edited in a training sample
    d_width: int = 16
    d_size: int = 0                           # D's input size (box-downsampled); 0: the generator's
    d_warmup: int = 1000                      # D attribute-head steps on real images before the ISF
    # -- losses ----------------------------------------------------------------------------------
    adv: float = 0.1
    cls: float = 1.0
    perceptual: float = 1.0
    l2: float = 1.0
    latent: float = 0.1
    cycle: float = 1.0
    cycle_image: float = 0.0
    ds: float = 0.2
    r1: float = 1.0
    r1_every: int = 4
    lpips: bool = False
    lpips_weights: str | None = None
    lpips_lin: str | None = None
    # -- bookkeeping ---------------------------------------------------------------------------
    log_every: int = 10
    sample_every: int = 250
    checkpoint_every: int = 250
    keep: int = 3
    n_sample_rows: int = 6

    def __post_init__(self):
        if int(self.d_size) < 0:
            raise ValueError(f"d_size must be >= 0 (0: the generator's size), got {self.d_size}")
        if int(self.d_warmup) < 0:
            raise ValueError(f"d_warmup must be >= 0, got {self.d_warmup}")
        for k in ("iters", "batch", "log_every", "sample_every", "checkpoint_every", "keep",
                  "r1_every", "d_width", "max_faces", "n_sample_rows"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(self, k)}")
        for k in ("adv", "cls", "perceptual", "l2", "latent", "cycle", "cycle_image", "ds", "r1",
                  "lr", "d_lr", "grad_clip"):
            v = float(getattr(self, k))
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{k} must be a finite number >= 0, got {v}")
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")
        if not 0 < self.edit_prob <= 1:
            raise ValueError(f"edit_prob must be in (0, 1], got {self.edit_prob}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    @property
    def uses_lpips(self) -> bool:
        return self.lpips and self.perceptual > 0

    # -- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["net"] = self.net.to_dict()
        d["betas"] = list(self.betas)
        d["attributes"] = list(self.attributes)
        d["data_a"] = [asdict(s) for s in self.data_a]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ISFConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ISF config keys {sorted(unknown)}")
        d = dict(d)
        d["net"] = ISFNetConfig.from_dict(d.get("net", {}))
        d["betas"] = tuple(d.get("betas", (0.0, 0.99)))
        d["attributes"] = tuple(d.get("attributes", ()))
        d["data_a"] = tuple(DataSource(**s) for s in d.get("data_a", ()))
        return cls(**d)

    def save_json(self, path: Path) -> None:
        from ..fileio import write_bytes_atomic
        write_bytes_atomic(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())

    @classmethod
    def load_json(cls, path: Path) -> "ISFConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def replace(self, **kw) -> "ISFConfig":
        return replace(self, **kw)

    def differences(self, other: "ISFConfig") -> dict[str, tuple[Any, Any]]:
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}
