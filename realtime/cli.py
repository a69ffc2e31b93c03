"""Command-line pieces shared by the apps (convert, webcam, studio): the model, style and face
flags, turned into the validated options of :mod:`realtime.compose`, and the process-wide
settings an app's ``main`` makes (and logs) once its engine is open. Nothing here mutates the
parsed arguments."""
from __future__ import annotations

import argparse
from pathlib import Path

from .compose import (BACKENDS, DEMO_CHECKPOINT, DEMO_VIDEO, MODELS, PASTE_MODES, ConfigError,
                      FaceOptions, ModelOptions)

__all__ = ["UsageError", "DEMO_CHECKPOINT", "DEMO_VIDEO", "add_model_arguments",
           "add_face_arguments", "add_verbosity", "model_options", "face_options",
           "apply_process_settings"]

# A bad option, a missing file or an impossible combination; printed as one line.
UsageError = ConfigError


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", type=Path,
                     help="a GNR checkpoint (the authors' release or one of ours)")
    src.add_argument("--engine", dest="engine_file", type=Path,
                     help="an exported model: .onnx (onnxruntime) or .engine (TensorRT)")
    src.add_argument("--model", choices=list(MODELS), default=None,
                     help="'demo': the small demo model shipped with the package; 'identity': "
                          "everything but the network (checks tracking and paste-back)")
    st = g.add_mutually_exclusive_group()
    st.add_argument("--style", type=int, default=None, metavar="SEED",
                    help="style from a random seed (default 0)")
    st.add_argument("--style-image", type=Path, help="take the style from an anime face image")
    st.add_argument("--style-vector", type=Path, help="a .npy file of the style's 8 numbers")
    g.add_argument("--attributes", type=Path, default=None, metavar="ISF.pt",
                   help="an attribute model for this checkpoint (python -m training.isf), for "
                        "--edit; --model demo has one built in")
    g.add_argument("--edit", action="append", default=None, metavar="ATTR=VALUE",
                   help="edit the style towards an attribute, e.g. --edit hair=red --edit "
                        "mouth=smile (repeatable; applied to whichever style was chosen)")
    g.add_argument("--edit-seed", type=int, default=0, metavar="N",
                   help="which of the many looks with those attributes (default 0)")
    g.add_argument("--backend", default="auto", choices=list(BACKENDS),
                   help="inference backend (default: the fastest available, printed)")
    g.add_argument("--device", default="auto",
                   help="cpu, cuda[:N], or auto: CUDA when there is a GPU (default auto)")


def add_face_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("faces")
    g.add_argument("--max-faces", type=int, default=1, help="faces to track per frame, 1..16 (default 1)")
    g.add_argument("--min-face", type=float, default=40.0,
                   help="skip faces smaller than this many pixels (default 40)")
    g.add_argument("--smooth-min-cutoff", type=float, default=None,
                   help="One-Euro min cutoff in Hz: lower is steadier when still")
    g.add_argument("--smooth-beta", type=float, default=None,
                   help="One-Euro beta: higher follows fast motion with less lag")
    g.add_argument("--crop-widen", type=float, default=1.0,
                   help="crop more (>1) or less (<1) around the face than the model's template, "
                        "0.25..4 (default 1)")
    g.add_argument("--paste", choices=list(PASTE_MODES), default="head",
                   help="what the anime crop replaces: 'head' the person's head and hair "
                        "(default), 'face' the inner face only, 'box' the whole crop, faded")
    g.add_argument("--match-colour", action="store_true",
                   help="tint the anime face to the real face's mean colour under the frame's light")
    g.add_argument("--deflicker", action="store_true",
                   help="less flicker: blend each anime crop with the last one, moved along by "
                        "the face's optical flow (no lag; costs a few ms a face on the CPU)")


def add_verbosity(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true",
                   help="say why the backend was chosen, and show MediaPipe's own log")


def model_options(args, *, dynamic_style: bool = False, default_demo: bool = False) -> ModelOptions:
    """The model flags as validated options (ConfigError names a bad flag)."""
    opts = ModelOptions(checkpoint=args.checkpoint, engine_file=args.engine_file, model=args.model,
                        style_seed=args.style, style_image=args.style_image,
                        style_vector=args.style_vector, backend=args.backend, device=args.device,
                        dynamic_style=dynamic_style, attributes=args.attributes,
                        edits=tuple(args.edit or ()), edit_seed=args.edit_seed)
    if default_demo:
        return opts.or_demo()
    if not opts.has_model:
        raise ConfigError("no model: give --checkpoint CKPT, --engine FILE, or --model demo|identity")
    return opts


def face_options(args) -> FaceOptions:
    return FaceOptions(max_faces=args.max_faces, min_face=args.min_face,
                       smooth_min_cutoff=args.smooth_min_cutoff, smooth_beta=args.smooth_beta,
                       crop_widen=args.crop_widen, paste=args.paste,
                       match_colour=args.match_colour, deflicker=args.deflicker)


def apply_process_settings(engine, log, verbose: bool = False) -> None:
    """Process-wide settings for a pipeline app, made by its ``main`` and said in one line:

    * one intra-op PyTorch thread unless the engine itself is PyTorch on the CPU: alignment and
      paste-back run small torch ops in the pipeline's threads beside MediaPipe and the engine's
      own thread pool, where one thread each is much faster than contending pools;
    * ``cudnn.benchmark`` on a CUDA engine: the shapes are fixed, so cuDNN times its algorithms
      once (the authors' predict.py does the same);
    * MediaPipe's native log lines (absl, TensorFlow Lite) are held back unless ``verbose``
      (:func:`realtime.faces.detect.show_native_logs`; their own switches, ``GLOG_minloglevel``
      and ``TF_CPP_MIN_LOG_LEVEL``, do not reach them).
    """
    import torch

    from .faces.detect import show_native_logs

    said = []
    dev = getattr(engine, "device", None)
    dev_type = getattr(dev, "type", str(dev))
    if not (str(getattr(engine, "name", "")).startswith("torch") and dev_type == "cpu"):
        torch.set_num_threads(1)
        said.append("1 torch thread")
    if dev_type == "cuda":
        torch.backends.cudnn.benchmark = True
        said.append("cudnn.benchmark on")
    show_native_logs(verbose)
    if verbose:
        said.append("MediaPipe's own log shown")
        log("process: " + ", ".join(said))
