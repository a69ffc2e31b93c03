"""Export a GNR generator or a distilled student: ONNX graphs, int8, TensorRT engines, parity.

    python -m export onnx --checkpoint CKPT [--style SEED | --style-image IMG |
                          --style-vector FILE | --dynamic-style] -o model.onnx
                          [--fp16] [--io float|uint8-nchw|uint8-nhwc] [--target gpu|cpu] [--int8]
    python -m export quantize model.onnx -o model.int8.onnx [--calibration FACES...]
    python -m export trt model.onnx -o model.engine --fp16 --batch 1:4:8
    python -m export verify --checkpoint CKPT model.onnx [model.engine ...] [--faces FACES...]

CKPT is a GNR checkpoint or a student checkpoint (python -m training.distill). A locked-style
student renders the one style it was distilled for and takes no style option; a
style-conditioned one takes a style to lock in (default --style 0) or --dynamic-style.
--target and --which do not apply to students (one layout serves every runtime); verify
compares a student's graphs with the student in PyTorch. onnx --edit ATTR=VALUE --attributes
ISF.pt bakes a style edited by an attribute model (python -m training.isf).

Exit status: 0 done (verify: every check passed), 1 a check failed or the work could not be done,
2 bad command line.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


class CliError(Exception):
    """An error to print as one line (exit status 1)."""


def _positive_int(flag):
    def parse(v):
        try:
            n = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {v!r}") from None
        if n < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
        return n
    parse.__name__ = flag
    return parse


def _batch(v):
    from .tensorrt import parse_batch_spec
    try:
        return parse_batch_spec(v)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_style(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--style", type=_positive_int("--style"), metavar="SEED",
                   help="style from a random seed (default 0), as the authors sample styles")
    g.add_argument("--style-image", type=Path, metavar="IMG",
                   help="the style of an anime face image (read by the checkpoint's G_B2A_ema)")
    g.add_argument("--style-vector", type=Path, metavar="FILE",
                   help="a .npy file with the 8 style floats")
    return g


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="{onnx,quantize,trt,verify}")

    p = sub.add_parser("onnx", help="export a locked-style (or style-as-input) ONNX graph")
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="a GNR checkpoint, or a student checkpoint (python -m training.distill; a "
                        "locked-style student takes no style option)")
    g = _add_style(p)
    g.add_argument("--dynamic-style", action="store_true",
                   help="style as a second graph input (one graph for every style)")
    p.add_argument("--attributes", type=Path, metavar="ISF.pt",
                   help="an attribute model for this checkpoint (python -m training.isf), for --edit")
    p.add_argument("--edit", action="append", default=None, metavar="ATTR=VALUE",
                   help="bake the style edited towards an attribute, e.g. --edit hair=red "
                        "(repeatable; needs --attributes)")
    p.add_argument("--edit-seed", type=int, default=0, metavar="N",
                   help="which of the many looks with those attributes (default 0)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    p.add_argument("--fp16", action="store_true", help="a float16 graph (GPU); style path stays fp32")
    p.add_argument("--io", default="float", choices=["float", "uint8-nchw", "uint8-nhwc"],
                   help="graph I/O: float [-1, 1] N x 3 x S x S (default), or uint8 pixels")
    p.add_argument("--target", choices=["gpu", "cpu"], default=None,
                   help="layout: gpu = blurs folded into the convs (default), cpu = separate "
                        "depthwise blurs, half the FLOPs (default with --int8, whose transposed "
                        "convs also become sub-pixel convs)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17, default 17)")
    p.add_argument("--which", default="G_A2B_ema", help="generator in the checkpoint (default G_A2B_ema)")
    p.add_argument("--int8", action="store_true",
                   help="quantize to int8 with onnxruntime (static QDQ, calibrated on face crops)")
    _add_quant_options(p)

    q = sub.add_parser("quantize", help="int8-quantize an fp32 graph written by 'onnx'")
    q.add_argument("model", type=Path, help="an fp32 .onnx written by python -m export onnx")
    q.add_argument("-o", "--output", type=Path, required=True)
    _add_quant_options(q)

    t = sub.add_parser("trt", help="build a TensorRT engine from an ONNX graph")
    t.add_argument("model", type=Path, help="the .onnx graph")
    t.add_argument("-o", "--output", type=Path, required=True, help="the .engine file to write")
    t.add_argument("--fp16", action="store_true", help="allow FP16 kernels (checked: fast FP16)")
    t.add_argument("--batch", type=_batch, default=(1, 4, 8), metavar="MIN:OPT:MAX",
                   help="optimization profile over the batch (default 1:4:8)")
    t.add_argument("--timing-cache", type=Path, default=None,
                   help="persistent timing cache (default: one per GPU model and TensorRT version, "
                        "~/.cache/gnr-anime/trt-timing-<gpu>-sm<cc>-trt<version>.cache)")
    t.add_argument("--workspace-gb", type=float, default=4.0, help="builder workspace (default 4)")
    t.add_argument("--log", type=Path, default=None, help="build log (default ENGINE.build.log)")
    t.add_argument("--verbose", action="store_true", help="print TensorRT's verbose log")

    v = sub.add_parser("verify", help="compare exported models with the PyTorch model on faces")
    v.add_argument("models", type=Path, nargs="+", help=".onnx and/or .engine files")
    v.add_argument("--checkpoint", type=Path, required=True,
                   help="the checkpoint they came from (GNR or student)")
    v.add_argument("--which", default="G_A2B_ema")
    v.add_argument("--faces", type=Path, nargs="+", default=None, metavar="FACE",
                   help="aligned face crops (images or .npy); default: the astronaut photo")
    _add_style(v)
    v.add_argument("--no-torch", action="store_true", help="skip the PyTorch engine rows")
    v.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    return ap


def _add_quant_options(p):
    p.add_argument("--int8-method", default="static", choices=["static", "dynamic"],
                   help="static: QDQ with calibrated activations (default); dynamic: weights only")
    p.add_argument("--calibrate", default="minmax", choices=["minmax", "percentile", "entropy"],
                   help="activation range calibration (default minmax)")
    p.add_argument("--calibration", type=Path, nargs="+", default=None, metavar="FACE",
                   help="aligned face crops for calibration (images or .npy); default: crops of "
                        "the astronaut photo")


def _style(args, latent_dim: int, checkpoint=None):
    from training.style import StyleCode, StyleError
    try:
        if getattr(args, "style_vector", None) is not None:
            return StyleCode.from_file(args.style_vector, latent_dim)
        if getattr(args, "style_image", None) is not None:
            return StyleCode.from_image(args.style_image, checkpoint)
        if getattr(args, "style", None) is not None:
            return StyleCode.from_seed(args.style, latent_dim)
    except StyleError as e:
        raise CliError(f"{_style_flag(args)}: {e}") from None
    return None


def _faces(paths, size, seed, flag):
    from .verify import astronaut_crops, load_face_crops
    try:
        return load_face_crops(paths, size) if paths else astronaut_crops(size, n=8, seed=seed)
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        raise CliError(f"{flag}: {e}") from None


def _int8_report(fp32_path, int8_path, size, out):
    """PSNR of the int8 graph against the fp32 graph on held-out face crops."""
    import onnxruntime as ort
    from .verify import astronaut_crops, compare
    faces = astronaut_crops(size, n=4, seed=12345).numpy()
    a = ort.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"])
    feed = {"input": faces}
    if len(a.get_inputs()) == 2:
        from training.style import StyleCode
        feed["style"] = StyleCode.from_seed(0).numpy()[None]
    m = compare(a.run(None, feed)[0], b.run(None, feed)[0])
    out(f"int8 vs fp32 on 4 held-out astronaut crops: {m}"
        + ("" if m.psnr_db >= 30 else "  (below the 30 dB target)"))
    return m


def cmd_onnx(args, out) -> int:
    from training.checkpoint import checkpoint_config, read_checkpoint
    from .onnx import export_checkpoint, quantize_onnx
    if not args.checkpoint.exists():
        raise CliError(f"--checkpoint: file not found: {args.checkpoint}")
    if args.int8 and (args.fp16 or args.io != "float"):
        raise CliError("--int8: starts from an fp32 graph with float I/O; drop --fp16/--io")
    ckpt = read_checkpoint(args.checkpoint)
    cfg = checkpoint_config(ckpt, args.checkpoint)
    locked, own = _locked_student(ckpt)
    del ckpt
    style = None
    if not args.dynamic_style:
        style = _style(args, cfg.latent_dim, args.checkpoint)
        if locked and style is not None and (own is None or style.vector != own.vector):
            raise CliError(f"{_style_flag(args)}: {args.checkpoint} is a locked-style student "
                           f"(distilled for {own.source if own else 'one style'}); it takes no "
                           "style option")
        if locked:
            style = own
            out(f"a locked-style student: its own style ({own.source if own else 'built in'})")
        elif style is None:
            from training.style import StyleCode
            style = StyleCode.from_seed(0, cfg.latent_dim)
            out("no style given: using --style 0")
    if args.edit or args.attributes is not None:
        style = _edited(args, style, locked, out)
    target = args.target or ("cpu" if args.int8 else "gpu")
    if args.int8 and target == "cpu":
        target = "cpu-int8"        # transposed convs as sub-pixel convs: int8 has no ConvTranspose
    kwargs = dict(dynamic_style=True) if args.dynamic_style else dict(style=style)
    t = time.perf_counter()
    if not args.int8:
        info = export_checkpoint(args.checkpoint, args.output, which=args.which,
                                 precision="fp16" if args.fp16 else "fp32", io=args.io,
                                 target=target, opset=args.opset, **kwargs)
        out(f"wrote {args.output} ({info.describe()}) in {time.perf_counter() - t:.1f} s")
        return 0
    with tempfile.TemporaryDirectory(dir=args.output.parent if args.output.parent.exists() else None) as d:
        fp32 = Path(d) / "fp32.onnx"
        export_checkpoint(args.checkpoint, fp32, which=args.which, target=target,
                          opset=args.opset, **kwargs)
        calib = _faces(args.calibration, cfg.size, 0, "--calibration")
        info = quantize_onnx(fp32, args.output, calibration=calib.numpy(), method=args.int8_method,
                             calibrate=args.calibrate)
        out(f"wrote {args.output} ({info.describe()}) in {time.perf_counter() - t:.1f} s")
        _int8_report(fp32, args.output, cfg.size, out)
    return 0


def _edited(args, style, locked: bool, out):
    """``style`` with the ``--edit`` attributes made by the ``--attributes`` model (checked to
    be trained for this checkpoint, or a student's teacher)."""
    from training.isf import EditError, ISFError, load_isf
    from training.messages import one_line
    if not args.edit:
        raise CliError("--attributes: give the edits to bake with --edit ATTR=VALUE")
    if args.attributes is None:
        raise CliError("--edit needs --attributes ISF.pt: an attribute model trained for this "
                       "checkpoint (python -m training.isf)")
    if args.dynamic_style:
        raise CliError("--edit bakes one edited style; --dynamic-style leaves the style to run time")
    if locked:
        raise CliError(f"--edit: {args.checkpoint} is a locked-style student: it renders only the "
                       "style it was distilled for")
    try:
        isf = load_isf(args.attributes, checkpoint=args.checkpoint)
        style = isf.edit(style, args.edit, seed=args.edit_seed)
    except FileNotFoundError as e:
        raise CliError(f"--attributes: {one_line(e)}") from None
    except EditError as e:
        raise CliError(f"--edit: {one_line(e)}") from None
    except ISFError as e:
        raise CliError(f"--attributes: {one_line(e)}") from None
    out(f"style: {style.source}")
    return style


def _locked_student(ckpt):
    """(True, its style or None) for a locked-style student checkpoint; (False, None) for a GNR
    checkpoint or a style-conditioned student."""
    from training.student import is_student_checkpoint
    from training.style import StyleCode
    if not is_student_checkpoint(ckpt) or (ckpt.get("student_config") or {}).get("dynamic_style"):
        return False, None
    return True, StyleCode.from_dict(dict(ckpt["style"])) if ckpt.get("style") else None


def _style_flag(args) -> str:
    return "--style-vector" if getattr(args, "style_vector", None) else \
        "--style-image" if getattr(args, "style_image", None) else "--style"


def cmd_quantize(args, out) -> int:
    from .onnx import read_info, quantize_onnx
    if not args.model.exists():
        raise CliError(f"model: file not found: {args.model}")
    info = read_info(args.model)
    if info is None:
        raise CliError(f"model: {args.model} has no gnr metadata (export it with python -m export onnx)")
    calib = _faces(args.calibration, info.size, 0, "--calibration")
    t = time.perf_counter()
    new = quantize_onnx(args.model, args.output, calibration=calib.numpy(),
                        method=args.int8_method, calibrate=args.calibrate)
    out(f"wrote {args.output} ({new.describe()}) in {time.perf_counter() - t:.1f} s")
    _int8_report(args.model, args.output, info.size, out)
    return 0


def cmd_trt(args, out) -> int:
    from .tensorrt import build_engine
    if not args.model.exists():
        raise CliError(f"model: file not found: {args.model}")
    if args.workspace_gb <= 0:
        raise CliError(f"--workspace-gb: must be > 0, got {args.workspace_gb}")
    t = time.perf_counter()
    side = build_engine(args.model, args.output, fp16=args.fp16, batch=args.batch,
                        timing_cache=args.timing_cache, workspace_gb=args.workspace_gb,
                        log_path=args.log, verbose=args.verbose)
    out(f"wrote {args.output} (TensorRT {side['tensorrt_version']} on {side['gpu_name']}, "
        f"batch {':'.join(map(str, side['batch']))}, fp16={side['fp16']}) in "
        f"{time.perf_counter() - t:.0f} s; log {side['log']}, sidecar {args.output}.json")
    return 0


def cmd_verify(args, out) -> int:
    from training.checkpoint import load_generator
    from training.student import is_student_file
    from .verify import verify
    if not args.checkpoint.exists():
        raise CliError(f"--checkpoint: file not found: {args.checkpoint}")
    for m in args.models:
        if not m.exists():
            raise CliError(f"models: file not found: {m}")
        if m.suffix.lower() not in (".onnx", ".engine", ".plan", ".trt"):
            raise CliError(f"models: {m} is neither .onnx nor a TensorRT .engine")
    if is_student_file(args.checkpoint):
        results, n_faces = _verify_student(args)
        return _verify_done(results, n_faces, args, out)
    G = load_generator(args.checkpoint, which=args.which)
    from training.fileio import sha256_file
    from .onnx import read_info
    digest = sha256_file(args.checkpoint)
    for m in args.models:
        info = read_info(m) if m.suffix.lower() == ".onnx" else None
        if info is not None and info.checkpoint_sha256 not in (None, digest):
            out(f"warning: {m} was exported from {info.checkpoint_name} (sha256 "
                f"{info.checkpoint_sha256[:12]}...), not from {args.checkpoint.name} "
                f"({digest[:12]}...): expect large errors")
    style = _style(args, G.latent_dim, args.checkpoint)
    faces = _faces(args.faces, G.size, 0, "--faces")
    results = verify(args.models, G, faces=faces, style=style, torch_backends=not args.no_torch)
    return _verify_done(results, len(faces), args, out)


def _verify_student(args):
    """``verify`` for a student checkpoint: each ONNX graph of it on onnxruntime's CPU provider,
    and the student as the torch engine runs it (a style folded into its convolutions), against
    the student in PyTorch float32, with the tolerances of :func:`export.verify.tolerance`.
    TensorRT engines of students are not checked here."""
    import onnxruntime as ort
    import torch
    from training.messages import one_line
    from training.pixels import to_pixels, to_unit
    from training.student import load_student
    from training.style import StyleCode
    from .onnx import INPUT_NAME, STYLE_NAME, read_info
    from .verify import VerifyResult, compare, passes, tolerance

    if args.which != "G_A2B_ema":
        raise CliError(f"--which: {args.checkpoint} is a student checkpoint (one network)")
    student = load_student(args.checkpoint)
    conditioned = student.config.dynamic_style
    given = _style(args, student.latent_dim, args.checkpoint)
    if given is not None and not conditioned and \
            (student.style is None or given.vector != student.style.vector):
        raise CliError(f"{_style_flag(args)}: {args.checkpoint} is a locked-style student "
                       f"({student.style.source if student.style else 'one style'}); it takes "
                       "no style option")
    faces = _faces(args.faces, student.size, 0, "--faces")
    default = given or StyleCode.from_seed(0, student.latent_dim)
    results = []

    @torch.no_grad()
    def reference(st):
        return student(faces, st.tensor() if conditioned else None)

    def onnxruntime_cpu(path, info, st):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = faces if info.io == "float" else to_pixels(faces)
        if info.io == "uint8-nhwc":
            x = x.permute(0, 2, 3, 1)
        feed = {INPUT_NAME: x.contiguous().numpy().astype(info.input_dtype)}
        if info.dynamic_style:
            feed[STYLE_NAME] = st.numpy()[None]
        y = torch.from_numpy(sess.run(None, feed)[0])
        if info.io == "uint8-nhwc":
            y = y.permute(0, 3, 1, 2)
        return to_unit(y) if info.io != "float" else y.float()

    for path in args.models:
        info = read_info(path) if path.suffix.lower() == ".onnx" else None
        if info is None or info.kind != "student":
            results.append(VerifyResult(path.name, "-", None, None, None,
                                        "skipped: not an ONNX graph of a student"))
            continue
        if info.size != student.size:
            raise CliError(f"models: {path} is a {info.size}x{info.size} model, the student is "
                           f"{student.size}x{student.size}")
        st = info.style_code or default
        tol = tolerance(info.precision, info.io)
        try:
            m = compare(reference(st), onnxruntime_cpu(path, info, st))
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types; reported
            results.append(VerifyResult(path.name, "onnxruntime-cpu", None, tol, False,
                                        f"failed to run: {one_line(e)}"))
            continue
        results.append(VerifyResult(path.name, "onnxruntime-cpu", m, tol, passes(m, tol)))
    if not args.no_torch:
        st = default if conditioned else student.style
        net = student.lock_style(st) if conditioned else student
        with torch.no_grad():
            m = compare(reference(st), net(faces))
        tol = tolerance("fp32")
        results.append(VerifyResult("checkpoint", "torch-cpu fp32", m, tol, passes(m, tol),
                                    "style folded in" if conditioned else ""))
    return results, len(faces)


def _verify_done(results, n_faces, args, out) -> int:
    _print_results(results, n_faces, out)
    if args.json:
        from training.fileio import write_bytes_atomic
        write_bytes_atomic(args.json, json.dumps([r.to_dict() for r in results], indent=1).encode())
    failed = [r for r in results if r.passed is False]
    return 1 if failed else 0


def _print_results(results, n_faces, out):
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"parity vs PyTorch fp32 on {n_faces} aligned face crops")
    for col in ("model", "backend", "max abs", "mean abs", "PSNR dB", "tolerance", "result"):
        table.add_column(col, no_wrap=True)
    skipped = []
    for r in results:
        if r.metrics is None:
            skipped.append(f"{r.model} {r.backend}: {r.note}")
            continue
        kind, bound = r.tolerance
        tol = f"max ≤ {bound:g}" if kind == "max_abs" else f"PSNR ≥ {bound:g}"
        table.add_row(r.model, r.backend, f"{r.metrics.max_abs:.2e}", f"{r.metrics.mean_abs:.2e}",
                      f"{r.metrics.psnr_db:.1f}", tol, "[green]pass[/]" if r.passed else "[red]FAIL[/]")
    console = Console(width=max(Console().width, 110))
    console.print(table)
    for line in skipped:
        console.print(f"  {line}")


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    out = print
    from .errors import BuildError, EngineError, ExportError
    from training.style import StyleError
    from training.checkpoint import CheckpointError
    try:
        return {"onnx": cmd_onnx, "quantize": cmd_quantize, "trt": cmd_trt,
                "verify": cmd_verify}[args.command](args, out)
    except (CliError, CheckpointError, StyleError, ExportError, BuildError, EngineError,
            FileNotFoundError) as e:
        from training.messages import one_line
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; nothing was written (exports are atomic)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
