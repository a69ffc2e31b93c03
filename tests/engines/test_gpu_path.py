"""Issue 12 (the GPU path), as far as a CPU can show it: graphs and compiles made at open and
never in a running pipeline, scoped cuDNN/TF32 settings, the provider that really runs,
TensorRT profiles and timing caches, ``auto`` falling back past failing candidates, the
onnxruntime install check. CUDA, multi-GPU and TensorRT parts skip with the reason."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from export.tensorrt import attach_timing_cache, default_timing_cache, style_profile
from export.verify import compare
from realtime.engines import (BackendUnavailableError, BaseEngine, CudaUnavailableError,
                              EngineError)
from realtime.engines.onnxruntime import (cuda_provider_options, onnxruntime_install_problem,
                                          open_onnx, session_backend, trt_profile_shapes)
from realtime.engines.select import (Capabilities, EngineRequest, _open, open_engine,
                                     rank_candidates)
from realtime.engines.torch import (TorchDynamicStyleEngine, TorchEngine, cuda_math,
                                    graph_batches)
from training.checkpoint import load_generator
from training.style import StyleCode
from tests.export.fixtures import reference

REPO = Path(__file__).resolve().parents[2]
STYLE = StyleCode.from_seed(2)
CUDA_REASON = None if torch.cuda.is_available() else \
    "needs a CUDA GPU (torch.cuda.is_available() is False here)"
no_cuda = pytest.mark.skipif(CUDA_REASON is not None, reason=str(CUDA_REASON))
one_gpu = pytest.mark.skipif(torch.cuda.device_count() < 2,
                             reason="needs two CUDA GPUs (cuda:1); this machine has "
                                    f"{torch.cuda.device_count()}")
GPU_CAPS = Capabilities(cuda=True, gpu_name="NVIDIA H100 80GB HBM3", torch_compile=True,
                        ort_providers=("CUDAExecutionProvider", "CPUExecutionProvider"))


# --- CUDA graphs: sizes, scoped settings -------------------------------------------------------
def test_graph_batch_sizes_cover_every_batch():
    assert graph_batches(1) == (1,)
    assert graph_batches(8) == tuple(range(1, 9))
    assert graph_batches(20) == tuple(range(1, 17)) + (20,)
    assert graph_batches(256) == tuple(range(1, 17)) + (32, 64, 128, 256)
    for m in (5, 20, 100):                               # every n <= max has a graph >= n
        assert all(any(s >= n for s in graph_batches(m)) for n in range(1, m + 1))


def _math_state() -> tuple:
    c, m = torch.backends.cudnn, torch.backends.cuda.matmul
    return (c.enabled, c.benchmark, c.deterministic, c.allow_tf32, m.allow_tf32,
            getattr(m, "fp32_precision", None),
            getattr(getattr(c, "conv", None), "fp32_precision", None))


def test_cudnn_and_tf32_settings_are_scoped():
    """Inside: autotuning as asked, TF32 off. After: every setting as it was, through both of
    PyTorch's precision APIs (Inductor's cache keys include them: a leak would make every
    compile after it miss the cache)."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = _math_state()
    with cuda_math(benchmark=not cudnn.benchmark, tf32=False):
        assert cudnn.benchmark is (not before[1]) and cudnn.allow_tf32 is False
        assert matmul.allow_tf32 is False and cudnn.enabled == before[0]
    assert _math_state() == before


def test_cpu_engine_captures_nothing(tiny_G):
    eng = TorchEngine(tiny_G, STYLE, max_batch=4)
    assert eng.captured_batches == () and not eng.cuda_graphs and "+cudagraphs" not in eng.name


# --- torch.compile: at open, never in a running pipeline; a persistent cache ------------------
def test_compiled_engine_is_warmed_at_open_and_its_cache_persists(tiny_G, faces32, tmp_path,
                                                                  monkeypatch):
    from torch._dynamo.utils import counters

    cache = tmp_path / "inductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(cache))      # restored after the test
    eng = TorchEngine(tiny_G, STYLE, max_batch=3, compiled=True, compile_cache=cache)
    assert eng.name == "torch-cpu fp32 +compile" and eng.compile_cache == cache.resolve()
    assert any(cache.rglob("*")), "Inductor wrote nothing to the persistent cache"
    graphs = counters["stats"]["unique_graphs"]
    out = {}

    def pipeline_thread():                               # every batch size, another thread
        out.update({n: eng(faces32[:n]) for n in (3, 1, 2)})
    t = threading.Thread(target=pipeline_thread)
    t.start()
    t.join()
    assert counters["stats"]["unique_graphs"] == graphs, "compiled again in a running pipeline"
    ref = reference(tiny_G, faces32, STYLE.tensor())
    for n, y in out.items():
        assert (y - ref[:n]).abs().max() <= 1e-4
    # a second start (another process, same cache folder): loaded, not compiled again
    code = ("import torch; from torch._dynamo.utils import counters; "
            "from tests.export.fixtures import tiny_generator, TINY; "
            "from realtime.engines.torch import TorchEngine; "
            "from training.style import StyleCode; torch.set_num_threads(1); "
            f"TorchEngine(tiny_generator(TINY), StyleCode.from_seed(2), max_batch=3, "
            f"compiled=True, compile_cache={str(cache)!r}); "
            "import json; print(json.dumps(dict(counters['inductor'])))")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    stats = json.loads(run.stdout.strip().splitlines()[-1])
    assert stats.get("fxgraph_cache_miss", 0) == 0 and stats.get("fxgraph_cache_hit", 0) >= 1, stats


# --- onnxruntime: what really ran, TF32, TensorRT profiles, the install check -----------------
def test_session_backend_is_what_started():
    cuda, trt, cpu = "CUDAExecutionProvider", "TensorrtExecutionProvider", "CPUExecutionProvider"
    assert session_backend("cpu", [cpu]) == "cpu"
    assert session_backend("cuda", [cuda, cpu]) == "cuda"
    assert session_backend("tensorrt", [trt, cuda, cpu]) == "tensorrt"
    # onnxruntime-gpu lists the TensorRT provider where TensorRT is absent, then drops it
    with pytest.raises(BackendUnavailableError, match="TensorRT execution provider did not start"):
        session_backend("tensorrt", [cuda, cpu])
    with pytest.raises(CudaUnavailableError, match="could not start its CUDA provider"):
        session_backend("cuda", [cpu])


def test_cpu_engine_is_named_by_the_provider_that_ran(tiny_G, tmp_path):
    from export.onnx import export_onnx
    export_onnx(tiny_G, tmp_path / "m.onnx", style=STYLE, target="cpu")
    eng = open_onnx(tmp_path / "m.onnx")
    assert eng.provider == "cpu" and eng.name == "onnxruntime-cpu fp32"


def test_cuda_provider_runs_true_float32():
    assert cuda_provider_options(1) == {"device_id": 1, "use_tf32": 0}


def test_tensorrt_provider_profile_spans_the_batch_with_one_style_row():
    shapes = trt_profile_shapes({"input": [None, 3, 256, 256], "style": [None, 8]}, 8, 4)
    assert shapes == {"trt_profile_min_shapes": "input:1x3x256x256,style:1x8",
                      "trt_profile_opt_shapes": "input:4x3x256x256,style:1x8",
                      "trt_profile_max_shapes": "input:8x3x256x256,style:1x8"}


def test_both_onnxruntime_builds_installed_is_refused_with_the_fix():
    assert onnxruntime_install_problem({"onnxruntime": "1.32.0"}, cuda_torch=False) is None
    both = {"onnxruntime": "1.32.0", "onnxruntime_gpu": "1.31.1"}
    gpu = onnxruntime_install_problem(both, cuda_torch=True)
    assert "installed together" in gpu and gpu.endswith(
        "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu==1.31.1")
    assert onnxruntime_install_problem(both, cuda_torch=False).endswith(
        "pip install onnxruntime==1.32.0")
    caps = Capabilities(cuda=True, gpu_name="x", ort_providers=GPU_CAPS.ort_providers,
                        ort_problem=gpu)
    cands, skipped = rank_candidates(EngineRequest(checkpoint="ck.pt", device="cuda"), caps)
    assert ("onnxruntime", "cuda") not in {(c.backend, c.device) for c in cands}
    assert any(s.startswith("onnxruntime on CUDA:") and "pip uninstall" in s for s in skipped)


def test_onnxruntime_run_time_errors_are_engine_errors(tmp_path):
    """A graph that runs at batch 1 and fails at batch 2 (a fixed Reshape): onnxruntime's own
    exception type becomes an EngineError naming the engine and the batch."""
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 8, 8])
    shape = helper.make_tensor("shape", TensorProto.INT64, [4], [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Reshape", ["input", "shape"], ["output"])],
                              "fixed", [x], [y], [shape])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "fixed.onnx")
    eng = open_onnx(tmp_path / "fixed.onnx", max_batch=4)
    assert eng(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 8, 8)
    with pytest.raises(EngineError, match="onnxruntime-cpu fp32 failed on a batch of 2"):
        eng(torch.zeros(2, 3, 8, 8))


# --- auto: a failing candidate is reported, closed, and the next one tried --------------------
class _Failing(BaseEngine):
    """Stands in for a CUDA backend that opens and then fails on its first run (a GPU this
    machine lacks): raises ``error`` from every batch and records that it was closed."""

    closed: list = []

    def __init__(self, label: str, error: BaseException):
        super().__init__(device="cpu", dtype=torch.float16, size=32, max_batch=8)
        self.name, self.error = label, error

    def _run(self, x):
        raise self.error

    def close(self):
        _Failing.closed.append(self.name)


def _ort_fail(msg: str) -> BaseException:
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail
    return Fail(msg)


def _gpu_opener(c, req, style, log, latent):
    if not c.device.startswith("cuda"):
        return _open(c, req, style, log, latent)         # the real CPU backends
    if c.backend == "onnxruntime":
        return _Failing(c.label, _ort_fail("[ONNXRuntimeError] : 1 : FAIL : CUDA failure 700"))
    if c.compiled:
        raise CudaUnavailableError("CUDA error: no kernel image is available for this device")
    return _Failing(c.label, RuntimeError("CUDA error: an illegal memory access was encountered"))


def test_auto_falls_back_past_failing_cuda_candidates(tiny_ckpt, tmp_path, faces32):
    _Failing.closed = []
    req = EngineRequest(checkpoint=tiny_ckpt, device="auto", style_seed=3, onnx_cache=tmp_path)
    notes = []
    eng, why = open_engine(req, GPU_CAPS, log=notes.append, opener=_gpu_opener)
    assert eng.name == "onnxruntime-cpu fp32"           # tier 3, after all of tier 2 failed
    assert sorted(_Failing.closed) == ["onnxruntime on cuda", "torch on cuda"]
    for words in ("onnxruntime on cuda: [ONNXRuntimeError] : 1 : FAIL",
                  "torch on cuda: CUDA error: an illegal memory access",
                  "torch (compiled) on cuda: CUDA error: no kernel image"):
        assert words in why and any(words.split(":", 1)[1].strip()[:20] in n for n in notes)
    ref = reference(load_generator(tiny_ckpt), faces32, StyleCode.from_seed(3).tensor())
    assert (eng(faces32) - ref).abs().max() <= 1e-4


def test_auto_takes_the_survivor_of_a_tied_tier(tiny_ckpt, tmp_path):
    def opener(c, req, style, log, latent):
        if c.device.startswith("cuda") and c.backend == "onnxruntime":
            return _Failing(c.label, _ort_fail("FAIL"))
        if c.device.startswith("cuda"):                 # torch on "cuda": run it on the CPU
            return _open(type(c)(c.backend, "cpu", c.tier), req, style, log, latent)
        raise AssertionError("tier 2 has a survivor: the CPU tiers are never opened")
    eng, why = open_engine(EngineRequest(checkpoint=tiny_ckpt, device="cuda"),
                           Capabilities(cuda=True, gpu_name="x",
                                        ort_providers=GPU_CAPS.ort_providers), opener=opener)
    assert eng.name.startswith("torch-cpu") and "auto: torch on cuda" in why
    assert "onnxruntime on cuda: FAIL" in why


def test_auto_with_nothing_left_names_every_failure(tiny_ckpt):
    def opener(c, req, style, log, latent):
        return _Failing(c.label, RuntimeError(f"{c.label} broke"))
    with pytest.raises(BackendUnavailableError) as e:
        open_engine(EngineRequest(checkpoint=tiny_ckpt, device="cuda"), GPU_CAPS, opener=opener)
    for label in ("onnxruntime on cuda", "torch on cuda", "torch (compiled) on cuda"):
        assert f"{label}: {label} broke" in str(e.value)


def test_auto_measures_the_compiled_candidate_beside_the_others():
    cands, _ = rank_candidates(EngineRequest(checkpoint="ck.pt", device="cuda"), GPU_CAPS)
    assert [c.label for c in cands] == ["onnxruntime on cuda", "torch on cuda",
                                        "torch (compiled) on cuda"]
    assert {c.tier for c in cands} == {2}
    no_triton = Capabilities(cuda=True, ort_providers=GPU_CAPS.ort_providers)
    cands, skipped = rank_candidates(EngineRequest(checkpoint="ck.pt", device="cuda"), no_triton)
    assert not any(c.compiled for c in cands) and any("Triton" in s for s in skipped)


# --- TensorRT build: timing caches per GPU and version, style profile --------------------------
class _Cache:
    def __init__(self, data: bytes):
        self.data = data


class _Config:
    """The two IBuilderConfig calls a timing cache needs, answering as TensorRT does for a
    cache made by this build (``good``), another GPU/version, or bytes it cannot parse."""

    def __init__(self, good: bytes = b"GOOD"):
        self.good, self.attached = good, None

    def create_timing_cache(self, data: bytes):
        if data.startswith(b"GARBAGE"):
            raise RuntimeError("Failed to deserialize the timing cache")
        return _Cache(data)

    def set_timing_cache(self, cache, ignore_mismatch: bool) -> bool:
        if cache.data not in (b"", self.good):
            return False
        self.attached = cache
        return True


@pytest.mark.parametrize("stored,note,attached", [
    (None, "none yet", b""),
    (b"GOOD", "reused (4 bytes)", b"GOOD"),
    (b"STALE", "another GPU or TensorRT version", b""),
    (b"GARBAGE", "not a TensorRT timing cache", b""),
])
def test_timing_cache_is_reused_or_replaced_never_crashes(tmp_path, stored, note, attached):
    path = tmp_path / "t.cache"
    if stored is not None:
        path.write_bytes(stored)
    cfg = _Config()
    assert note in attach_timing_cache(cfg, path)
    assert cfg.attached is not None and cfg.attached.data == attached


def test_timing_cache_file_per_gpu_and_tensorrt_version(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a = default_timing_cache({"gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0",
                              "tensorrt_version": "10.13.0.35"})
    assert a == tmp_path / "gnr-anime" / "trt-timing-nvidia-h100-80gb-hbm3-sm90-trt10.13.0.35.cache"
    b = default_timing_cache({"gpu_name": "NVIDIA GeForce RTX 4090", "compute_capability": "8.9",
                              "tensorrt_version": "10.13.0.35"})
    assert a != b


def test_style_input_profile_always_admits_one_row():
    assert style_profile(2, 4, 8) == (1, 1, 8)


# --- CUDA (skipped here) ----------------------------------------------------------------------
@no_cuda
@pytest.mark.parametrize("dynamic", [False, True])
def test_every_batch_size_is_captured_at_open(tiny_G, faces32, dynamic):
    cls = TorchDynamicStyleEngine if dynamic else TorchEngine
    eng = cls(tiny_G, STYLE, device="cuda", max_batch=20)
    assert eng.captured_batches == graph_batches(20)
    x = torch.cat([faces32] * 5)[:17]                    # 17 runs in the 20 graph, padded
    out = eng(x.cuda())
    ref = reference(tiny_G, x, STYLE.tensor())
    assert compare(ref, out.cpu()).psnr_db >= 40 and eng.captured_batches == graph_batches(20)


@no_cuda
def test_capture_beside_a_thread_using_the_gpu(tiny_G, faces32):
    """Graphs captured while another thread uploads and allocates on the same GPU (what a
    running pipeline's face and output threads do)."""
    stop = threading.Event()
    errors = []

    def busy():
        frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), np.uint8)
        try:
            while not stop.is_set():
                t = torch.from_numpy(frame).cuda().float().permute(2, 0, 1)[None]
                torch.nn.functional.interpolate(t, size=(256, 256), mode="bilinear").sum().item()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    worker = threading.Thread(target=busy)
    worker.start()
    try:
        eng = TorchEngine(tiny_G, STYLE, device="cuda", max_batch=8)
    finally:
        stop.set()
        worker.join()
    assert not errors
    ref = reference(tiny_G, faces32, STYLE.tensor())
    assert compare(ref, eng(faces32.cuda()).cpu()).psnr_db >= 40


@no_cuda
def test_fp32_cuda_engine_is_true_float32(tiny_G, faces32):
    eng = TorchEngine(tiny_G, STYLE, device="cuda", dtype=torch.float32)
    ref = reference(tiny_G, faces32, STYLE.tensor())
    assert (eng(faces32.cuda()).cpu() - ref).abs().max() <= 1e-4


@no_cuda
@one_gpu
def test_engine_on_the_second_gpu_from_a_thread_on_the_first(tiny_G, faces32):
    eng = TorchDynamicStyleEngine(tiny_G, STYLE, device="cuda:1", max_batch=4)
    out = {}

    def pipeline_thread():                               # threads start on device 0
        assert torch.cuda.current_device() == 0
        eng.set_style(StyleCode.from_seed(8))
        out["y"] = eng(faces32.to("cuda:1"))
    t = threading.Thread(target=pipeline_thread)
    t.start()
    t.join()
    assert out["y"].device == torch.device("cuda:1")
    ref = reference(tiny_G, faces32, StyleCode.from_seed(8).tensor())
    assert compare(ref, out["y"].cpu()).psnr_db >= 40
