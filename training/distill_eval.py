"""How closely a student reproduces its teacher, on held-out aligned faces.

    python -m training.distill_eval student.pt --teacher demo_model.pt --faces heldout/ --styles 8

For every face crop (each folder of ``--faces`` is reported on its own and together) and every
style — the locked style of a locked student, else ``--styles N`` seeds 0..N-1 as the apps'
``--style SEED`` makes them (or the seeds given with ``--style``) — the teacher's and the
student's outputs (both clamped to [-1, 1], as the apps show them) are compared:

* PSNR in dB over the image (peak-to-peak 2 in [-1, 1], i.e. 255 in pixels), averaged over
  images;
* SSIM (7x7 Gaussian window) and ``1 - SSIM``, the distance reported where LPIPS weights are
  absent;
* LPIPS(VGG) when its weights are given (``--lpips-weights``/``--lpips-lin``, local files only).

Prints a table and, with ``--json``, writes the figures.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .checkpoint import CheckpointError, read_checkpoint
from .data import DataError, MixedFolders
from .distill import SSIM_WINDOW, load_teacher
from .lpips import LPIPSWeightsError
from .messages import one_line
from .student import student_from_checkpoint
from .style import StyleCode, StyleError
from .train_config import DataSource


@torch.no_grad()
def fidelity(student, teacher_G, faces: torch.Tensor, styles: list[StyleCode], lpips=None,
             batch: int = 32) -> dict[str, float]:
    """Mean PSNR (dB), SSIM, 1 - SSIM (and LPIPS) of the student against the teacher over
    ``faces`` (N x 3 x S x S in [-1, 1]) x ``styles``."""
    import kornia

    psnr, ss, lp, n = [], [], [], 0
    for st in styles:
        z = st.tensor()
        for x in faces.split(batch):
            t = teacher_G.decode(teacher_G.encode(x).content, z).clamp(-1, 1)
            y = (student(x, z.expand(len(x), -1)) if student.config.dynamic_style
                 else student(x)).clamp(-1, 1)
            mse = (y - t).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
            psnr.append(10 * torch.log10(4.0 / mse))
            ss.append(kornia.metrics.ssim(y, t, SSIM_WINDOW, max_val=2.0).mean(dim=(1, 2, 3)))
            if lpips is not None:
                lp.append(lpips(y, t).flatten())
            n += len(x)
    out = {"images": n, "psnr_db": float(torch.cat(psnr).mean()),
           "psnr_db_min": float(torch.cat(psnr).min()), "ssim": float(torch.cat(ss).mean())}
    out["one_minus_ssim"] = 1 - out["ssim"]
    if lp:
        out["lpips"] = float(torch.cat(lp).mean())
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.distill_eval",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("student", type=Path, help="a student checkpoint (python -m training.distill)")
    p.add_argument("--teacher", type=Path, required=True, help="the GNR checkpoint it was distilled from")
    p.add_argument("--faces", type=Path, nargs="+", required=True, metavar="DIR",
                   help="folders of held-out aligned face crops (each reported on its own)")
    p.add_argument("--styles", type=int, default=8, help="seeds 0..N-1 (style-conditioned students; 8)")
    p.add_argument("--style", type=int, nargs="+", metavar="SEED", help="these seeds instead")
    p.add_argument("--lpips-weights", help="VGG16 weights for LPIPS (torchvision layout)")
    p.add_argument("--lpips-lin", help="LPIPS v0.1 linear weights")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    a = p.parse_args(argv)
    try:
        ck = read_checkpoint(a.student)
        student = student_from_checkpoint(ck, a.student)
        stored = ck.get("teacher") if isinstance(ck.get("teacher"), dict) else {}
        del ck
        teacher = load_teacher(a.teacher)
        if stored.get("sha256") not in (None, teacher.info["sha256"]):
            print(f"warning: {a.student} was distilled from {stored.get('name')}, not from "
                  f"{a.teacher.name} (sha256 differs)", file=sys.stderr)
        if student.size != teacher.config.size:
            raise CheckpointError(f"the student is {student.size}x{student.size}, the teacher "
                                  f"{teacher.config.size}x{teacher.config.size}")
        if student.config.dynamic_style:
            if a.styles < 1:
                raise StyleError(f"--styles must be >= 1, got {a.styles}")
            seeds = a.style or list(range(a.styles))
            styles = [StyleCode.from_seed(s, student.latent_dim) for s in seeds]
        else:
            styles = [student.style]
        lpips = None
        if a.lpips_weights:
            from .lpips import LPIPS
            lpips = LPIPS.from_files(a.lpips_weights, a.lpips_lin)
        groups = {}
        for folder in a.faces:
            mix = MixedFolders([DataSource(str(folder))], student.size, what="--faces")
            groups[str(folder)] = torch.stack([mix.dataset[i] for i in range(len(mix))])
        groups_all = torch.cat(list(groups.values()))
        results = {name: fidelity(student, teacher.G, x, styles, lpips) for name, x in groups.items()}
        if len(groups) > 1:
            results["all"] = fidelity(student, teacher.G, groups_all, styles, lpips)
    except (CheckpointError, DataError, StyleError, LPIPSWeightsError, FileNotFoundError,
            ValueError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    print(f"{a.student.name} vs {a.teacher.name}, {len(styles)} style(s): "
          + ", ".join(s.source for s in styles))
    cols = ["images", "psnr_db", "psnr_db_min", "ssim", "one_minus_ssim"] + (["lpips"] if lpips else [])
    print(f"{'faces':40s} " + " ".join(f"{c:>14s}" for c in cols))
    for name, r in results.items():
        print(f"{name[-40:]:40s} " + " ".join(
            f"{r[c]:14d}" if c == "images" else f"{r[c]:14.4f}" for c in cols))
    if a.json:
        from .fileio import write_bytes_atomic
        write_bytes_atomic(a.json, json.dumps({"student": str(a.student), "teacher": str(a.teacher),
                                               "styles": [s.to_dict() for s in styles],
                                               "results": results}, indent=1).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
