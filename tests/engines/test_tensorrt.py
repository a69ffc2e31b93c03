"""TensorRT: sidecar checks and batch specs run everywhere; building and running engines need
TensorRT and a GPU and are skipped with the reason where they are missing."""
from __future__ import annotations

import json

import pytest
import torch

from export.tensorrt import check_engine, parse_batch_spec, rebuild_command, sidecar_path
from realtime.engines import EngineMismatchError
from training.style import StyleCode
from tests.export.fixtures import reference

try:
    import tensorrt  # noqa: F401
    TRT_REASON = None
except ImportError as e:
    TRT_REASON = f"TensorRT is not installed here (import tensorrt failed: {e})"
needs_trt = pytest.mark.skipif(TRT_REASON is not None or not torch.cuda.is_available(),
                               reason=TRT_REASON or "TensorRT needs a CUDA GPU; none here")

HERE = {"tensorrt_version": "10.13.0.35", "gpu_name": "NVIDIA H100 80GB HBM3",
        "compute_capability": "9.0"}


def test_parse_batch_spec():
    assert parse_batch_spec("1:4:8") == (1, 4, 8)
    assert parse_batch_spec("8") == (1, 8, 8)
    for bad in ("8:4:1", "0:1:2", "1:2", "a:b:c"):
        with pytest.raises(ValueError, match="MIN"):
            parse_batch_spec(bad)


def _engine_with_sidecar(tmp_path, **side):
    eng = tmp_path / "m.engine"
    eng.write_bytes(b"serialized engine")
    data = {**HERE, "onnx": "m.onnx", "fp16": True, "batch": [1, 4, 8], **side}
    sidecar_path(eng).write_text(json.dumps(data))
    return eng


def test_matching_engine_passes(tmp_path):
    eng = _engine_with_sidecar(tmp_path)
    assert check_engine(eng, platform=HERE)["batch"] == [1, 4, 8]


@pytest.mark.parametrize("field,value,words", [
    ("tensorrt_version", "10.3.0", "TensorRT 10.3.0"),
    ("gpu_name", "NVIDIA GeForce RTX 4090", "GPU NVIDIA GeForce RTX 4090"),
])
def test_mismatched_engine_is_refused_with_the_rebuild_command(tmp_path, field, value, words):
    eng = _engine_with_sidecar(tmp_path, **{field: value})
    with pytest.raises(EngineMismatchError) as e:
        check_engine(eng, platform=HERE)
    msg = str(e.value)
    assert words in msg and "this machine has" in msg
    assert f"python -m export trt m.onnx -o {eng} --fp16 --batch 1:4:8" in msg


def test_engine_without_sidecar_is_refused(tmp_path):
    eng = tmp_path / "m.engine"
    eng.write_bytes(b"x")
    with pytest.raises(EngineMismatchError, match="no sidecar"):
        check_engine(eng, platform=HERE)


def test_rebuild_command():
    assert rebuild_command({"onnx": "a.onnx", "fp16": False, "batch": [2, 2, 4]}, "a.engine") == \
        "python -m export trt a.onnx -o a.engine --batch 2:2:4"


@needs_trt
@pytest.mark.parametrize("dynamic", [False, True])
def test_build_and_run_fp16_engine(tiny_G, faces32, tmp_path, dynamic):
    from export.onnx import export_onnx
    from export.tensorrt import build_engine
    from export.verify import compare
    from realtime.engines.tensorrt import open_tensorrt
    onnx_path = tmp_path / "m.onnx"
    kw = dict(dynamic_style=True) if dynamic else dict(style=StyleCode.from_seed(1))
    export_onnx(tiny_G, onnx_path, precision="fp16", **kw)
    side = build_engine(onnx_path, tmp_path / "m.engine", fp16=True, batch="1:2:4",
                        timing_cache=tmp_path / "cache.bin")
    assert (tmp_path / "cache.bin").stat().st_size > 0 and side["batch"] == [1, 2, 4]
    eng = open_tensorrt(tmp_path / "m.engine", style=StyleCode.from_seed(1))
    assert eng.max_batch == 4
    x = torch.cat([faces32, faces32])                    # 8 crops: split in two batches of 4
    out = eng(x.cuda())
    ref = reference(tiny_G, x, StyleCode.from_seed(1).tensor())
    assert compare(ref, out.cpu()).psnr_db >= 40
