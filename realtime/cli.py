"""Command-line pieces shared by the apps (convert, webcam): model, style and face options,
and turning them into an engine and a face stage. Errors a user can fix are UsageError."""
from __future__ import annotations

import argparse
from pathlib import Path

ASSETS = Path(__file__).with_name("assets")
DEMO_VIDEO = ASSETS / "demo.mp4"
DEMO_CHECKPOINT = ASSETS / "demo_model.pt"


class UsageError(Exception):
    """A bad option, a missing file, or an impossible combination; printed as one line."""


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", type=Path,
                     help="a GNR checkpoint (the authors' release or one of ours)")
    src.add_argument("--engine", dest="engine_file", type=Path,
                     help="an exported model: .onnx (onnxruntime) or .engine (TensorRT)")
    src.add_argument("--model", choices=["identity", "demo"], default=None,
                     help="'identity': everything but the network (checks tracking and "
                          "paste-back); 'demo': the small demo model shipped with the package")
    st = g.add_mutually_exclusive_group()
    st.add_argument("--style", type=int, default=None, metavar="SEED",
                    help="style from a random seed (default 0)")
    st.add_argument("--style-image", type=Path, help="take the style from an anime face image")
    st.add_argument("--style-vector", type=Path, help="a .npy file of the style's 8 numbers")
    g.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime", "tensorrt"],
                   help="inference backend (default: the fastest available, printed)")
    g.add_argument("--device", default="auto",
                   help="cpu, cuda[:N], or auto: CUDA when there is a GPU (default auto)")


def add_face_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("faces")
    g.add_argument("--max-faces", type=int, default=1, help="faces to track per frame (default 1)")
    g.add_argument("--min-face", type=float, default=40.0,
                   help="skip faces smaller than this many pixels (default 40)")
    g.add_argument("--smooth-min-cutoff", type=float, default=None,
                   help="One-Euro min cutoff in Hz: lower is steadier when still")
    g.add_argument("--smooth-beta", type=float, default=None,
                   help="One-Euro beta: higher follows fast motion with less lag")
    g.add_argument("--crop-widen", type=float, default=1.0,
                   help="crop more (>1) or less (<1) around the face than the model's template")


def make_face_stage(args, crop_size: int):
    """(tracker, aligner) configured from the face options."""
    import dataclasses
    from .faces import Aligner, CropTemplate, FaceTracker, OneEuroConfig, TrackerConfig
    if not 1 <= args.max_faces <= 16:
        raise UsageError(f"--max-faces must be within 1..16, got {args.max_faces}")
    if args.min_face < 0:
        raise UsageError(f"--min-face must be >= 0, got {args.min_face}")
    smooth = OneEuroConfig()
    changes = {k: v for k, v in (("min_cutoff", args.smooth_min_cutoff), ("beta", args.smooth_beta))
               if v is not None}
    try:
        smooth = dataclasses.replace(smooth, **changes)
        template = CropTemplate.default(crop_size, widen=args.crop_widen)
        tracker = FaceTracker(TrackerConfig(max_faces=args.max_faces, min_face_px=args.min_face,
                                            smoothing=smooth), template=template)
    except ValueError as e:
        raise UsageError(str(e)) from None
    device = None if args.device == "cpu" else args.device
    return tracker, Aligner(template, device=device)


def apply_demo_defaults(args, console):
    """No input given: convert the shipped demo video with the shipped demo model."""
    args.inputs = [DEMO_VIDEO]
    if args.checkpoint is None and args.engine_file is None and args.model is None:
        args.model = "demo"
    return args


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when PyTorch sees a GPU, else 'cpu'; others are checked."""
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: no CUDA GPU is available to PyTorch here (use --device cpu)")
    if device != "cpu" and not device.startswith("cuda"):
        raise UsageError(f"--device must be cpu, cuda[:N] or auto, got {device!r}")
    return device


def build_engine(args, console, *, dynamic_style: bool = False):
    """The engine the options ask for; prints which backend runs and why. ``dynamic_style``
    asks for a style-as-input engine (live style changes without a rebuild)."""
    import torch
    from .engines.select import EngineRequest, open_engine
    args.device = resolve_device(args.device)
    model = args.model
    if model == "demo":
        if not DEMO_CHECKPOINT.exists():
            console.print("[yellow]note:[/] the demo model is not shipped in this build; running "
                          "--model identity (tracking and paste-back only, no stylization)")
            model = "identity"
        else:
            args.checkpoint = DEMO_CHECKPOINT
            model = None
    if model is None and args.checkpoint is None and args.engine_file is None:
        raise UsageError("no model: give --checkpoint CKPT, --engine FILE, or --model identity|demo")
    req = EngineRequest(checkpoint=args.checkpoint, engine_file=args.engine_file,
                        identity=model == "identity", backend=args.backend, device=args.device,
                        style_seed=args.style, style_image=args.style_image,
                        style_vector=args.style_vector, dynamic_style=dynamic_style)
    try:
        engine, why = open_engine(req)
    except (FileNotFoundError, ValueError, RuntimeError, OSError) as e:
        raise UsageError(str(e).splitlines()[0]) from None
    console.print(f"engine: [bold]{engine.name}[/] — {why}", soft_wrap=True)
    if not (engine.name.startswith("torch") and str(getattr(engine, "device", "cpu")) == "cpu"):
        # Alignment and paste-back run small torch ops in the pipeline's threads beside MediaPipe
        # and the engine's own thread pool: one intra-op thread each is much faster there.
        torch.set_num_threads(1)
    return engine
