"""ONNX export of the baked GNR generator, its metadata, and int8 quantization.

The default graph has ONE input and ONE output, ``input`` / ``output``: N x 3 x S x S RGB in
[-1, 1], float32 (or float16 for an fp16 graph), batch axis dynamic — any ONNX tool can run it.
Options:

* ``dynamic_style=True``: a second input ``style`` (B x latent_dim float32, B = 1 or N) and one
  graph for every style (the style-as-input variant of :mod:`export.bake`);
* ``io="uint8-nhwc"`` / ``"uint8-nchw"``: uint8 pixels in and out (N x S x S x 3 or N x 3 x S x S),
  the scaling to [-1, 1] and back (with rounding and clamping) inside the graph;
* ``target``: the graph layout measured fastest for a runtime — ``gpu`` (TensorRT, CUDA EP):
  blurs folded into the convolutions; ``cpu``: separate depthwise blurs (half the FLOPs);
  ``cpu-int8``: as ``cpu`` with the transposed convs as sub-pixel convs, which onnxruntime
  quantizes (see :mod:`export.bake`).

Metadata (``metadata_props``, read back with :func:`read_info`): ``gnr.info`` holds a JSON
object with the model config, the style vector and its source (or ``dynamic``), the source
checkpoint's sha256, precision, I/O mode, layout, opset and exporter version.

Students (:mod:`training.student`, written by ``python -m training.distill``) export through the
same functions with the same I/O and metadata contract, so every engine runs them unchanged:
``kind`` is ``"student"``, ``config`` the student's config (``size``, ``latent_dim``, widths),
``teacher`` the distilled GNR checkpoint. A locked-style student takes no style; a
style-conditioned one exports with ``dynamic_style=True`` (its FiLM style path as the ``style``
input, kept float32 in int8 graphs) or with a style, which is folded into its convolutions
(:meth:`training.student.Student.lock_style`). ``target``/``fold_blur``/``upsample`` do not
apply to students (one layout: plain convs and pixel-shuffle serve every runtime).

Files are written atomically (temporary file beside the target, fsync, rename).
"""
from __future__ import annotations

import io as _pyio
import json
import os
import warnings
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from training.fileio import atomic_path, sha256_file, write_bytes_atomic
from training.pixels import to_pixels, to_unit
from training.style import StyleCode

from .bake import bake, bake_dynamic
from .errors import ExportError

__all__ = ["ExportInfo", "ExportError", "export_onnx", "export_checkpoint", "export_student",
           "read_info", "quantize_onnx", "INPUT_NAME", "STYLE_NAME", "OUTPUT_NAME", "IO_MODES",
           "PRECISIONS", "TARGETS", "MIN_OPSET"]

INPUT_NAME, STYLE_NAME, OUTPUT_NAME = "input", "style", "output"
IO_MODES = ("float", "uint8-nchw", "uint8-nhwc")
PRECISIONS = ("fp32", "fp16")
# target -> (fold_blur, upsample): measured fastest per runtime (export/bake.py, FACTS.md)
TARGETS = {"gpu": (True, "transposed"), "cpu": (False, "transposed"),
           "cpu-int8": (False, "polyphase")}
MIN_OPSET = 17
METADATA_KEY = "gnr.info"
FORMAT_VERSION = 1
MAX_PROTO_BYTES = 2 ** 31 - 1


@dataclass(frozen=True)
class ExportInfo:
    """What an exported graph is: stored as JSON in the ONNX file's metadata."""

    config: dict
    size: int
    precision: str = "fp32"                 # fp32 | fp16 | int8
    io: str = "float"                       # float | uint8-nchw | uint8-nhwc
    dynamic_style: bool = False
    style: dict | None = None               # StyleCode.to_dict() for a baked style
    checkpoint_sha256: str | None = None
    checkpoint_name: str | None = None
    generator: str = "G_A2B_ema"
    fold_blur: bool = True
    upsample: str = "transposed"
    opset: int = MIN_OPSET
    quantization: dict | None = None
    exporter: str = "gnr-anime"
    created: str = ""
    format_version: int = FORMAT_VERSION
    kind: str = "gnr"                       # gnr | student (training.student)
    teacher: dict | None = None             # a student's teacher: name, sha256, which, config

    @property
    def style_code(self) -> StyleCode | None:
        return None if self.style is None else StyleCode.from_dict(self.style)

    @property
    def input_dtype(self) -> np.dtype:
        if self.io.startswith("uint8"):
            return np.dtype(np.uint8)
        return np.dtype(np.float16 if self.precision == "fp16" else np.float32)

    def input_shape(self, batch: int | str = "N") -> tuple:
        s = self.size
        return (batch, s, s, 3) if self.io == "uint8-nhwc" else (batch, 3, s, s)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ExportInfo":
        d = json.loads(text)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def describe(self) -> str:
        style = "dynamic style (input 'style')" if self.dynamic_style else \
            (f"style {self.style.get('source')}" if self.style else "no style")
        layout = "student" if self.kind == "student" else \
            f"blur {'folded' if self.fold_blur else 'separate'}"
        return (f"{self.size}x{self.size} {self.precision} {self.io} I/O, {style}, "
                f"{layout}, opset {self.opset}")


# ---------------------------------------------------------------------------------------------
# The exported module: pixel I/O around the baked generator
# ---------------------------------------------------------------------------------------------
class GraphIO(nn.Module):
    """Wraps a baked generator with the graph's input/output convention."""

    def __init__(self, model: nn.Module, io: str, dtype: torch.dtype, dynamic_style: bool):
        super().__init__()
        self.model, self.io, self.dtype, self.dynamic_style = model, io, dtype, dynamic_style

    def _in(self, x):
        if self.io == "float":
            return x
        if self.io == "uint8-nhwc":
            x = x.permute(0, 3, 1, 2)
        return to_unit(x, self.dtype)

    def _out(self, y):
        if self.io == "float":
            return y
        y = to_pixels(y)
        return y.permute(0, 2, 3, 1) if self.io == "uint8-nhwc" else y

    def forward(self, x, z=None):
        x = self._in(x)
        y = self.model(x, z) if self.dynamic_style else self.model(x)
        return self._out(y)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ExportError(f"{name} must be one of {list(choices)}, got {value!r}")


def export_onnx(G, path: str | os.PathLike, *, style: StyleCode | None = None,
                dynamic_style: bool = False, precision: str = "fp32", io: str = "float",
                target: str = "gpu", fold_blur: bool | None = None, upsample: str | None = None,
                opset: int = MIN_OPSET, checkpoint_sha256: str | None = None,
                checkpoint_name: str | None = None, generator: str = "G_A2B_ema") -> ExportInfo:
    """Export ``G`` (a training.networks.Generator) with a baked ``style``, or with
    ``dynamic_style=True`` as the style-as-input graph, to ``path`` (written atomically).

    ``target`` picks the layout ("gpu": blur folded; "cpu": separate depthwise blurs);
    ``fold_blur``/``upsample`` override it. Returns the metadata stored in the file.
    """
    _check_choice("precision", precision, PRECISIONS)
    _check_choice("io", io, IO_MODES)
    _check_choice("target", target, TARGETS)
    if opset < MIN_OPSET:
        raise ExportError(f"opset must be >= {MIN_OPSET}, got {opset}")
    if dynamic_style == (style is not None):
        raise ExportError("give exactly one of a style (--style/--style-image/--style-vector) or "
                          "dynamic_style=True (--dynamic-style)")
    cfg = G.config
    if style is not None:
        style = StyleCode.from_vector(style.vector, style.source, dim=cfg.latent_dim) \
            if isinstance(style, StyleCode) else StyleCode.from_vector(style, dim=cfg.latent_dim)
    t_fold, t_up = TARGETS[target]
    fold = t_fold if fold_blur is None else bool(fold_blur)
    up = t_up if upsample is None else upsample
    dtype = torch.float16 if precision == "fp16" else torch.float32
    G = G.to("cpu").eval()
    if dynamic_style:
        model = bake_dynamic(G, fold_blur=fold, upsample=up, dtype=dtype, device="cpu")
    else:
        model = bake(G, style, fold_blur=fold, upsample=up, dtype=dtype, device="cpu")
    wrapped = GraphIO(model, io, dtype, dynamic_style).eval()
    s = cfg.size
    # Every layer is size-agnostic, so the graph is traced on a small crop (a 256 fp16 trace runs
    # half-precision convs on the CPU: minutes) with the spatial axes marked dynamic, and the
    # model's size is written into the graph's input and output shapes afterwards.
    t = min(s, max(32, 2 ** (cfg.num_down + 2)))
    if io == "float":
        x = torch.zeros(1, 3, t, t, dtype=dtype)
    else:
        x = torch.full((1, t, t, 3) if io == "uint8-nhwc" else (1, 3, t, t), 128, dtype=torch.uint8)
    spatial = (1, 2) if io == "uint8-nhwc" else (2, 3)
    args: tuple = (x,)
    names = [INPUT_NAME]
    axes: dict[str, dict[int, str]] = {
        n: {0: "batch", spatial[0]: "height", spatial[1]: "width"} for n in (INPUT_NAME, OUTPUT_NAME)}
    if dynamic_style:
        args = (x, torch.zeros(1, cfg.latent_dim))
        names.append(STYLE_NAME)
        axes[STYLE_NAME] = {0: "style_batch"}
    info = ExportInfo(config=cfg.to_dict(), size=s, precision=precision, io=io,
                      dynamic_style=dynamic_style, style=style.to_dict() if style else None,
                      checkpoint_sha256=checkpoint_sha256, checkpoint_name=checkpoint_name,
                      generator=generator, fold_blur=fold, upsample=up, opset=opset,
                      created=_now())
    _write_graph(wrapped, args, names, axes, spatial, info, path,
                 f"GANs N' Roses face->anime generator, {info.describe()}")
    return info


def _write_graph(wrapped: nn.Module, args: tuple, names: list[str], axes: dict, spatial: tuple,
                 info: ExportInfo, path, doc: str) -> None:
    """Trace ``wrapped`` to ONNX, write the model's size into the ``spatial`` axes of its input
    and output, attach ``info`` as metadata, check the graph and write it atomically."""
    import onnx

    buf = _pyio.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, args, buf, dynamo=False, opset_version=info.opset,
                          input_names=names, output_names=[OUTPUT_NAME], dynamic_axes=axes,
                          do_constant_folding=True)
    model_proto = onnx.load_from_string(buf.getvalue())
    for vi in (*model_proto.graph.input, *model_proto.graph.output):
        if vi.name in (INPUT_NAME, OUTPUT_NAME):
            for axis in spatial:
                dim = vi.type.tensor_type.shape.dim[axis]
                dim.Clear()
                dim.dim_value = info.size
    _set_info(model_proto, info)
    model_proto.producer_name = "gnr-anime"
    model_proto.doc_string = doc
    onnx.checker.check_model(model_proto)
    _save(model_proto, path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _set_info(model_proto, info: ExportInfo) -> None:
    props = [p for p in model_proto.metadata_props if p.key != METADATA_KEY]
    del model_proto.metadata_props[:]
    model_proto.metadata_props.extend(props)
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info.to_json()


def _save(model_proto, path) -> Path:
    data = model_proto.SerializeToString()
    if len(data) > MAX_PROTO_BYTES:  # pragma: no cover - the released model is ~200 MB
        raise ExportError("the graph exceeds protobuf's 2 GB limit")
    return write_bytes_atomic(path, data)


def export_checkpoint(checkpoint: str | os.PathLike, path: str | os.PathLike, *,
                      which: str = "G_A2B_ema", **kwargs) -> ExportInfo:
    """Load ``which`` from a checkpoint and :func:`export_onnx` it, recording the checkpoint's
    sha256 and file name in the metadata. A student checkpoint (``python -m training.distill``)
    goes to :func:`export_student` instead (``which``, ``target``, ``fold_blur`` and
    ``upsample`` do not apply to it)."""
    from training.checkpoint import load_generator, read_checkpoint
    from training.student import is_student_file, student_from_checkpoint

    meta = dict(checkpoint_sha256=sha256_file(checkpoint), checkpoint_name=Path(checkpoint).name)
    if is_student_file(checkpoint):
        if which != "G_A2B_ema":
            raise ExportError(f"{checkpoint} is a student checkpoint (one network): --which "
                              f"{which} does not apply to it")
        ckpt = read_checkpoint(checkpoint)
        student = student_from_checkpoint(ckpt, checkpoint)
        for k in ("target", "fold_blur", "upsample"):
            kwargs.pop(k, None)
        style = kwargs.pop("style", None)
        if student.style is not None and style is not None and \
                _same_style(style, StyleCode.default(student.latent_dim)):
            style = None     # the apps' and the CLI's implicit default: the student's own style
        return export_student(student, path, style=style, teacher=ckpt.get("teacher"),
                              **meta, **kwargs)
    G = load_generator(checkpoint, which=which, device="cpu")
    return export_onnx(G, path, generator=which, **meta, **kwargs)


def _same_style(a, b) -> bool:
    va, vb = getattr(a, "vector", a), getattr(b, "vector", b)
    return len(va) == len(vb) and all(abs(float(x) - float(y)) < 1e-5 for x, y in zip(va, vb))


def export_student(student, path: str | os.PathLike, *, style: StyleCode | None = None,
                   dynamic_style: bool = False, precision: str = "fp32", io: str = "float",
                   opset: int = MIN_OPSET, checkpoint_sha256: str | None = None,
                   checkpoint_name: str | None = None, teacher: dict | None = None) -> ExportInfo:
    """Export a :class:`training.student.Student` to ``path`` (written atomically), with the
    same graph I/O and metadata contract as :func:`export_onnx`.

    A locked-style student: no ``style`` (or its own), no ``dynamic_style``. A style-conditioned
    student: ``dynamic_style=True`` (the style as a second input) or a ``style`` to lock in.
    """
    import copy

    _check_choice("precision", precision, PRECISIONS)
    _check_choice("io", io, IO_MODES)
    if opset < MIN_OPSET:
        raise ExportError(f"opset must be >= {MIN_OPSET}, got {opset}")
    cfg = student.config
    model = copy.deepcopy(student).to("cpu").eval()
    if cfg.dynamic_style:
        if dynamic_style == (style is not None):
            raise ExportError("this student is style-conditioned: give exactly one of a style "
                              "(--style/--style-image/--style-vector) or --dynamic-style")
        if style is not None:
            style = StyleCode.from_vector(getattr(style, "vector", style),
                                          getattr(style, "source", "vector"), dim=cfg.latent_dim)
            model = model.lock_style(style)
    else:
        if dynamic_style:
            raise ExportError("this student was distilled for one style (its style is locked "
                              "in): it cannot take the style as an input; distil with "
                              "--dynamic-style for that")
        own = model.style
        if style is not None and (own is None or not _same_style(style, own)):
            raise ExportError(f"this student was distilled for {own.source if own else 'one style'}"
                              f" and renders only that; it cannot be exported with "
                              f"{getattr(style, 'source', 'another style')} (distil with "
                              "--dynamic-style for any style)")
        style = own
    dtype = torch.float16 if precision == "fp16" else torch.float32
    model = model.to(dtype)
    if model.style_mlp is not None:
        model.style_mlp.float()              # the style path stays float32 (as in bake_dynamic)
    wrapped = GraphIO(model, io, dtype, dynamic_style).eval()
    s = cfg.size
    x = torch.zeros(1, 3, s, s, dtype=dtype) if io == "float" else \
        torch.full((1, s, s, 3) if io == "uint8-nhwc" else (1, 3, s, s), 128, dtype=torch.uint8)
    args: tuple = (x,)
    names = [INPUT_NAME]
    axes: dict[str, dict[int, str]] = {n: {0: "batch"} for n in (INPUT_NAME, OUTPUT_NAME)}
    if dynamic_style:
        args = (x, torch.zeros(1, cfg.latent_dim))
        names.append(STYLE_NAME)
        axes[STYLE_NAME] = {0: "style_batch"}
    info = ExportInfo(config=cfg.to_dict(), size=s, precision=precision, io=io,
                      dynamic_style=dynamic_style, style=style.to_dict() if style else None,
                      checkpoint_sha256=checkpoint_sha256, checkpoint_name=checkpoint_name,
                      generator="student", fold_blur=False, upsample="pixel_shuffle",
                      opset=opset, created=_now(), kind="student", teacher=teacher)
    _write_graph(wrapped, args, names, axes, (), info, path,
                 f"student of a GANs N' Roses face->anime generator, {info.describe()}")
    return info


def read_info(model: str | os.PathLike | bytes | Any) -> ExportInfo | None:
    """The :class:`ExportInfo` of an exported file (path, bytes, onnx.ModelProto, or an
    onnxruntime InferenceSession), or None for an ONNX file without our metadata."""
    props: Mapping[str, str]
    if hasattr(model, "get_modelmeta"):                    # onnxruntime session
        props = model.get_modelmeta().custom_metadata_map
    else:
        import onnx

        if isinstance(model, (bytes, bytearray)):
            proto = onnx.load_from_string(bytes(model))
        elif isinstance(model, (str, os.PathLike)):
            proto = onnx.load(str(model), load_external_data=False)
        else:
            proto = model
        props = {p.key: p.value for p in proto.metadata_props}
    text = props.get(METADATA_KEY)
    if text is None:
        return None
    try:
        return ExportInfo.from_json(text)
    except (ValueError, TypeError) as e:
        raise ExportError(f"corrupt {METADATA_KEY} metadata: {e}") from None


# ---------------------------------------------------------------------------------------------
# int8
# ---------------------------------------------------------------------------------------------
QUANT_METHODS = ("static", "dynamic")
CALIBRATIONS = ("minmax", "percentile", "entropy")


def quantize_onnx(src: str | os.PathLike, dst: str | os.PathLike, *, calibration: np.ndarray | None = None,
                  method: str = "static", calibrate: str = "minmax", per_channel: bool = True,
                  exclude_ops: Sequence[str] = ()) -> ExportInfo:
    """int8-quantize a float32 graph written by :func:`export_onnx` with onnxruntime's tools.

    ``method="static"``: QDQ format, int8 per-channel weights, uint8 activations whose ranges
    are calibrated on ``calibration`` (N x 3 x S x S float32 face crops in [-1, 1]).
    ``method="dynamic"``: weights only, activation ranges computed at run time (no calibration).
    The result keeps the metadata (precision "int8" and the quantization settings added).
    Export with ``target="cpu-int8"`` first: its transposed convs are plain convs, which
    onnxruntime runs in int8 (it has no int8 ConvTranspose on the CPU). uint8 activations with
    int8 weights is the fast pairing on CPUs with VNNI; on AVX2-only CPUs it can saturate.
    """
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_dynamic, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    _check_choice("method", method, QUANT_METHODS)
    _check_choice("calibrate", calibrate, CALIBRATIONS)
    info = read_info(src)
    if info is None:
        raise ExportError(f"{src} has no gnr metadata: quantize a graph written by "
                          "`python -m export onnx`")
    if info.precision != "fp32" or info.io != "float":
        raise ExportError(f"int8 quantization starts from an fp32 graph with float I/O; {src} is "
                          f"{info.precision} with {info.io} I/O (export it without --fp16/--io)")
    settings: dict[str, Any] = {"method": method, "per_channel": per_channel,
                                "weights": "int8", "tool": "onnxruntime.quantization"}
    student = info.kind == "student"
    ops = _quant_ops(exclude_ops, info.dynamic_style and not student)
    keep_float = _student_style_nodes(src) if student else []
    dst = Path(dst)
    with atomic_path(dst) as tmp:
        pre = tmp.with_name(tmp.name + ".pre.onnx")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            if method == "static":
                if calibration is None or len(calibration) == 0:
                    raise ExportError("static int8 quantization needs calibration face crops")
                calib = np.asarray(calibration, dtype=np.float32)
                if calib.ndim != 4 or calib.shape[1:] != (3, info.size, info.size):
                    raise ExportError(f"calibration crops must be N x 3 x {info.size} x "
                                      f"{info.size}, got {calib.shape}")
                dim = info.config["latent_dim"]
                styles = None
                if info.dynamic_style:
                    # a student's FiLM ranges vary with the style: calibrate over styles
                    # (seeds 0, 1, ...), one per crop; GNR graphs calibrate with style 0
                    seeds = range(len(calib)) if student else [0] * len(calib)
                    styles = [StyleCode.from_seed(k, dim).numpy()[None] for k in seeds]

                class Reader(CalibrationDataReader):
                    def __init__(self):
                        feeds = []
                        for i in range(len(calib)):
                            feed = {INPUT_NAME: calib[i:i + 1]}
                            if styles is not None:
                                feed[STYLE_NAME] = styles[i]
                            feeds.append(feed)
                        self._it = iter(feeds)

                    def get_next(self):
                        return next(self._it, None)

                settings.update(activations="uint8", calibrate=calibrate,
                                calibration_crops=int(len(calib)), format="QDQ")
                quantize_static(str(pre), str(tmp), Reader(), quant_format=QuantFormat.QDQ,
                                per_channel=per_channel, activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8,
                                calibrate_method={"minmax": CalibrationMethod.MinMax,
                                                  "percentile": CalibrationMethod.Percentile,
                                                  "entropy": CalibrationMethod.Entropy}[calibrate],
                                op_types_to_quantize=ops, nodes_to_exclude=keep_float,
                                extra_options={"ActivationSymmetric": False,
                                               "WeightSymmetric": True})
            else:
                settings.update(activations="dynamic uint8")
                quantize_dynamic(str(pre), str(tmp), per_channel=per_channel,
                                 weight_type=QuantType.QInt8,
                                 op_types_to_quantize=ops, nodes_to_exclude=keep_float)
        finally:
            pre.unlink(missing_ok=True)
        import onnx

        proto = onnx.load(str(tmp))
        new = replace(info, precision="int8", quantization=settings, created=_now())
        _set_info(proto, new)
        tmp.write_bytes(proto.SerializeToString())
    return new


def _quant_ops(exclude: Sequence[str], dynamic_style: bool) -> list[str]:
    """Op types to quantize. A baked graph has only convs, leaky ReLUs, residual adds and one
    scale; in a style-as-input graph the style path (MatMul/Gemm, Mul, Add on B x C vectors, and
    the demodulation) stays float, only the convolutions and activations are quantized."""
    ops = ["Conv", "ConvTranspose", "LeakyRelu"] + ([] if dynamic_style else ["Add", "Mul"])
    return [o for o in ops if o not in set(exclude)]


def _student_style_nodes(src) -> list[str]:
    """A student graph's style path — the style MLP and every FiLM scale and shift — stays
    float; its convolutions, activations and residual/skip additions are quantized."""
    import onnx

    graph = onnx.load(str(src), load_external_data=False).graph
    return [n.name for n in graph.node if "/film/" in n.name or "/style_mlp/" in n.name]
