"""The composition root: a validated config in, a ready pipeline out.

Every front end builds its pipelines here — ``realtime.convert``, ``realtime.webcam``, the
studio, the cluster workers and the benchmarks — so the stages are wired in exactly one place:

    model = open_model(ModelOptions(checkpoint="ckpt.pt", style_seed=7))     # once, shared
    source = open_source(FileInput("talk.mp4"))
    pipe = build_pipeline(PipelineConfig(output="composite"), source, model.engine,
                          sinks=[FileOutput("talk_anime.mp4", audio_from="talk.mp4")])
    stats = pipe.run()

* :class:`ModelOptions` — which model (checkpoint, exported file, ``demo`` or ``identity``), the
  style, backend and device; :func:`open_model` opens the engine once (it is shared by every
  pipeline that uses it, behind :class:`~realtime.engines.base.SharedEngine`).
* :class:`FaceOptions` — how faces are tracked and framed; :class:`PipelineConfig` — faces,
  output mode, live or file, batching.
* Inputs (:class:`FileInput`, :class:`LoopedInput`, :class:`CameraInput`) and outputs
  (:class:`FileOutput`, :class:`StreamOutput`, :class:`VirtualCameraOutput`) are plain specs;
  :func:`build_pipeline` decides the output frame size (:func:`realtime.pipeline.output_size`)
  and makes the sinks for it.

Every option is checked when its dataclass is built, and a bad one raises :class:`ConfigError`
naming the command-line flag, before any file is created.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from training.device import DeviceError, parse_device
from training.messages import one_line

from .attributes import AttributeConfigError
from .faces.composite import PASTE_MODES
from .pipeline import OUTPUT_MODES, Pipeline, PipelineStats, output_size

__all__ = ["ASSETS", "DEMO_VIDEO", "DEMO_CHECKPOINT", "DEMO_STUDENT", "DEMO_ISF", "MODELS", "BACKENDS",
           "ConfigError", "ModelOptions", "FaceOptions", "PipelineConfig", "OpenedModel", "FileInput",
           "LoopedInput", "CameraInput", "FileOutput", "StreamOutput", "VirtualCameraOutput",
           "open_model", "open_source", "make_sinks", "build_pipeline", "pipeline_device",
           "PASTE_MODES"]

ASSETS = Path(__file__).with_name("assets")
DEMO_VIDEO = ASSETS / "demo.mp4"
DEMO_CHECKPOINT = ASSETS / "demo_model.pt"
# The demo model distilled into a style-conditioned student (training/student.py; how it was made
# and how close it is: demo_student.json). ``--model demo`` runs it on the CPU, where it is the
# faster of the two (benchmarks.latency, demo config); on CUDA the demo model itself runs.
DEMO_STUDENT = ASSETS / "demo_student.pt"
DEMO_STUDENT_NAME = "demo model's CPU student"
# The demo model's attribute model (training/isf: "hair=red" instead of a seed; how it was
# trained and how well it does: demo_isf.json). ``--model demo`` loads it by itself.
DEMO_ISF = ASSETS / "demo_isf.pt"
MODELS = ("demo", "identity")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")
BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")


class ConfigError(ValueError):
    """A bad option, a missing file or an impossible combination; one line for the user that
    names the flag to change."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


# =============================================================================================
# Options
# =============================================================================================
@dataclass(frozen=True)
class ModelOptions:
    """The model and style. Exactly one of ``checkpoint``, ``engine_file`` and ``model``
    (``"demo"``: the small model shipped in the package; ``"identity"``: no network, for
    checking tracking and paste-back); at most one style source (none: the default style, or
    the one baked into an exported file)."""

    checkpoint: Path | None = None
    engine_file: Path | None = None
    model: str | None = None
    style_seed: int | None = None
    style_image: Path | None = None
    style_vector: Path | None = None
    backend: str = "auto"
    device: str = "auto"
    dynamic_style: bool = False          # style as a run-time input (live style changes)
    max_batch: int = 8
    threads: int | None = None
    attributes: Path | None = None       # an attribute model (ISF) file; automatic for demo
    edits: tuple[str, ...] = ()          # "hair=red", ... made to the style (--edit)
    edit_seed: int = 0                   # the multimodal choice of the edits (--edit-seed)

    def __post_init__(self) -> None:
        given = [n for n, v in (("--checkpoint", self.checkpoint), ("--engine", self.engine_file),
                                ("--model", self.model)) if v is not None]
        _check(len(given) <= 1, f"{' and '.join(given)}: give only one model")
        _check(self.model is None or self.model in MODELS,
               f"--model must be one of {', '.join(MODELS)}, got {self.model!r}")
        styles = [n for n, v in (("--style", self.style_seed), ("--style-image", self.style_image),
                                 ("--style-vector", self.style_vector)) if v is not None]
        _check(len(styles) <= 1, f"{' and '.join(styles)}: give only one style")
        _check(self.style_seed is None or 0 <= int(self.style_seed) < 2 ** 63,
               f"--style must be a seed in 0..2**63-1, got {self.style_seed}")
        _check(self.backend in BACKENDS,
               f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        try:
            object.__setattr__(self, "device", parse_device(self.device))
        except DeviceError as e:
            raise ConfigError(str(e)) from None
        _check(int(self.max_batch) >= 1, f"max_batch must be at least 1, got {self.max_batch}")
        _check(self.threads is None or int(self.threads) >= 1,
               f"--threads must be at least 1, got {self.threads}")
        object.__setattr__(self, "edits", tuple(self.edits or ()))
        for e in self.edits:
            _check(isinstance(e, str) and e.count("=") == 1 and all(p.strip() for p in e.split("=")),
                   f"--edit must be ATTRIBUTE=VALUE (e.g. --edit hair=red), got {e!r}")
        _check(not isinstance(self.edit_seed, bool) and isinstance(self.edit_seed, int)
               and 0 <= self.edit_seed < 2 ** 63,
               f"--edit-seed must be a seed in 0..2**63-1, got {self.edit_seed}")
        _check(not (self.edits and self.model == "identity"),
               "--edit: the identity model has no style to edit")
        for flag, path in (("--checkpoint", self.checkpoint), ("--engine", self.engine_file),
                           ("--style-image", self.style_image), ("--style-vector", self.style_vector),
                           ("--attributes", self.attributes)):
            if path is not None:
                p = Path(path)
                _check(p.exists(), f"{flag} {p}: no such file")
                _check(not p.is_dir(), f"{flag} {p}: is a folder, not a file")

    @property
    def has_model(self) -> bool:
        return any(v is not None for v in (self.checkpoint, self.engine_file, self.model))

    def or_demo(self) -> "ModelOptions":
        """These options, with the demo model when none was named."""
        return self if self.has_model else replace(self, model="demo")


@dataclass(frozen=True)
class FaceOptions:
    """Face tracking, framing and paste-back (the ``faces`` flags of every app).

    ``paste``: ``head`` (the anime head replaces the person's head and hair; the default for
    every model — the identity model too, so that ``--model identity`` runs and checks the same
    stages as a GNR model, segmentation included), ``face`` (the inner-face ellipse) or ``box``
    (the whole crop, faded at its edges). ``match_colour``: scale the stylised face's colours to
    the real face's mean colour under the frame's light. ``deflicker``: blend each stylised crop
    with the previous one carried along by the input's optical flow
    (:class:`~realtime.faces.temporal.FlowBlend`)."""

    max_faces: int = 1
    min_face: float = 40.0
    smooth_min_cutoff: float | None = None
    smooth_beta: float | None = None
    crop_widen: float = 1.0
    paste: str = "head"
    match_colour: bool = False
    deflicker: bool = False

    def __post_init__(self) -> None:
        _check(1 <= int(self.max_faces) <= 16, f"--max-faces must be within 1..16, got {self.max_faces}")
        _check(math.isfinite(self.min_face) and self.min_face >= 0,
               f"--min-face must be a number of pixels >= 0, got {self.min_face}")
        _check(self.smooth_min_cutoff is None or (math.isfinite(self.smooth_min_cutoff)
                                                  and self.smooth_min_cutoff > 0),
               f"--smooth-min-cutoff must be > 0 Hz, got {self.smooth_min_cutoff}")
        _check(self.smooth_beta is None or (math.isfinite(self.smooth_beta) and self.smooth_beta >= 0),
               f"--smooth-beta must be >= 0, got {self.smooth_beta}")
        _check(math.isfinite(self.crop_widen) and 0.25 <= self.crop_widen <= 4.0,
               f"--crop-widen must be within 0.25..4, got {self.crop_widen}")
        _check(self.paste in PASTE_MODES,
               f"--paste must be one of {', '.join(PASTE_MODES)}, got {self.paste!r}")
        _check(isinstance(self.match_colour, bool),
               f"--match-colour is on or off, got {self.match_colour!r}")
        _check(isinstance(self.deflicker, bool), f"--deflicker is on or off, got {self.deflicker!r}")


@dataclass(frozen=True)
class PipelineConfig:
    """One pipeline: faces, what to write, live (newest frame wins) or file (every frame, in
    order), and how many consecutive frames' faces a file-mode batch may gather."""

    faces: FaceOptions = field(default_factory=FaceOptions)
    output: str = "composite"
    live: bool = False
    batch_frames: int = 4

    def __post_init__(self) -> None:
        _check(self.output in OUTPUT_MODES,
               f"--output-mode must be one of {', '.join(OUTPUT_MODES)}, got {self.output!r}")
        _check(int(self.batch_frames) >= 1, f"--batch-frames must be at least 1, got {self.batch_frames}")


# =============================================================================================
# The model
# =============================================================================================
@dataclass
class OpenedModel:
    """An open engine and what to tell the user about it: ``summary`` is one short line
    (backend, device, precision, model), ``details`` the full reasoning of the choice."""

    engine: Any
    summary: str
    details: str
    options: ModelOptions
    attributes: Any = None               # realtime.attributes.Attributes, when the model has them
    base_style: Any = None               # the style before --edit (a StyleCode), when edited


def _runs_on_cpu(device: str) -> bool:
    """Whether an engine for ``--device`` computes on the CPU (``auto``: where PyTorch sees no
    CUDA GPU)."""
    if device == "cpu":
        return True
    if device != "auto":
        return False
    import torch
    return not torch.cuda.is_available()


def _style_fixed(checkpoint: Path | None, engine_file: Path | None) -> str | None:
    """Why a model cannot take live style changes — a locked-style student, or an ONNX file
    exported with its style baked in — else None. The apps that ask for them (the webcam, the
    studio) then run its one style."""
    if checkpoint is not None:
        from training.student import student_file_config
        student = student_file_config(checkpoint)
        if student is not None and not student.dynamic_style:
            return (f"{Path(checkpoint).name} is a locked-style student: it renders the one "
                    "style it was distilled for")
    elif engine_file is not None and Path(engine_file).suffix.lower() == ".onnx":
        from export.onnx import read_info
        try:
            info = read_info(engine_file)
        except Exception:  # noqa: BLE001 - opening the engine reports what is wrong with the file
            return None
        if info is not None and not info.dynamic_style:
            source = f" ({info.style['source']})" if info.style else ""
            return f"{Path(engine_file).name} has its style baked in{source}"
    return None


def open_model(opts: ModelOptions, log: Callable[[str], None] = lambda m: None) -> OpenedModel:
    """Open the engine ``opts`` asks for (demo resolved to the shipped file: on the CPU the demo
    model's student, :data:`DEMO_STUDENT`, where it is shipped; on CUDA the demo model). Live
    style changes asked of a model whose style is fixed (:func:`_style_fixed`) are dropped, with
    a note in ``log``. Errors a user can fix (a missing or wrong file, a backend that cannot run
    here) are ConfigError, one line."""
    from export.errors import EngineError

    from .engines.select import EngineRequest, open_engine

    opts = opts if opts.has_model else opts.or_demo()
    checkpoint, identity, name = opts.checkpoint, opts.model == "identity", None
    if opts.model == "demo":
        if DEMO_STUDENT.exists() and _runs_on_cpu(opts.device):
            checkpoint, name = DEMO_STUDENT, DEMO_STUDENT_NAME
        elif DEMO_CHECKPOINT.exists():
            checkpoint, name = DEMO_CHECKPOINT, "demo model"
        else:
            log("the demo model is not shipped in this build; running --model identity "
                "(tracking and paste-back only, no stylization)")
            identity = True
    dynamic = opts.dynamic_style
    fixed = _style_fixed(checkpoint, opts.engine_file) if dynamic else None
    if fixed:
        log(f"{fixed}, so live style changes are off")
        dynamic = False
    req = EngineRequest(checkpoint=checkpoint, engine_file=opts.engine_file, identity=identity,
                        backend=opts.backend, device=opts.device, style_seed=opts.style_seed,
                        style_image=opts.style_image, style_vector=opts.style_vector,
                        dynamic_style=dynamic, max_batch=opts.max_batch,
                        threads=opts.threads)
    attrs, base = None, None
    try:
        attrs = None if identity else _open_attributes(opts, checkpoint or opts.engine_file, log)
        if attrs is not None and attrs.edits:
            base = _unedited_style(req, attrs.isf.style_dim)
            req = replace(req, style=attrs.apply(base))
    except (AttributeConfigError, ValueError, OSError) as e:
        raise ConfigError(one_line(e)) from None
    try:
        engine, why = open_engine(req, log=log)
    except (EngineError, FileNotFoundError, ValueError, RuntimeError, OSError, KeyError,
            IndexError, EOFError) as e:
        raise ConfigError(one_line(e)) from None
    model = name or ("identity" if identity else Path(checkpoint or opts.engine_file).name)
    summary = f"{engine.name} on {engine.device}, {engine.size}x{engine.size}, {model}"
    if name == DEMO_STUDENT_NAME:
        why = (f"--model demo on the CPU runs {DEMO_STUDENT.name}, {DEMO_CHECKPOINT.name} "
               f"distilled into a faster student (--checkpoint {DEMO_CHECKPOINT} for the model "
               f"itself); {why}")
    if attrs is not None:
        summary += f", attributes {attrs.path.name} ({attrs.describe_edits()})"
    return OpenedModel(engine, summary, why, opts, attrs, base)


def _open_attributes(opts: ModelOptions, model_path: Path | None, log):
    """The attribute model the options name (``--model demo``: :data:`DEMO_ISF`, where it is
    shipped), checked against the model, with ``--edit`` parsed; None when there is none."""
    from .attributes import open_attributes

    path = opts.attributes
    if path is None and opts.model == "demo" and DEMO_ISF.exists():
        path = DEMO_ISF
    if path is None:
        if opts.edits:
            raise AttributeConfigError(
                "--edit needs --attributes ISF.pt: an attribute model trained for this checkpoint "
                "(python -m training.isf); --model demo has one built in")
        return None
    return open_attributes(path, model_path=model_path, edits=opts.edits, seed=opts.edit_seed,
                           log=log)


def _unedited_style(req, dim: int):
    """The style ``--edit`` starts from: the one asked for (seed, image or vector), else the one
    baked into an exported graph, else the default style."""
    from training.style import StyleCode

    from .engines.select import resolve_style

    style = resolve_style(req, dim)
    if style is None and req.engine_file is not None and \
            Path(req.engine_file).suffix.lower() == ".onnx":
        from export.onnx import read_info
        info = read_info(req.engine_file)
        style = info.style_code if info is not None else None
    return style if style is not None else StyleCode.default(dim)


def pipeline_device(engine) -> str:
    """Where frames are uploaded for alignment and paste-back: the engine's CUDA device, else
    the host."""
    dev = getattr(engine, "device", None)
    return str(dev) if dev is not None and getattr(dev, "type", str(dev)) == "cuda" else "cpu"


# =============================================================================================
# Inputs
# =============================================================================================
@dataclass(frozen=True)
class FileInput:
    """A video file, every frame in order (file mode), or a still photo (one frame; chosen by
    the suffix, :data:`realtime.sources.PHOTO_SUFFIXES`)."""
    path: Path


@dataclass(frozen=True)
class LoopedInput:
    """A video file played as if it were a camera: paced at its frame rate, looped."""
    path: Path
    loop: bool = True
    paced: bool = True
    max_frames: int | None = None

    def __post_init__(self) -> None:
        _check(self.max_frames is None or int(self.max_frames) >= 1,
               f"--max-frames must be at least 1, got {self.max_frames}")


@dataclass(frozen=True)
class CameraInput:
    """A camera, by OpenCV index."""
    index: int = 0

    def __post_init__(self) -> None:
        _check(int(self.index) >= 0, f"--camera must be an index >= 0, got {self.index}")


def open_source(spec):
    """The source a spec names (MediaError for a file or camera that cannot be used)."""
    from .sources import CameraSource, ImageSource, LoopingFileSource, VideoFileSource, is_photo

    if isinstance(spec, FileInput):
        return ImageSource(spec.path) if is_photo(spec.path) else VideoFileSource(spec.path)
    if isinstance(spec, LoopedInput):
        return LoopingFileSource(spec.path, loop=spec.loop, paced=spec.paced,
                                 max_frames=spec.max_frames)
    if isinstance(spec, CameraInput):
        return CameraSource(spec.index)
    raise TypeError(f"not an input spec: {spec!r}")


# =============================================================================================
# Outputs
# =============================================================================================
@dataclass(frozen=True)
class FileOutput:
    """A video file written atomically, or a still image when the suffix names one
    (:data:`realtime.sources.PHOTO_SUFFIXES`). For conversions, ``audio_from`` names the file
    whose sound is copied, and ``keep_timing`` keeps the source's timestamps, rotation, pixel
    aspect and (into .mov/.mkv) its editing format. ``keep_timing=False`` is a live recording:
    frames are stamped with the time they are written, and ``live_audio=True`` gives it a sound
    track fed by ``write_audio`` (the live sound, :mod:`realtime.audio`).
    ``codec`` None: the encoder follows the container (:func:`realtime.sinks.choose_encoding`)."""
    path: Path
    codec: str | None = None
    crf: int = 18
    preset: str = "veryfast"
    audio_from: Path | None = None
    keep_timing: bool = True
    live_audio: bool = False

    def __post_init__(self) -> None:
        _check(0 <= int(self.crf) <= 51, f"--crf must be within 0..51, got {self.crf}")
        _check(self.preset in X264_PRESETS,
               f"--preset must be one of {', '.join(X264_PRESETS)}, got {self.preset!r}")
        _check(not self.live_audio or (not self.keep_timing and self.audio_from is None),
               f"{self.path}: live sound goes into a live recording (keep_timing=False) that "
               "copies no other sound")


@dataclass(frozen=True)
class StreamOutput:
    """A live MPEG-TS stream, ``udp://HOST:PORT`` or ``tcp://HOST:PORT``. The URL's form is
    checked here; its host and connection when the sink is made. ``audio=True``: it carries the
    live sound too (fed by ``write_audio``)."""
    url: str
    audio: bool = False

    def __post_init__(self) -> None:
        from .sinks import stream_url_problem
        problem = stream_url_problem(self.url)
        _check(problem is None, f"--stream {self.url}: {problem}")


@dataclass(frozen=True)
class VirtualCameraOutput:
    """A virtual camera for video calls; ``required=False``: warn and go on without one."""
    required: bool = False


def make_sinks(specs: Sequence, size: tuple[int, int], fps: float, *, source=None,
               device: str = "cpu", warn: Callable[[str], None] = lambda m: None) -> list:
    """Sinks for the output specs at ``size`` (ready sink objects pass through). If one fails,
    those already made are aborted and the error is raised (an optional virtual camera only
    warns). ``warn`` also hears of an encoder fallback and of a stream dropped mid-run."""
    from .sinks import ImageFileSink, StreamSink, VideoFileSink, VirtualCameraSink
    from .sources import MediaError, is_photo

    w, h = size
    made: list = []
    try:
        for spec in specs:
            if isinstance(spec, FileOutput) and is_photo(spec.path):
                made.append(ImageFileSink(spec.path, width=w, height=h))
            elif isinstance(spec, FileOutput):
                info = getattr(source, "info", None) if spec.keep_timing else None
                made.append(VideoFileSink(spec.path, width=w, height=h, info=info,
                                          audio_from=str(spec.audio_from) if spec.audio_from else None,
                                          crf=spec.crf, preset=spec.preset, fps=fps,
                                          codec=spec.codec, device=device, warn=warn,
                                          live=not spec.keep_timing, live_audio=spec.live_audio))
            elif isinstance(spec, StreamOutput):
                made.append(StreamSink(spec.url, width=w, height=h, fps=fps, warn=warn,
                                       audio=spec.audio))
            elif isinstance(spec, VirtualCameraOutput):
                try:
                    cam = VirtualCameraSink(width=w, height=h, fps=fps)
                except MediaError as e:
                    if spec.required:
                        raise
                    warn(f"{e}; going on without it")
                    continue
                warn(f"virtual camera: {cam.device}")
                made.append(cam)
            elif hasattr(spec, "write"):
                made.append(spec)
            else:
                raise TypeError(f"not an output spec or sink: {spec!r}")
    except BaseException:
        for s in made:
            try:
                s.abort()
            except Exception:   # noqa: BLE001 - already failing; the first error is raised
                pass
        raise
    return made


# =============================================================================================
# The pipeline
# =============================================================================================
def build_pipeline(cfg: PipelineConfig, source, engine, sinks: Sequence = (), *,
                   on_output: Callable | None = None, stats: PipelineStats | None = None,
                   warn: Callable[[str], None] = lambda m: None) -> Pipeline:
    """Wire ``source`` → tracker → aligner → ``engine`` → compositor → sinks for ``cfg``.

    ``sinks``: output specs (made here at the output size the mode gives) or ready sinks.
    The returned pipeline has ``output_size`` (width, height) and ``fps``; it owns the tracker
    (and the head paste's masker) and closes them when its run ends. The ``head`` paste extends
    the anime hair beyond the crop for a stylising model, not for the identity model (it draws
    no anime hair)."""
    import dataclasses

    from .faces import (Aligner, Compositor, CropTemplate, FaceTracker, FlowBlend, HeadMasker,
                        OneEuroConfig, TrackerConfig)

    f = cfg.faces
    crop = int(engine.size)
    template = CropTemplate.default(crop, widen=f.crop_widen)
    smooth = OneEuroConfig()
    changes = {k: v for k, v in (("min_cutoff", f.smooth_min_cutoff), ("beta", f.smooth_beta))
               if v is not None}
    smooth = dataclasses.replace(smooth, **changes)
    device = pipeline_device(engine)
    size = output_size(cfg.output, source.frame_size, crop)
    fps = float(getattr(source, "fps", 30.0) or 30.0)
    made = make_sinks(sinks, size, fps, source=source, device=device, warn=warn)
    tracker = FaceTracker(TrackerConfig(max_faces=f.max_faces, min_face_px=f.min_face,
                                        smoothing=smooth), template=template)
    identity = getattr(engine, "name", "") == "identity"
    compositor = Compositor(template, mode=f.paste, match_colour=f.match_colour, extend_hair=not identity)
    masker = HeadMasker(template) if f.paste == "head" and cfg.output != "crop" else None
    deflicker = FlowBlend() if f.deflicker else None
    pipe = Pipeline(source, tracker, Aligner(template, device=None if device == "cpu" else device),
                    engine, compositor, made, live=cfg.live, output=cfg.output,
                    device=device, batch_frames=cfg.batch_frames, on_output=on_output,
                    stats=stats, masker=masker, deflicker=deflicker)
    pipe.output_size, pipe.fps = size, fps
    return pipe
