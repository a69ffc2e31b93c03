"""Attribute-conditioned styles (ISF-GAN) for a GNR checkpoint.

    # train an implicit style function for a frozen GNR checkpoint
    python -m training.isf --checkpoint CKPT --data-b ANIME_DIR --labels labels.csv \\
        --data-a FACES_DIR --run-dir runs/isf --iters 1500
    python -m training.isf --resume runs/isf                 # continue (Ctrl-C saves first)

    # the small file to ship / use (EMA weights, attributes, the GNR checkpoint's sha256)
    python -m training.isf ship runs/isf -o isf.pt

    # evaluate with a classifier trained separately, on the held-out labelled images
    python -m training.isf classifier --data-b ANIME_DIR --labels labels.csv -o clf.pt
    python -m training.isf evaluate --isf isf.pt --checkpoint CKPT --classifier clf.pt \\
        --data-a FACES_DIR -o isf_eval.json

    # a grid: rows are base styles, columns the edits
    python -m training.isf grid --isf isf.pt --checkpoint CKPT --data-a FACES_DIR -o grid.png

Exit codes: 0 done, 130 interrupted (checkpoint saved), 3 a loss became NaN, 2 bad input.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..messages import one_line
from ..train_config import DataSource

log = logging.getLogger("training.isf")

SUBCOMMANDS = ("evaluate", "classifier", "ship", "grid")
NET_FLAGS = ("space", "noise_dim", "noise_scale", "hidden", "mlp1_layers", "mlp2_layers",
             "residual")
TOP_FLAGS = ("checkpoint", "data_b", "labels", "holdout", "max_faces", "iters", "batch", "seed",
             "lr", "d_lr", "ema_decay", "edit_prob", "d_width", "d_size", "grad_clip", "d_warmup",
             "adv", "cls", "perceptual", "l2", "latent", "cycle", "cycle_image", "ds", "r1",
             "r1_every", "lpips_weights", "lpips_lin", "log_every", "sample_every",
             "checkpoint_every", "keep")


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.isf", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Subcommands: " + ", ".join(SUBCOMMANDS) + " (python -m "
                                       "training.isf SUBCOMMAND --help). Loss defaults: the ISF-GAN "
                                       "authors' values, see training/isf/config.py.")
    g = p.add_argument_group("inputs and run")
    g.add_argument("--checkpoint", help="the frozen GNR checkpoint (its G_A2B_ema renders the edits)")
    g.add_argument("--data-b", help="folder of labelled anime images (labels.csv's 'file' is relative to it)")
    g.add_argument("--labels", help="labels.csv: a 'file' column and one column per attribute")
    g.add_argument("--attributes", help="comma-separated columns to use (default: all)")
    g.add_argument("--data-a", nargs="+", metavar="DIR[:WEIGHT]",
                   help="face images whose content codes the edits are rendered on (default: the "
                        "anime images turned into faces by the checkpoint's G_B2A_ema)")
    g.add_argument("--holdout", type=float, help="share of labelled images kept for the evaluation "
                                                 "classifier, never shown to the ISF (0.5)")
    g.add_argument("--max-faces", type=int, help="content codes kept in memory (1000)")
    g.add_argument("--run-dir", type=Path, help="new run directory (default runs/isf-YYYYmmdd-HHMMSS)")
    g.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run (latest checkpoint, or a file of it)")
    g.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    g.add_argument("--threads", type=int, help="PyTorch CPU threads (default: PyTorch's; 1 on a "
                                               "shared, busy CPU)")
    g = p.add_argument_group("network")
    g.add_argument("--space", choices=["latent", "mapped"],
                   help="edit the 8-d code the engines take (latent, default) or the 512-d mapped style")
    g.add_argument("--noise-dim", type=int, help="random vector size (16)")
    g.add_argument("--noise-scale", type=float, help="the random vector enters the first MLP times "
                                                     "this (0.25; see training/isf/nets.py)")
    g.add_argument("--hidden", type=int, help="MLP width (256)")
    g.add_argument("--mlp1-layers", type=int, help="layers of the condition MLP (4)")
    g.add_argument("--mlp2-layers", type=int, help="layers of the output MLP (3)")
    g.add_argument("--no-residual", dest="residual", action="store_false", default=None,
                   help="output the second MLP's result itself, not added to the input code")
    g = p.add_argument_group("schedule")
    g.add_argument("--iters", type=int, help="training steps (1500)")
    g.add_argument("--batch", type=int, help="base styles per step (8)")
    g.add_argument("--seed", type=int, help="random seed (0)")
    g.add_argument("--lr", type=float, help="ISF Adam learning rate (1e-3)")
    g.add_argument("--d-lr", type=float, help="discriminator learning rate (1e-3)")
    g.add_argument("--ema-decay", type=float, help="EMA of the ISF weights, the shipped copy (0.995)")
    g.add_argument("--edit-prob", type=float, help="chance each attribute is edited in a sample (0.5)")
    g.add_argument("--d-width", type=int, help="discriminator base width (16)")
    g.add_argument("--d-size", type=int, help="discriminator input size, box-downsampled (default: "
                                              "the generator's; 32 makes D 4x cheaper at 64)")
    g.add_argument("--grad-clip", type=float, help="gradient norm clip, 0 off (1)")
    g.add_argument("--d-warmup", type=int, help="steps training only D's attribute heads on the "
                                                "labelled images before the ISF starts (1000)")
    g = p.add_argument_group("loss weights (see training/isf/config.py)")
    g.add_argument("--adv", type=float, help="adversarial (0.1)")
    g.add_argument("--cls", type=float, help="attribute classification of the edited images (1)")
    g.add_argument("--perceptual", type=float, help="LPIPS edited vs unedited (1; needs --lpips-weights)")
    g.add_argument("--l2", type=float, help="mean squared difference edited vs unedited (1)")
    g.add_argument("--latent", type=float, help="L2 distance of the edited code from the original (0.1)")
    g.add_argument("--cycle", type=float, help="editing back returns the original code (1)")
    g.add_argument("--cycle-image", type=float, help="...and its render the unedited image (0)")
    g.add_argument("--ds", type=float, help="diversity-sensitive (0.2)")
    g.add_argument("--r1", type=float, help="R1 on the discriminator's real/fake head (1)")
    g.add_argument("--r1-every", type=int, help="lazy R1 interval (4)")
    g.add_argument("--lpips-weights", help="VGG16 weights for LPIPS (turns the perceptual term on)")
    g.add_argument("--lpips-lin", help="LPIPS v0.1 linear weights (default: from an installed lpips package)")
    g = p.add_argument_group("bookkeeping")
    g.add_argument("--log-every", type=int, help="log scalars every N steps (10)")
    g.add_argument("--sample-every", type=int, help="sample grid every N steps (250)")
    g.add_argument("--checkpoint-every", type=int, help="checkpoint every N steps (250)")
    g.add_argument("--keep", type=int, help="checkpoints kept (3)")
    return p


def _overrides(a) -> dict:
    out = {k: getattr(a, k) for k in TOP_FLAGS if getattr(a, k) is not None}
    net = {k: getattr(a, k) for k in NET_FLAGS if getattr(a, k) is not None}
    if a.attributes is not None:
        out["attributes"] = tuple(x.strip() for x in a.attributes.split(",") if x.strip())
    if a.data_a:
        out["data_a"] = tuple(DataSource.parse(s) for s in a.data_a)
    if a.lpips_weights or a.lpips_lin:
        out["lpips"] = True
    if net:
        out["net"] = net
    return out


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _apply(cfg, changes: dict):
    changes = dict(changes)
    net = changes.pop("net", None)
    if net:
        cfg = cfg.replace(net=replace(cfg.net, **net))
    return cfg.replace(**changes)


def _train(argv) -> int:
    parser = _train_parser()
    a = parser.parse_args(argv)
    from ..checkpoint import CheckpointError
    from ..data import DataError
    from ..device import parse_device, resolve_device
    from ..loop import ResumeError, latest_checkpoint, list_checkpoints, setup_logging
    from ..lpips import LPIPSWeightsError
    from .config import RESUMABLE_CHANGES, ISFConfig
    from .train import resolve_config, run_isf_training
    setup_logging(True)
    _threads(a.threads)
    try:
        device = resolve_device(parse_device(a.device))
        changes = _overrides(a)
        if a.resume is not None:
            run_dir, ckpt = (a.resume.parent.parent, a.resume) if a.resume.is_file() else (a.resume, None)
            cfg_path = run_dir / "config.json"
            if not cfg_path.is_file():
                raise ResumeError(f"--resume {a.resume}: no run config at {cfg_path} (is this a run "
                                  "directory written by python -m training.isf?)")
            stored = ISFConfig.load_json(cfg_path)
            cfg = _apply(stored, changes)
            bad = {k: v for k, v in stored.differences(cfg).items() if k not in RESUMABLE_CHANGES}
            if bad:
                raise ResumeError("cannot resume with a different recipe: " + "; ".join(
                    f"{_flag(k)} is {n!r} here but {o!r} in {cfg_path}" for k, (o, n) in bad.items()))
            ckpt = ckpt or latest_checkpoint(run_dir)
        else:
            for flag in ("checkpoint", "data_b", "labels"):
                if getattr(a, flag) is None:
                    parser.error(f"{_flag(flag)} is required for a new run (or --resume RUN_DIR)")
            cfg = resolve_config(_apply(ISFConfig(), changes))
            run_dir = a.run_dir or Path("runs") / time.strftime("isf-%Y%m%d-%H%M%S")
            ckpt = None
            if list_checkpoints(run_dir):
                raise ResumeError(f"{run_dir} already holds checkpoints: continue it with --resume "
                                  f"{run_dir}, or choose another --run-dir")
        lpips = None
        if cfg.uses_lpips:
            from ..lpips import LPIPS
            lpips = LPIPS.from_files(cfg.lpips_weights, cfg.lpips_lin)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save_json(run_dir / "config.json")
        setup_logging(True, run_dir)
        log.info("run directory %s; ISF edits the %s (%d-d); perceptual term %s", run_dir,
                 "8-d style code" if cfg.net.space == "latent" else "512-d mapped style",
                 cfg.net.style_dim, "LPIPS" if cfg.uses_lpips else "OFF (no LPIPS weights given)")
        result = run_isf_training(cfg, run_dir, ckpt, device, lpips)
    except (DataError, CheckpointError, ResumeError, LPIPSWeightsError, FileNotFoundError,
            ValueError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    msg = {"done": "finished", "interrupted": f"interrupted; resume with --resume {run_dir}",
           "nan": "stopped on a NaN loss"}[result.reason]
    log.info("%s at step %d; last checkpoint: %s", msg, result.step, result.last_checkpoint)
    return result.exit_code


def _threads(n: int | None) -> None:
    if n is not None:
        if n < 1:
            raise SystemExit(f"error: --threads must be >= 1, got {n}")
        import torch
        torch.set_num_threads(n)


def _sub_parser(name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m training.isf {name}")
    p.add_argument("--threads", type=int, help="PyTorch CPU threads (default: PyTorch's)")
    if name == "classifier":
        p.description = ("train the evaluation classifier on the held-out labelled images (never "
                         "shown to an ISF trained with the same --holdout)")
        p.add_argument("--data-b", required=True)
        p.add_argument("--labels", required=True)
        p.add_argument("-o", "--out", type=Path, required=True)
        p.add_argument("--attributes", help="comma-separated columns (default: all)")
        p.add_argument("--holdout", type=float, default=0.5, help="the ISF's --holdout (0.5)")
        p.add_argument("--split", choices=["holdout", "train", "all"], default="holdout")
        p.add_argument("--size", type=int, default=64, help="the generator's image size (64)")
        p.add_argument("--iters", type=int, default=1500)
        p.add_argument("--batch", type=int, default=32)
        p.add_argument("--seed", type=int, default=0)
    elif name == "evaluate":
        p.description = "attribute accuracy, kept attributes, content preservation and diversity, as JSON"
        p.add_argument("--isf", required=True)
        p.add_argument("--checkpoint", required=True)
        p.add_argument("--classifier", required=True)
        p.add_argument("--data-a", nargs="+", required=True, metavar="DIR[:WEIGHT]")
        p.add_argument("--n-styles", type=int, default=200, help="random base styles (200)")
        p.add_argument("--n-detail", type=int, default=100,
                       help="of which the first N also get content codes and a second edit seed (100)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("-o", "--out", type=Path, default=Path("isf_eval.json"))
        p.add_argument("--lpips-weights")
        p.add_argument("--lpips-lin")
    elif name == "ship":
        p.description = "write the small ISF file (EMA weights, attributes, GNR sha256) from a run"
        p.add_argument("run", type=Path, help="a run directory (its latest checkpoint) or a checkpoint file")
        p.add_argument("-o", "--out", type=Path, required=True)
        p.add_argument("--note", default="")
    elif name == "grid":
        p.description = "rows: base styles; columns: unedited, then each edit"
        p.add_argument("--isf", required=True)
        p.add_argument("--checkpoint", required=True)
        p.add_argument("--data-a", nargs="+", required=True, metavar="DIR[:WEIGHT]")
        p.add_argument("-o", "--out", type=Path, required=True)
        p.add_argument("--rows", type=int, default=6)
        p.add_argument("--edit", action="append", metavar="ATTR=VALUE",
                       help="a column (repeatable; 'hair=red,mouth=smile' edits two at once); "
                            "default: every value of every attribute")
        p.add_argument("--seed", type=int, default=0, help="base styles and faces")
        p.add_argument("--edit-seed", type=int, default=0)
        p.add_argument("--scale", type=int, default=2)
    return p


def _subcommand(name: str, argv) -> int:
    a = _sub_parser(name).parse_args(argv)
    from ..checkpoint import CheckpointError
    from ..data import DataError
    from ..loop import setup_logging
    from ..lpips import LPIPSWeightsError
    setup_logging(True)
    _threads(a.threads)
    try:
        if name == "classifier":
            from .evaluate import train_classifier
            attrs = [x.strip() for x in a.attributes.split(",")] if a.attributes else None
            s = train_classifier(a.data_b, a.labels, a.out, size=a.size, holdout=a.holdout,
                                 which=a.split, attributes=attrs, iters=a.iters, batch=a.batch, seed=a.seed)
            print(f"{a.out}: validation accuracy {s['val_accuracy']} on {s['val_images']} images")
        elif name == "evaluate":
            from .evaluate import evaluate, write_json
            lpips = None
            if a.lpips_weights or a.lpips_lin:
                from ..lpips import LPIPS
                lpips = LPIPS.from_files(a.lpips_weights, a.lpips_lin)
            res = evaluate(a.isf, a.checkpoint, a.classifier, [DataSource.parse(s) for s in a.data_a],
                           n_styles=a.n_styles, n_detail=a.n_detail, seed=a.seed, lpips=lpips)
            write_json(res, a.out)
            for n, r in res["attributes"].items():
                print(f"{n:12s} accuracy {r['accuracy']:.3f} (unedited {r['baseline']:.3f})  kept "
                      f"{r['kept']}  face_l1 {r['face_l1']:.4f}  diversity_l1 {r['diversity_l1']:.4f}")
            print(f"wrote {a.out}")
        elif name == "ship":
            from ..loop import latest_checkpoint
            from .api import ship_isf
            src = a.run if a.run.is_file() else latest_checkpoint(a.run)
            out = ship_isf(src, a.out, a.note)
            print(f"{out}: {out.stat().st_size / 1e6:.2f} MB from {src}")
        elif name == "grid":
            from .grid import make_grid
            out = make_grid(a.isf, a.checkpoint, [DataSource.parse(s) for s in a.data_a], a.out,
                            rows=a.rows, edits=a.edit, seed=a.seed, edit_seed=a.edit_seed, scale=a.scale)
            print(f"wrote {out}")
    except (DataError, CheckpointError, LPIPSWeightsError, FileNotFoundError, ValueError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return _subcommand(argv[0], argv[1:])
    return _train(argv)


if __name__ == "__main__":
    sys.exit(main())
