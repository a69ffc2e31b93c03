"""``--backend auto`` and open_engine: the selection rule on stated capabilities, and real
engines opened on this machine."""
from __future__ import annotations

import pytest
import torch

from export.onnx import export_onnx
from realtime.engines import (BackendUnavailableError, CudaUnavailableError, EngineError,
                              IdentityEngine, ModelSizeError)
from realtime.engines.select import (Capabilities, EngineRequest, Selection, open_engine,
                                     rank_candidates, select_backend)
from training.style import StyleCode

CPU_ONLY = Capabilities(cuda=False, ort_providers=("CPUExecutionProvider",))
GPU = Capabilities(cuda=True, gpu_name="NVIDIA H100 80GB HBM3",
                   ort_providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
GPU_TRT = Capabilities(cuda=True, gpu_name="NVIDIA H100 80GB HBM3", tensorrt="10.13.0",
                       ort_providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
GPU_NO_ORT_GPU = Capabilities(cuda=True, gpu_name="NVIDIA H100", ort_providers=("CPUExecutionProvider",))


def req(**kw):
    kw.setdefault("checkpoint", "ck.pt")
    return EngineRequest(**kw)


def chosen(sel) -> tuple[str, str]:
    assert isinstance(sel, Selection), sel
    return sel.chosen.backend, sel.chosen.device


def test_cpu_only_prefers_onnxruntime_over_torch():
    sel = select_backend(req(device="auto"), CPU_ONLY)
    assert chosen(sel) == ("onnxruntime", "cpu")
    assert "onnxruntime beats PyTorch" in sel.reason
    assert any("CUDA" in s for s in sel.skipped)
    cands, _ = rank_candidates(req(device="auto"), CPU_ONLY)
    assert [(c.backend, c.tier) for c in cands] == [("onnxruntime", 3), ("torch", 4)]


def test_tensorrt_first_when_an_engine_is_given():
    sel = select_backend(req(checkpoint=None, engine_file="m.engine", device="auto"), GPU_TRT)
    assert chosen(sel) == ("tensorrt", "cuda")
    # without TensorRT installed the same request has nothing left to run it
    with pytest.raises(BackendUnavailableError, match="import tensorrt"):
        select_backend(req(checkpoint=None, engine_file="m.engine", device="auto"), GPU)


def test_tensorrt_skipped_without_an_engine_file():
    tied = select_backend(req(device="cuda"), GPU_TRT)
    assert isinstance(tied, list)                        # ORT-CUDA vs torch-CUDA: measure
    assert {c.backend for c in tied} == {"onnxruntime", "torch"}
    _, skipped = rank_candidates(req(device="cuda"), GPU_TRT)
    assert any(s.startswith("tensorrt: needs an engine") for s in skipped)


def test_cuda_tier_picks_the_measured_faster():
    r = req(device="cuda")
    for fast, slow in (("onnxruntime", "torch"), ("torch", "onnxruntime")):
        timings = {f"{fast} on cuda": 0.9, f"{slow} on cuda": 1.4}
        sel = select_backend(r, GPU, timings)
        assert chosen(sel) == (fast, "cuda")
        assert "measured fastest" in sel.reason and "0.90 ms" in sel.reason


def test_cuda_without_onnxruntime_gpu_uses_torch():
    sel = select_backend(req(device="cuda"), GPU_NO_ORT_GPU)
    assert chosen(sel) == ("torch", "cuda")
    assert any("onnxruntime-gpu" in s for s in sel.skipped)


def test_onnx_model_runs_on_onnxruntime_only():
    sel = select_backend(req(checkpoint=None, engine_file="m.onnx", device="auto"), GPU)
    assert chosen(sel) == ("onnxruntime", "cuda")
    with pytest.raises(BackendUnavailableError, match="torch: runs a checkpoint"):
        select_backend(req(checkpoint=None, engine_file="m.onnx", backend="torch", device="cuda"), GPU)


def test_explicit_backend_is_honoured():
    assert chosen(select_backend(req(backend="torch"), CPU_ONLY)) == ("torch", "cpu")
    with pytest.raises(BackendUnavailableError, match="tensorrt"):
        select_backend(req(backend="tensorrt", device="auto"), CPU_ONLY)


def test_cuda_requested_where_there_is_none():
    with pytest.raises(CudaUnavailableError, match="--device cuda"):
        select_backend(req(device="cuda"), CPU_ONLY)
    with pytest.raises(BackendUnavailableError, match="CUDA only"):
        select_backend(req(checkpoint=None, engine_file="m.engine", device="cpu"), GPU_TRT)


def test_bad_requests():
    with pytest.raises(ValueError, match="--backend"):
        select_backend(req(backend="tflite"), CPU_ONLY)
    with pytest.raises(ValueError, match="--device"):
        select_backend(req(device="tpu"), CPU_ONLY)
    with pytest.raises(ValueError, match="no model"):
        select_backend(EngineRequest(), CPU_ONLY)
    with pytest.raises(ValueError, match=".onnx file"):
        select_backend(req(checkpoint=None, engine_file="m.tflite"), CPU_ONLY)


# --- real engines ------------------------------------------------------------------------------
def test_open_identity():
    eng, why = open_engine(EngineRequest(identity=True, crop_size=32), CPU_ONLY)
    assert isinstance(eng, IdentityEngine) and eng.size == 32 and "identity" in why


def test_open_checkpoint_auto_exports_for_onnxruntime(tiny_ckpt, tmp_path, faces32):
    r = EngineRequest(checkpoint=tiny_ckpt, style_seed=3, device="cpu", onnx_cache=tmp_path,
                      crop_size=32)
    eng, why = open_engine(r, Capabilities.detect() if not torch.cuda.is_available() else CPU_ONLY)
    assert eng.name.startswith("onnxruntime-cpu") and "onnxruntime" in why
    assert len(list(tmp_path.glob("*.onnx"))) == 1
    torch_eng, _ = open_engine(EngineRequest(checkpoint=tiny_ckpt, style_seed=3, backend="torch"),
                               CPU_ONLY)
    assert (eng(faces32) - torch_eng(faces32)).abs().max() <= 1e-4
    open_engine(r, CPU_ONLY)                              # second time: from the cache
    assert len(list(tmp_path.glob("*.onnx"))) == 1


def test_open_dynamic_style_for_live_changes(tiny_ckpt, tmp_path):
    eng, _ = open_engine(EngineRequest(checkpoint=tiny_ckpt, dynamic_style=True, style_seed=1,
                                       onnx_cache=tmp_path), CPU_ONLY)
    assert hasattr(eng, "set_style") and eng.style == StyleCode.from_seed(1)


def test_baked_onnx_refuses_another_style_or_crop_size(tiny_G, tmp_path):
    p = tmp_path / "m.onnx"
    export_onnx(tiny_G, p, style=StyleCode.from_seed(0), target="cpu")
    eng, _ = open_engine(EngineRequest(engine_file=p), CPU_ONLY)        # its own style: fine
    assert eng.style == StyleCode.from_seed(0)
    with pytest.raises(EngineError, match="baked in"):
        open_engine(EngineRequest(engine_file=p, style_seed=5), CPU_ONLY)
    with pytest.raises(EngineError, match="--dynamic-style"):
        open_engine(EngineRequest(engine_file=p, dynamic_style=True), CPU_ONLY)
    with pytest.raises(ModelSizeError, match="256x256"):
        open_engine(EngineRequest(engine_file=p, crop_size=256), CPU_ONLY)


def test_missing_files_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        open_engine(EngineRequest(checkpoint=tmp_path / "x.pt"), CPU_ONLY)
    with pytest.raises(FileNotFoundError, match="model file not found"):
        open_engine(EngineRequest(engine_file=tmp_path / "x.onnx"), CPU_ONLY)
