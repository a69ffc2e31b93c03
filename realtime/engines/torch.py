"""PyTorch backend: the baked generator (:mod:`export.bake`).

* CPU: float32, blurs kept as depthwise convs (the layout measured fastest there).
* CUDA: float16, channels_last, blurs folded into the convolutions, and CUDA graphs (kernel
  launches replayed instead of re-issued; the live path runs the same shapes every frame).

Everything slow or fragile happens when the engine opens, in the opening thread, before any
pipeline thread exists:

* **Graphs**: one per batch size of :func:`graph_batches` (every size 1..16, then powers of
  two up to ``max_batch``; a batch between two captured sizes runs in the larger graph, padded),
  all captured at open into one shared memory pool (each graph keeps only its output alive, so
  sixteen graphs cost little more than the largest). Capture uses
  ``capture_error_mode="thread_local"`` on the engine's own side stream: the face and output
  threads of a pipeline already running on the same GPU (a second engine opened in the studio)
  keep uploading and pasting meanwhile. A running pipeline never captures.
* **cuDNN**: the warm-up before each capture runs under a *scoped* ``cudnn.benchmark`` (restored
  after), so cuDNN times its algorithms once per shape; the graphs then replay those kernels.
* **TF32 is off** for every CUDA forward of this engine (convolutions and matmuls in true
  float32: the fp32 engine matches the CPU model to 1e-4, and the float32 style path of the
  fp16 model is exact).
* **Devices**: every CUDA call runs under ``torch.cuda.device(self.device)`` (capture streams,
  replays and copies land on the engine's GPU, e.g. ``cuda:1``, whatever device the calling
  thread has current).
* **torch.compile** (``compiled=True``): Inductor compiles the model (``mode="default"``, no
  graphs of its own: the engine captures its CUDA graphs around the compiled code, which keeps
  capture at open, thread-local and in one pool) and is warmed at every captured batch size at
  open. Batch 1 gets a static graph and the others one dynamic-batch graph (two compiles, tens
  of seconds cold). Inductor's on-disk caches (FX graph cache, Triton kernels) live in a
  persistent folder (:func:`use_compile_cache`: ``$TORCHINDUCTOR_CACHE_DIR`` if set, else
  ``~/.cache/gnr-anime/inductor``), so a second start loads instead of compiling.

Inputs are copied into a graph's static buffer; the output is copied out (the next replay
overwrites the static one). ``TorchEngine`` has a baked style; :meth:`TorchEngine.rebake`
changes it (weights recomputed in float64, copied in place: graphs stay valid).
``TorchDynamicStyleEngine`` runs the style-as-input model and has a per-frame ``set_style``.

Students (:mod:`training.student`, ``python -m training.distill``) run in
``TorchStudentEngine`` (a locked-style student, or a style-conditioned one with a style folded
in) and ``TorchDynamicStyleStudentEngine`` (style as input): the same engine with the student in
place of the baked generator. :func:`open_torch` picks the class from the checkpoint
(:func:`training.student.is_student_file`).
"""
from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path

import torch

from export.bake import bake, bake_dynamic, default_layout
from training.style import StyleCode

from .base import BaseEngine, EngineRequestError, as_style, engine_device

__all__ = ["TorchEngine", "TorchDynamicStyleEngine", "TorchStudentEngine",
           "TorchDynamicStyleStudentEngine", "open_torch", "graph_batches", "cuda_math",
           "use_compile_cache", "GRAPH_EVERY_BATCH_UP_TO"]

GRAPH_EVERY_BATCH_UP_TO = 16
WARMUP_CALLS = 3


def graph_batches(max_batch: int) -> tuple[int, ...]:
    """The batch sizes captured at open: every size up to 16, then powers of two, then
    ``max_batch`` itself."""
    max_batch = int(max_batch)
    sizes = set(range(1, min(max_batch, GRAPH_EVERY_BATCH_UP_TO) + 1))
    p = GRAPH_EVERY_BATCH_UP_TO * 2
    while p < max_batch:
        sizes.add(p)
        p *= 2
    sizes.add(max_batch)
    return tuple(sorted(sizes))


@contextlib.contextmanager
def cuda_math(*, benchmark: bool, tf32: bool = False):
    """cuDNN autotuning and TF32 for the duration of the block, restored exactly after
    (``torch.backends.cudnn.flags``, and the matmul precision through the API that holds it:
    ``fp32_precision`` where PyTorch has it, else ``allow_tf32``)."""
    cudnn = torch.backends.cudnn
    matmul = torch.backends.cuda.matmul
    attr, value = ("fp32_precision", "tf32" if tf32 else "ieee") \
        if hasattr(matmul, "fp32_precision") else ("allow_tf32", tf32)
    before = getattr(matmul, attr)
    with cudnn.flags(enabled=cudnn.enabled, benchmark=benchmark,
                     deterministic=cudnn.deterministic, allow_tf32=tf32):
        setattr(matmul, attr, value)
        try:
            yield
        finally:
            setattr(matmul, attr, before)


def use_compile_cache(folder: str | os.PathLike | None = None) -> Path:
    """Point Inductor's on-disk caches at a persistent folder and turn its FX graph cache on.
    ``folder`` wins; else ``$TORCHINDUCTOR_CACHE_DIR`` if the user set it; else
    ``$XDG_CACHE_HOME/gnr-anime/inductor`` (``~/.cache/...``). Returns the folder."""
    import torch._inductor.config as inductor_config

    if folder is None:
        folder = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        folder = Path(base) / "gnr-anime" / "inductor"
    folder = Path(folder).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)   # read by Inductor at each lookup
    inductor_config.fx_graph_cache = True
    return folder


class TorchEngine(BaseEngine):
    """The locked-style generator in PyTorch (see the module docstring)."""

    def __init__(self, G, style: StyleCode | None, *, device="cpu", dtype: torch.dtype | None = None,
                 max_batch: int = 8, cuda_graphs: bool | None = None,
                 channels_last: bool | None = None, fold_blur: bool | None = None,
                 compiled: bool = False, compile_cache: str | os.PathLike | None = None,
                 _dynamic: bool = False):
        dev = engine_device(device)
        cuda = dev.type == "cuda"
        dtype = dtype or (torch.float16 if cuda else torch.float32)
        cfg = G.config
        super().__init__(device=dev, dtype=dtype, size=cfg.size, max_batch=max_batch,
                         dynamic_style=_dynamic, latent_dim=cfg.latent_dim)
        self._G = G.to("cpu").eval()
        fold, up = default_layout(dev)
        self._layout = dict(fold_blur=fold if fold_blur is None else fold_blur, upsample=up)
        self.channels_last = cuda if channels_last is None else channels_last
        self.cuda_graphs = cuda if cuda_graphs is None else cuda_graphs
        if self.cuda_graphs and not cuda:
            raise ValueError("CUDA graphs need a CUDA device")
        self.compiled = bool(compiled)
        prec = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))
        self.name = (f"torch-{dev.type} {prec}" + self.NAME_SUFFIX
                     + (" +compile" if self.compiled else "")
                     + (" +cudagraphs" if self.cuda_graphs else ""))
        self._graphs: dict[int, tuple] = {}
        self._static_in: torch.Tensor | None = None
        self.compile_cache: Path | None = None
        with self._on_device():
            self.style = self._first_style(style)
            self.model = self._build(self.style)
            # static: graphs read the style in place
            self._z = self.style.tensor(dev) if _dynamic else None
            if self.channels_last:
                self.model = self.model.to(memory_format=torch.channels_last)
            self._fn = self.model
            if self.compiled:
                self.compile_cache = use_compile_cache(compile_cache)
                self._fn = torch.compile(self.model, fullgraph=True)
            if self.cuda_graphs:
                self._capture_all()
            elif self.compiled:
                self._warm(graph_batches(self.max_batch))

    # -- the model (what a subclass changes) ----------------------------------------------------
    NAME_SUFFIX = ""

    def _first_style(self, style) -> StyleCode | None:
        if self.dynamic_style:
            return as_style(style, self.latent_dim) if style is not None else \
                StyleCode.default(self.latent_dim)
        if style is None:
            raise ValueError("TorchEngine needs a style to bake (or use TorchDynamicStyleEngine)")
        return as_style(style, self.latent_dim)

    def _build(self, style: StyleCode | None):
        """The network this engine runs, on its device in its precision: the generator baked
        with ``style``, or its style-as-input variant."""
        if self.dynamic_style:
            return bake_dynamic(self._G, dtype=self.dtype, device=self.device, **self._layout)
        return bake(self._G, style, dtype=self.dtype, device=self.device, **self._layout)

    def _load_in_place(self, fresh) -> None:
        self.model.load_baked(fresh)

    # -- opening --------------------------------------------------------------------------------
    def _on_device(self):
        return torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()

    def _math(self, benchmark: bool | None = None):
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        return cuda_math(benchmark=torch.backends.cudnn.benchmark if benchmark is None else benchmark,
                         tf32=False)

    def _forward(self, x):
        return self._fn(x, self._z) if self.dynamic_style else self._fn(x)

    def _input_buffer(self, n: int) -> torch.Tensor:
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return torch.zeros(n, 3, self.size, self.size, device=self.device,
                           dtype=self.dtype).contiguous(memory_format=fmt)

    @torch.no_grad()
    def _warm(self, sizes) -> None:
        """Compile (if compiled) and warm every batch size, before anyone runs the engine."""
        x = self._input_buffer(max(sizes))
        with self._math(benchmark=True):
            for n in sizes:
                for _ in range(WARMUP_CALLS):
                    self._forward(x[:n])

    @torch.no_grad()
    def _capture_all(self) -> None:
        """Warm up, then capture one CUDA graph per batch size of graph_batches(max_batch).
        Runs in the opening thread, under torch.cuda.device(self.device)."""
        sizes = graph_batches(self.max_batch)
        dev = self.device
        stream = torch.cuda.Stream(device=dev)    # own capture stream, on this engine's GPU
        pool = torch.cuda.graph_pool_handle()
        self._static_in = self._input_buffer(max(sizes))   # one input buffer; views per size
        with cuda_math(benchmark=True, tf32=False):
            stream.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(stream):       # warm-up: compiles, cuDNN picks algorithms
                for n in sizes:
                    for _ in range(WARMUP_CALLS):
                        self._forward(self._static_in[:n])
            torch.cuda.current_stream(dev).wait_stream(stream)
            # Every graph allocates in one private pool. Safe: the graphs are replayed one at a
            # time (SharedEngine, or one engine thread) and each output is cloned right after
            # its replay; the outputs themselves stay referenced, so no capture reuses them.
            for n in sizes:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=pool, stream=stream,
                                      capture_error_mode="thread_local"):
                    out = self._forward(self._static_in[:n])
                self._graphs[n] = (graph, out)
        torch.cuda.current_stream(dev).wait_stream(stream)
        torch.cuda.synchronize(dev)

    @property
    def captured_batches(self) -> tuple[int, ...]:
        """The batch sizes with a captured CUDA graph (empty without graphs)."""
        return tuple(sorted(self._graphs))

    # -- running ----------------------------------------------------------------------------
    @torch.no_grad()
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if not self.cuda_graphs:
            with self._on_device(), self._math():
                x = x.to(self.dtype)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                return self._forward(x).contiguous()
        n = x.shape[0]
        size = next(s for s in self._graphs if s >= n)      # dict in ascending order
        graph, out = self._graphs[size]
        with torch.cuda.device(self.device):
            self._static_in[:n].copy_(x)
            graph.replay()
            # a copy (the next replay overwrites out), in the default NCHW layout
            return out[:n].clone(memory_format=torch.contiguous_format)

    # -- style --------------------------------------------------------------------------------
    def rebake(self, style) -> None:
        """Change a baked style: weights recomputed (float64, seconds for the released model)
        and copied in place, so captured CUDA graphs and compiled code stay valid."""
        if self.dynamic_style:
            self.set_style(style)
            return
        style = as_style(style, self.latent_dim)
        with self._on_device():
            fresh = self._build(style)
            if self.channels_last:
                fresh = fresh.to(memory_format=torch.channels_last)
            self._load_in_place(fresh)
        self.style = style

    def close(self) -> None:
        self._graphs.clear()
        self._static_in = None


class _StyleInput:
    """``set_style`` of an engine whose style is a run-time input: a copy of 8 floats into the
    static style tensor its CUDA graphs read, cheap every frame."""

    def set_style(self, style) -> None:
        style = as_style(style, self.latent_dim)
        with torch.no_grad(), self._on_device():
            self._z.copy_(style.tensor(self.device))
        self.style = style


class TorchDynamicStyleEngine(_StyleInput, TorchEngine):
    """Style-as-input generator (``set_style`` every frame if need be)."""

    def __init__(self, G, style: StyleCode | None = None, **kwargs):
        super().__init__(G, style, _dynamic=True, **kwargs)


class TorchStudentEngine(TorchEngine):
    """A distilled student (:mod:`training.student`) in PyTorch, with every device feature of
    :class:`TorchEngine` (CUDA graphs, fp16, channels_last, torch.compile on CUDA).

    * A locked-style student renders the one style it was distilled for (``style`` None or
      its own); another style, or the style as an input, is an :class:`EngineRequestError`.
    * A style-conditioned student: :class:`TorchDynamicStyleStudentEngine` keeps the style an
      input (``set_style`` copies 8 floats, cheap every frame); here ``style`` (default seed 0)
      is folded into its convolutions (:meth:`training.student.Student.lock_style`, exact),
      and :meth:`rebake` folds another one in place.
    """

    NAME_SUFFIX = " student"

    def __init__(self, student, style=None, **kwargs):
        kwargs.pop("fold_blur", None)          # a student has no blur layout
        super().__init__(student, style, **kwargs)

    def _first_style(self, style) -> StyleCode | None:
        if self._G.config.dynamic_style:
            return as_style(style, self.latent_dim) if style is not None else \
                StyleCode.default(self.latent_dim)
        if self.dynamic_style:
            raise EngineRequestError("this student was distilled for one style (its style is "
                                     "locked in): live style changes need a student distilled "
                                     "with --dynamic-style")
        return self._own_style(style)

    def _own_style(self, style) -> StyleCode | None:
        own = self._G.style
        if style is None or own is None:
            return own
        style = as_style(style, self.latent_dim)
        if not _same(style, own):
            raise EngineRequestError(f"this student was distilled for {own.source} and renders "
                                     f"only that; it cannot render {style.source} (distil with "
                                     "--dynamic-style for every style)")
        return own

    def _build(self, style: StyleCode | None):
        net = self._G
        if net.config.dynamic_style and not self.dynamic_style:
            net = net.lock_style(style)        # a copy: FiLM folded in (float64), no style path
        else:
            net = copy.deepcopy(net)
        net = net.to(self.device, self.dtype)
        if net.style_mlp is not None:
            net.style_mlp.float()              # the style path stays float32 (as when exported)
        return net.eval().requires_grad_(False)

    def _load_in_place(self, fresh) -> None:
        self.model.load_state_dict(fresh.state_dict())

    def rebake(self, style) -> None:
        """Another style: copied in (style as input), folded into the weights in place
        (style-conditioned), or checked against the one style of a locked student."""
        if self.dynamic_style or self._G.config.dynamic_style:
            super().rebake(style)
        else:
            self.style = self._own_style(style)


class TorchDynamicStyleStudentEngine(_StyleInput, TorchStudentEngine):
    """A style-conditioned student with the style as a run-time input."""

    def __init__(self, student, style: StyleCode | None = None, **kwargs):
        super().__init__(student, style, _dynamic=True, **kwargs)


def _same(a: StyleCode, b: StyleCode) -> bool:
    return len(a.vector) == len(b.vector) and \
        all(abs(x - y) < 1e-5 for x, y in zip(a.vector, b.vector))


def open_torch(checkpoint, style: StyleCode | None = None, *, dynamic_style: bool = False,
               device="cpu", which: str = "G_A2B_ema", **kwargs) -> TorchEngine:
    """A torch engine from a checkpoint file — a GNR checkpoint, or a student checkpoint
    (:func:`training.student.is_student_file`), which gets a :class:`TorchStudentEngine` — or
    from an already loaded Generator or Student. ``style`` None: the default style (seed 0),
    or a locked student's own."""
    from training.networks import Generator
    from training.student import Student, is_student_file, load_student

    if isinstance(checkpoint, Student) or (not isinstance(checkpoint, Generator)
                                           and is_student_file(checkpoint)):
        if which != "G_A2B_ema":
            raise ValueError(f"{checkpoint} is a student checkpoint (one network): --which "
                             f"{which} does not apply to it")
        student = checkpoint if isinstance(checkpoint, Student) else load_student(checkpoint)
        cls = TorchDynamicStyleStudentEngine if dynamic_style else TorchStudentEngine
        return cls(student, style, device=device, **kwargs)
    if isinstance(checkpoint, Generator):
        G = checkpoint
    else:
        from training.checkpoint import load_generator
        G = load_generator(checkpoint, which=which, device="cpu")
    if dynamic_style:
        return TorchDynamicStyleEngine(G, style, device=device, **kwargs)
    return TorchEngine(G, style if style is not None else StyleCode.default(G.latent_dim),
                       device=device, **kwargs)
