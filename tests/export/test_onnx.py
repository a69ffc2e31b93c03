"""ONNX export: onnxruntime parity (dynamic batch), fp16 and uint8 graphs, metadata, int8,
atomic writes and bad options."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from training.fileio import atomic_path, sha256_file
from export.onnx import (ExportError, export_checkpoint, export_onnx, quantize_onnx, read_info)
from export.verify import astronaut_crops, compare, tolerance
from training.style import StyleCode
from tests.export.fixtures import TINY, reference

STYLE = StyleCode.from_seed(4)


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def baked_onnx(tiny_G, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "baked.onnx"
    info = export_onnx(tiny_G, path, style=STYLE)
    return path, info


@pytest.fixture(scope="module")
def dynamic_onnx(tiny_G, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "dynamic.onnx"
    export_onnx(tiny_G, path, dynamic_style=True)
    return path


@pytest.mark.parametrize("target", ["gpu", "cpu", "cpu-int8"])
def test_baked_graph_matches_pytorch_at_batch_1_and_3(tiny_G, faces32, target, tmp_path):
    path = tmp_path / f"{target}.onnx"
    export_onnx(tiny_G, path, style=STYLE, target=target)
    s = session(path)
    (inp,), (out,) = s.get_inputs(), s.get_outputs()
    assert inp.name == "input" and out.name == "output"
    assert inp.type == "tensor(float)" and inp.shape[1:] == [3, 32, 32]
    assert isinstance(inp.shape[0], str)                  # dynamic batch axis
    for n in (1, 3):
        x = faces32[:n]
        y = s.run(None, {"input": x.numpy()})[0]
        assert y.shape == (n, 3, 32, 32)
        assert np.abs(y - reference(tiny_G, x, STYLE.tensor()).numpy()).max() <= 1e-4


def test_folded_graph_is_plain_convolutions(baked_onnx):
    path, info = baked_onnx
    model = onnx.load(str(path))
    ops = {n.op_type for n in model.graph.node}
    assert ops <= {"Conv", "ConvTranspose", "LeakyRelu", "Add", "Mul", "Constant", "Identity"}, ops
    assert len(model.graph.node) < 60                     # not ~1,000 Reshape/Pad/Slice nodes
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17


def test_dynamic_style_graph_for_several_styles(tiny_G, faces32, dynamic_onnx):
    s = session(dynamic_onnx)
    names = [i.name for i in s.get_inputs()]
    assert names == ["input", "style"]
    for seed in (0, 5, 9):
        z = StyleCode.from_seed(seed).tensor()
        for n in (1, 3):
            y = s.run(None, {"input": faces32[:n].numpy(), "style": z.numpy()})[0]
            assert np.abs(y - reference(tiny_G, faces32[:n], z).numpy()).max() <= 1e-4
    zs = torch.cat([StyleCode.from_seed(i).tensor() for i in range(3)])      # one per image
    y = s.run(None, {"input": faces32[:3].numpy(), "style": zs.numpy()})[0]
    assert np.abs(y - reference(tiny_G, faces32[:3], zs).numpy()).max() <= 1e-4


@pytest.mark.parametrize("dynamic", [False, True])
def test_fp16_graph_psnr_on_real_faces(tiny_G, faces32, tmp_path, dynamic):
    path = tmp_path / "fp16.onnx"
    kw = dict(dynamic_style=True) if dynamic else dict(style=STYLE)
    info = export_onnx(tiny_G, path, precision="fp16", **kw)
    s = session(path)
    assert s.get_inputs()[0].type == "tensor(float16)"
    feed = {"input": faces32.numpy().astype(np.float16)}
    if dynamic:
        assert s.get_inputs()[1].type == "tensor(float)"     # the style stays float32
        feed["style"] = STYLE.numpy()[None]
    y = s.run(None, feed)[0]
    assert y.dtype == np.float16
    m = compare(reference(tiny_G, faces32, STYLE.tensor()), torch.from_numpy(y.astype(np.float32)))
    kind, floor = tolerance(info.precision)
    assert kind == "psnr_db" and m.psnr_db >= floor


@pytest.mark.parametrize("io", ["uint8-nhwc", "uint8-nchw"])
def test_uint8_io_graph(tiny_G, faces32, tmp_path, io):
    path = tmp_path / "u8.onnx"
    export_onnx(tiny_G, path, style=STYLE, io=io)
    s = session(path)
    px = np.clip(np.round((faces32.numpy() + 1) * 127.5), 0, 255).astype(np.uint8)
    if io == "uint8-nhwc":
        px = px.transpose(0, 2, 3, 1)
    assert s.get_inputs()[0].type == "tensor(uint8)"
    y = s.run(None, {"input": px})[0]
    assert y.dtype == np.uint8 and y.shape == px.shape
    if io == "uint8-nhwc":
        y = y.transpose(0, 3, 1, 2)
    ref = reference(tiny_G, torch.from_numpy(px if io == "uint8-nchw" else px.transpose(0, 3, 1, 2))
                    .float() / 127.5 - 1, STYLE.tensor())
    expect = torch.round(torch.clamp((ref + 1) * 127.5, 0, 255))
    assert np.abs(y.astype(np.float32) - expect.numpy()).max() <= 1   # rounding at .5 only


def test_metadata_round_trip(tiny_ckpt, tmp_path):
    path = tmp_path / "m.onnx"
    info = export_checkpoint(tiny_ckpt, path, style=STYLE, target="cpu")
    back = read_info(path)
    assert back == info
    assert back == read_info(session(path))               # also through onnxruntime
    assert back.config == TINY.to_dict() and back.size == 32
    assert back.style_code == STYLE
    assert back.checkpoint_sha256 == sha256_file(tiny_ckpt)
    assert back.checkpoint_name == tiny_ckpt.name and back.generator == "G_A2B_ema"
    assert not back.fold_blur and back.precision == "fp32" and back.io == "float"


def test_int8_static_quantization_psnr(tiny_G, tmp_path):
    fp32 = tmp_path / "fp32.onnx"
    int8 = tmp_path / "int8.onnx"
    export_onnx(tiny_G, fp32, style=STYLE, target="cpu-int8")
    info = quantize_onnx(fp32, int8, calibration=astronaut_crops(32, n=8, seed=2).numpy())
    assert info.precision == "int8" and info.quantization["method"] == "static"
    assert read_info(int8) == info
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    x = astronaut_crops(32, n=4, seed=7).numpy()              # held out from calibration
    a = session(fp32).run(None, {"input": x})[0]
    b = session(int8).run(None, {"input": x})[0]
    assert compare(a, b).psnr_db >= 30


def test_int8_refuses_fp16_or_foreign_graphs(tiny_G, tmp_path):
    fp16 = tmp_path / "fp16.onnx"
    export_onnx(tiny_G, fp16, style=STYLE, precision="fp16")
    with pytest.raises(ExportError, match="fp32 graph"):
        quantize_onnx(fp16, tmp_path / "q.onnx", calibration=np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(ExportError, match="calibration"):
        export_onnx(tiny_G, tmp_path / "f.onnx", style=STYLE)
        quantize_onnx(tmp_path / "f.onnx", tmp_path / "q.onnx", calibration=None)
    assert not (tmp_path / "q.onnx").exists()


def test_bad_export_options(tiny_G, tmp_path):
    p = tmp_path / "x.onnx"
    with pytest.raises(ExportError, match="exactly one"):
        export_onnx(tiny_G, p, style=STYLE, dynamic_style=True)
    with pytest.raises(ExportError, match="exactly one"):
        export_onnx(tiny_G, p)
    with pytest.raises(ExportError, match="opset"):
        export_onnx(tiny_G, p, style=STYLE, opset=13)
    with pytest.raises(ExportError, match="precision"):
        export_onnx(tiny_G, p, style=STYLE, precision="bf16")
    with pytest.raises(ValueError, match="needs 8"):
        export_onnx(tiny_G, p, style=StyleCode((1.0, 2.0)))
    assert not p.exists()


def test_writes_are_atomic(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half written")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]   # no temporary left


def test_foreign_onnx_has_no_info(tmp_path):
    m = torch.nn.Conv2d(3, 3, 1)
    p = tmp_path / "foreign.onnx"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, torch.zeros(1, 3, 8, 8), str(p), dynamo=False, opset_version=17)
    assert read_info(p) is None


@pytest.mark.parametrize("kind", ["baked", "dynamic", "uint8-nhwc"])
def test_graph_traced_small_runs_at_the_model_size(small_G, faces64, tmp_path, kind):
    # a 64x64 model is traced on 32x32 crops and its input/output shapes set to 64 afterwards
    path = tmp_path / f"{kind}.onnx"
    kw = {"baked": dict(style=STYLE), "dynamic": dict(dynamic_style=True),
          "uint8-nhwc": dict(style=STYLE, io="uint8-nhwc")}[kind]
    export_onnx(small_G, path, **kw)
    s = session(path)
    shape = s.get_inputs()[0].shape
    assert shape[1:] == ([64, 64, 3] if kind == "uint8-nhwc" else [3, 64, 64])
    assert s.get_outputs()[0].shape[1:] == shape[1:]
    ref = reference(small_G, faces64, STYLE.tensor())
    if kind == "uint8-nhwc":
        px = np.clip(np.round((faces64.numpy() + 1) * 127.5), 0, 255).astype(np.uint8)
        y = s.run(None, {"input": px.transpose(0, 2, 3, 1)})[0].transpose(0, 3, 1, 2)
        ref = reference(small_G, torch.from_numpy(px).float() / 127.5 - 1, STYLE.tensor())
        assert np.abs(y / 127.5 - 1 - ref.clamp(-1, 1).numpy()).max() <= 1 / 127.5 + 1e-5
        return
    feed = {"input": faces64.numpy()}
    if kind == "dynamic":
        feed["style"] = STYLE.numpy()[None]
    assert np.abs(s.run(None, feed)[0] - ref.numpy()).max() <= 1e-4
