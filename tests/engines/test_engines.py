"""The Engine protocol on every backend that runs here: parity, batch splitting, styles, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from export.onnx import export_onnx
from export.verify import compare
from realtime.engines import (BaseEngine, CudaUnavailableError, DynamicStyleEngine, Engine,
                              EngineInputError, IdentityEngine, ModelSizeError)
from realtime.engines.onnxruntime import (OnnxRuntimeDynamicStyleEngine, OnnxRuntimeEngine,
                                          open_onnx)
from realtime.engines.base import engine_device
from realtime.engines.torch import TorchDynamicStyleEngine, TorchEngine
from training.style import StyleCode
from tests.export.fixtures import reference

STYLE = StyleCode.from_seed(2)
OTHER = StyleCode.from_seed(8)
no_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                             reason="needs a CUDA GPU (torch.cuda.is_available() is False here)")


@pytest.fixture(scope="module")
def onnx_paths(tiny_G, tmp_path_factory):
    d = tmp_path_factory.mktemp("engines")
    paths = {"baked": d / "baked.onnx", "dynamic": d / "dynamic.onnx", "u8": d / "u8.onnx"}
    export_onnx(tiny_G, paths["baked"], style=STYLE, target="cpu")
    export_onnx(tiny_G, paths["dynamic"], dynamic_style=True, target="cpu")
    export_onnx(tiny_G, paths["u8"], style=STYLE, io="uint8-nhwc", target="cpu")
    return paths


@pytest.fixture(scope="module")
def engines(tiny_G, onnx_paths):
    return {
        "torch": TorchEngine(tiny_G, STYLE, max_batch=2),
        "torch-dynamic": TorchDynamicStyleEngine(tiny_G, STYLE, max_batch=2),
        "ort": open_onnx(onnx_paths["baked"], max_batch=2),
        "ort-dynamic": open_onnx(onnx_paths["dynamic"], max_batch=2, style=STYLE),
    }


@pytest.mark.parametrize("name", ["torch", "torch-dynamic", "ort", "ort-dynamic"])
def test_fp32_engines_match_pytorch(engines, tiny_G, faces32, name):
    eng = engines[name]
    assert isinstance(eng, Engine)
    assert eng.size == 32 and eng.max_batch == 2 and eng.dtype == torch.float32
    assert eng.device == torch.device("cpu") and "fp32" in eng.name
    out = eng(faces32)                                   # 4 crops, max_batch 2: split in two
    assert out.shape == faces32.shape and out.dtype == faces32.dtype
    assert (out - reference(tiny_G, faces32, STYLE.tensor())).abs().max() <= 1e-4


def test_split_batches_equal_whole_batches(engines, faces32):
    eng = engines["ort"]
    x = torch.cat([faces32, faces32[:1]])                # 5 crops: chunks of 2, 2, 1
    whole = torch.cat([eng(x[i:i + 1]) for i in range(5)])
    assert torch.allclose(eng(x), whole, atol=1e-6)
    assert eng(x[:0]).shape == (0, 3, 32, 32)


def test_output_follows_input_dtype(engines, faces32):
    out = engines["torch"](faces32.double())
    assert out.dtype == torch.float64


def test_dynamic_style_engines_change_style(engines, tiny_G, faces32):
    for name in ("torch-dynamic", "ort-dynamic"):
        eng = engines[name]
        assert isinstance(eng, DynamicStyleEngine) and eng.dynamic_style
        eng.set_style(OTHER)
        assert eng.style == OTHER
        assert (eng(faces32) - reference(tiny_G, faces32, OTHER.tensor())).abs().max() <= 1e-4
        eng.set_style(STYLE.numpy())                     # 8 floats work too (the webcam's way)
        assert (eng(faces32) - reference(tiny_G, faces32, STYLE.tensor())).abs().max() <= 1e-4
        with pytest.raises(ValueError, match="needs 8"):
            eng.set_style([0.0] * 5)


def test_baked_engines_have_no_set_style(engines, onnx_paths):
    assert not hasattr(engines["torch"], "set_style")
    assert not hasattr(engines["ort"], "set_style")
    assert type(engines["ort"]) is OnnxRuntimeEngine
    assert type(engines["ort-dynamic"]) is OnnxRuntimeDynamicStyleEngine
    assert engines["ort"].style == STYLE                 # read from the graph's metadata
    np.testing.assert_allclose(engines["ort"].style_vector, STYLE.numpy())


def test_torch_rebake_changes_the_locked_style(tiny_G, faces32):
    eng = TorchEngine(tiny_G, STYLE)
    eng.rebake(OTHER)
    assert eng.style == OTHER
    assert (eng(faces32) - reference(tiny_G, faces32, OTHER.tensor())).abs().max() <= 1e-4


def test_uint8_graph_behind_the_float_protocol(tiny_G, onnx_paths, faces32):
    eng = open_onnx(onnx_paths["u8"])
    out = eng(faces32)
    assert out.dtype == torch.float32
    # the graph clamps to [-1, 1] and rounds to 8 bits; the crops themselves are rounded too
    px = torch.round((faces32 + 1) * 127.5) / 127.5 - 1
    ref = reference(tiny_G, px, STYLE.tensor()).clamp(-1, 1)
    assert (out - ref).abs().max() <= 1 / 127.5 + 1e-5


@pytest.mark.parametrize("bad,match", [
    (np.zeros((1, 3, 32, 32), np.float32), "torch.Tensor"),
    (torch.zeros(3, 32, 32), "N x 3 x 32 x 32"),
    (torch.zeros(1, 3, 64, 64), r"got shape \(1, 3, 64, 64\)"),
    (torch.zeros(1, 32, 32, 3), "N x 3 x 32 x 32"),
    (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "floating point"),
])
def test_bad_crops(engines, bad, match):
    for eng in engines.values():
        with pytest.raises(EngineInputError, match=match):
            eng(bad)


def test_onnx_size_differs_from_crop_size(onnx_paths):
    with pytest.raises(ModelSizeError, match="takes 32x32 crops, but the aligner makes 256x256"):
        open_onnx(onnx_paths["baked"], expected_size=256)


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    from realtime.engines import EngineError
    with pytest.raises(EngineError, match="could not load"):
        open_onnx(bad)
    with pytest.raises(FileNotFoundError):
        open_onnx(tmp_path / "none.onnx")


def test_identity_engine_returns_the_crops(faces32):
    eng = IdentityEngine(size=32)
    assert eng(faces32) is faces32
    assert isinstance(eng, BaseEngine) and not hasattr(eng, "set_style")
    with pytest.raises(EngineInputError):
        eng(torch.zeros(1, 3, 16, 16))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_where_there_is_none(tiny_G, onnx_paths):
    with pytest.raises(CudaUnavailableError, match="no CUDA GPU"):
        engine_device("cuda")
    with pytest.raises(CudaUnavailableError):
        TorchEngine(tiny_G, STYLE, device="cuda")
    with pytest.raises(CudaUnavailableError):
        open_onnx(onnx_paths["baked"], device="cuda")


# --- CUDA (skipped here) ----------------------------------------------------------------------
@no_cuda
@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_cuda_fp16_cuda_graphs(tiny_G, faces32, dynamic):
    cls = TorchDynamicStyleEngine if dynamic else TorchEngine
    eng = cls(tiny_G, STYLE, device="cuda", max_batch=4)
    assert eng.dtype == torch.float16 and eng.cuda_graphs and eng.channels_last
    ref = reference(tiny_G, faces32, STYLE.tensor())
    for _ in range(2):                                   # capture, then replay
        out = eng(faces32.cuda())
        assert out.device.type == "cuda" and out.dtype == torch.float32
        assert compare(ref, out.cpu()).psnr_db >= 40
    if dynamic:
        eng.set_style(OTHER)                             # the captured graph reads the new style
        assert compare(reference(tiny_G, faces32, OTHER.tensor()), eng(faces32.cuda()).cpu()).psnr_db >= 40


@no_cuda
def test_ort_cuda_io_binding(tiny_G, onnx_paths, faces32):
    from realtime.engines.onnxruntime import ort_providers
    if "CUDAExecutionProvider" not in ort_providers():
        pytest.skip("onnxruntime-gpu (CUDAExecutionProvider) is not installed")
    eng = open_onnx(onnx_paths["baked"], device="cuda")
    out = eng(faces32.cuda())
    assert out.device.type == "cuda"
    assert (out.cpu() - reference(tiny_G, faces32, STYLE.tensor())).abs().max() <= 1e-4
