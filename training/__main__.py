"""Train GANs N' Roses: ``python -m training --data-a FACES --data-b ANIME --run-dir runs/mine``.

Examples::

    # the paper's recipe at the released size (LPIPS needs local VGG16 weights)
    python -m training --data-a data/trainA --data-b data/trainB --run-dir runs/s2a \\
        --lpips-weights ~/weights/vgg16-397923af.pth

    # several face folders mixed by weight, fine-tuned from a checkpoint
    python -m training --data-a selfies:3 celeba_male:1 --data-b anime --init GNR_checkpoint.pt \\
        --run-dir runs/male --iters 20000 --lpips-weights vgg16.pth

    # continue a run exactly where it stopped (Ctrl-C saves a checkpoint first)
    python -m training --resume runs/s2a

    # 4 GPUs on one machine, or several machines (same command on each, see torchrun --help)
    torchrun --nproc_per_node 4 -m training --data-a A --data-b B --run-dir runs/big ...

Exit codes: 0 finished, 130 interrupted (checkpoint saved), 3 a loss became NaN, 2 bad input.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from .checkpoint import CheckpointError
from .config import ModelConfig
from .data import DataError
from .lpips import LPIPSWeightsError
from .train_config import DataSource, TrainConfig, apply_changes, flag_for

log = logging.getLogger("training")

# CLI flag -> TrainConfig field (model fields as "model.NAME")
FLAG_FIELDS = {
    "iters": "iters", "batch": "batch", "seed": "seed", "lr": "lr",
    "size": "model.size", "num_down": "model.num_down", "latent_dim": "model.latent_dim",
    "n_mlp": "model.n_mlp", "n_res": "model.n_res", "channel_divisor": "model.channel_divisor",
    "adv_image": "adv_image", "adv_latent": "adv_latent", "style_consistency": "style_consistency",
    "cycle_mse": "cycle_mse", "cycle_lpips": "cycle_lpips", "style_recon": "style_recon",
    "r1": "r1", "d_reg_every": "d_reg_every", "ema_decay": "ema_decay", "lr_step": "lr_step",
    "log_every": "log_every", "sample_every": "sample_every", "checkpoint_every": "checkpoint_every",
    "keep": "keep_checkpoints", "workers": "workers", "amp": "amp",
    "lpips_weights": "lpips_weights", "lpips_lin": "lpips_lin",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Every loss weight defaults to the authors' train.py; see training/train_config.py.")
    g = p.add_argument_group("data and run")
    g.add_argument("--data-a", nargs="+", metavar="DIR[:WEIGHT]",
                   help="face image folder(s), mixed by weight (default weight 1)")
    g.add_argument("--data-b", nargs="+", metavar="DIR[:WEIGHT]", help="anime image folder(s)")
    g.add_argument("--run-dir", type=Path, help="new run directory (default runs/YYYYmmdd-HHMMSS)")
    g.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue a run (its latest checkpoint, or a checkpoint file of it)")
    g.add_argument("--init", type=Path, metavar="CKPT",
                   help="start from a checkpoint's weights (fine-tuning: the authors' release or ours)")
    g.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    g = p.add_argument_group("schedule and model")
    g.add_argument("--iters", type=int, help="total training steps (default 300000)")
    g.add_argument("--batch", type=int, help="images per step per process (default 4)")
    g.add_argument("--seed", type=int, help="random seed (default 0)")
    g.add_argument("--lr", type=float, help="Adam learning rate for G and D (default 2e-3)")
    g.add_argument("--lr-step", type=int, help="halve the learning rate every N steps (default 100000)")
    g.add_argument("--size", type=int, help="image size, a power of two (default 256)")
    g.add_argument("--num-down", type=int, help="encoder downsamplings (default 4, the release)")
    g.add_argument("--latent-dim", type=int, help="style code size (default 8)")
    g.add_argument("--n-mlp", type=int, help="mapping MLP layers (default 5)")
    g.add_argument("--n-res", type=int, help="residual blocks at the content resolution (default 1)")
    g.add_argument("--channel-divisor", "--width-divisor", type=int, dest="channel_divisor",
                   help="divide every channel width by this (model width; default 1 = the paper's)")
    g.add_argument("--amp", action="store_true", default=None,
                   help="bf16 autocast: CUDA GPUs with native bf16 only (Ampere or newer), "
                        "refused elsewhere; not measured faster yet, so off by default")
    g = p.add_argument_group("losses (defaults: the authors' values)")
    g.add_argument("--adv-image", type=float, help="image adversarial weight (1)")
    g.add_argument("--adv-latent", type=float, help="latent (style) adversarial weight (2)")
    g.add_argument("--style-consistency", type=float, help="style variance over augmentations (50)")
    g.add_argument("--cycle-mse", type=float, help="cycle reconstruction MSE (20)")
    g.add_argument("--cycle-lpips", type=float, help="cycle reconstruction LPIPS (10)")
    g.add_argument("--style-recon", type=float, help="style reconstruction (5)")
    g.add_argument("--r1", type=float, help="R1 gamma (10)")
    g.add_argument("--d-reg-every", type=int, help="lazy R1 interval (16)")
    g.add_argument("--ema-decay", type=float, help="EMA generator decay (0.999)")
    g.add_argument("--no-lpips", action="store_true", help="train without the LPIPS cycle term")
    g.add_argument("--lpips-weights", help="VGG16 weights, torchvision layout (vgg16-397923af.pth)")
    g.add_argument("--lpips-lin", help="LPIPS v0.1 linear weights (lpips/weights/v0.1/vgg.pth); "
                                       "default: from an installed lpips package")
    g = p.add_argument_group("bookkeeping")
    g.add_argument("--log-every", type=int, help="log scalars every N steps (10)")
    g.add_argument("--sample-every", type=int, help="write a sample grid every N steps (1000)")
    g.add_argument("--checkpoint-every", type=int, help="write a checkpoint every N steps (2000)")
    g.add_argument("--keep", type=int, help="checkpoints kept (3)")
    g.add_argument("--workers", type=int, help="data loader processes (2)")
    return p


def _explicit(args) -> dict[str, object]:
    out = {}
    for flag, fieldname in FLAG_FIELDS.items():
        v = getattr(args, flag)
        if v is not None:
            out[fieldname] = v
    if args.no_lpips:
        out["lpips"] = False
    if args.data_a:
        out["data_a"] = tuple(DataSource.parse(s) for s in args.data_a)
    if args.data_b:
        out["data_b"] = tuple(DataSource.parse(s) for s in args.data_b)
    return out


def _apply(cfg: TrainConfig, changes: dict[str, object]) -> TrainConfig:
    return apply_changes(cfg, changes, "model", ModelConfig)


def _flag(fieldname: str) -> str:
    return flag_for(fieldname, FLAG_FIELDS, {"lpips": "--no-lpips", "data_a": "--data-a",
                                              "data_b": "--data-b"})


def resolve(args, parser) -> tuple[TrainConfig, Path, Path | None, Path | None]:
    """(config, run_dir, checkpoint to resume, checkpoint to init from)."""
    from .loop import ResumeError, config_for_init, latest_checkpoint
    explicit = _explicit(args)
    if args.resume is not None:
        if args.init is not None:
            parser.error("--init and --resume exclude each other (a resumed run already has weights)")
        target = args.resume
        if target.is_file():
            run_dir, ckpt = target.parent.parent, target
        else:
            run_dir, ckpt = target, None
        cfg_path = run_dir / "config.json"
        if not cfg_path.is_file():
            raise ResumeError(f"--resume {target}: no run config at {cfg_path} (is this a run directory "
                              "written by python -m training?)")
        stored = TrainConfig.load_json(cfg_path)
        wanted = _apply(stored, explicit)
        bad = {k: v for k, v in stored.differences(wanted).items()
               if k.split(".")[0] not in TrainConfig.RESUMABLE_CHANGES}
        if bad:
            raise ResumeError("cannot resume with a different training setup: " + "; ".join(
                f"{_flag(k)} is {b!r} here but {a!r} in {cfg_path}" for k, (a, b) in bad.items())
                + ". Start a new run (e.g. with --init from this run's checkpoint) to change these.")
        if ckpt is None:
            ckpt = latest_checkpoint(run_dir)
        return wanted, run_dir, ckpt, None

    if not args.data_a or not args.data_b:
        parser.error("--data-a and --data-b are required for a new run (or --resume RUN_DIR)")
    cfg = TrainConfig()
    if args.init is not None:
        init_model = config_for_init(args.init)
        asked = {k.split(".", 1)[1]: v for k, v in explicit.items() if k.startswith("model.")}
        clash = {k: (v, getattr(init_model, k)) for k, v in asked.items() if getattr(init_model, k) != v}
        if clash:
            raise CheckpointError(f"--init {args.init} has a different architecture: " + "; ".join(
                f"--{k.replace('_', '-')} {a} asked, checkpoint has {b}" for k, (a, b) in clash.items()))
        cfg = cfg.replace(model=init_model)
    cfg = _apply(cfg, explicit)
    run_dir = args.run_dir or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    from .loop import list_checkpoints
    if list_checkpoints(run_dir):
        raise ResumeError(f"{run_dir} already holds checkpoints: continue it with --resume {run_dir}, "
                          "or choose another --run-dir")
    return cfg, run_dir, None, args.init


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .loop import ResumeError, setup_distributed, setup_logging
    try:
        dist = setup_distributed(args.device)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    setup_logging(dist.main)
    try:
        cfg, run_dir, resume_ckpt, init = resolve(args, parser)
        if dist.world > 1:        # every rank uses rank 0's run directory name
            import torch.distributed as tdist
            box = [str(run_dir)]
            tdist.broadcast_object_list(box, src=0)
            run_dir = Path(box[0])
        lpips = None
        if cfg.uses_lpips:
            from .lpips import LPIPS
            lpips = LPIPS.from_files(cfg.lpips_weights, cfg.lpips_lin)
        if dist.main:
            run_dir.mkdir(parents=True, exist_ok=True)
            cfg.save_json(run_dir / "config.json")
            setup_logging(True, run_dir)
            log.info("run directory %s; model %s; LPIPS %s; %d process(es) on %s", run_dir,
                     cfg.model.describe(), "on" if cfg.uses_lpips else "OFF", dist.world, dist.device)
        if dist.world > 1:
            import torch.distributed as tdist
            tdist.barrier()
        from .loop import run_training
        result = run_training(cfg, run_dir, dist, lpips=lpips, init=init, resume_ckpt=resume_ckpt)
    except (DataError, CheckpointError, ResumeError, LPIPSWeightsError, FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if dist.world > 1:
            import torch.distributed as tdist
            if tdist.is_initialized():
                tdist.destroy_process_group()
    if dist.main:
        msg = {"done": "finished", "interrupted": "interrupted; resume with --resume " + str(run_dir),
               "nan": "stopped on a NaN loss"}[result.reason]
        log.info("%s at step %d; last checkpoint: %s", msg, result.step, result.last_checkpoint)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
