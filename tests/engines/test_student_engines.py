"""Students (training/student.py) wherever a checkpoint goes: the torch engines (locked and
style-conditioned), open_torch's dispatch, the automatic choice (a cached int8 graph on the
CPU), the style rules of a locked student, `--model demo` on the CPU, and load_generator's
error for a student."""
from __future__ import annotations

import pytest
import torch

from export.onnx import read_info
from export.verify import compare
from realtime.compose import DEMO_STUDENT, ModelOptions, _runs_on_cpu, open_model
from realtime.engines.base import EngineRequestError
from realtime.engines.select import Capabilities, EngineRequest, open_engine
from realtime.engines.torch import (TorchDynamicStyleStudentEngine, TorchEngine,
                                    TorchStudentEngine, open_torch)
from training.checkpoint import CheckpointError, load_generator
from training.student import student_file_config
from training.style import StyleCode
from tests.export.test_student_export import tiny_student, write_student

CPU_ONLY = Capabilities(cuda=False, ort_providers=("CPUExecutionProvider",))


@pytest.fixture(scope="module")
def locked_ckpt(tmp_path_factory):
    """A locked-style student distilled for seed 5 (tiny, random weights)."""
    return write_student(tmp_path_factory.mktemp("st") / "locked.pt", tiny_student(dynamic=False))


@pytest.fixture(scope="module")
def styled_ckpt(tmp_path_factory):
    return write_student(tmp_path_factory.mktemp("st") / "styled.pt", tiny_student(dynamic=True))


# ---------------------------------------------------------------------------------------------
# The torch engines
# ---------------------------------------------------------------------------------------------
def test_locked_student_engine_renders_its_own_style_only(faces32):
    s = tiny_student(dynamic=False)
    ref = s(faces32)
    for style in (None, StyleCode.from_seed(5)):                       # none, or its own
        eng = TorchStudentEngine(s, style)
        assert eng.style == StyleCode.from_seed(5) and not hasattr(eng, "set_style")
        assert torch.allclose(eng(faces32), ref, atol=1e-6)
    assert eng.name == "torch-cpu fp32 student" and eng.size == 32
    eng.rebake(StyleCode.from_seed(5))
    with pytest.raises(EngineRequestError, match="distilled for seed 5"):
        eng.rebake(StyleCode.from_seed(6))
    for other in (StyleCode.from_seed(6), StyleCode.default()):
        with pytest.raises(EngineRequestError, match="distilled for seed 5"):
            TorchStudentEngine(s, other)
    with pytest.raises(EngineRequestError, match="--dynamic-style"):
        TorchDynamicStyleStudentEngine(s)


def test_style_conditioned_student_folded_rebaked_and_as_input(faces32):
    s = tiny_student(dynamic=True)
    z3, z4 = StyleCode.from_seed(3), StyleCode.from_seed(4)
    eng = TorchStudentEngine(s, z3)
    assert not hasattr(eng, "set_style") and not eng.dynamic_style
    assert eng.model.style_mlp is None                     # folded: no style path runs
    assert torch.allclose(eng(faces32), s(faces32, z3.tensor()), atol=1e-5)
    eng.rebake(z4)                                          # in place
    assert eng.style == z4 and torch.allclose(eng(faces32), s(faces32, z4.tensor()), atol=1e-5)
    assert TorchStudentEngine(s).style == StyleCode.default()
    dyn = TorchDynamicStyleStudentEngine(s, z3)
    assert dyn.dynamic_style and hasattr(dyn, "set_style")
    assert torch.allclose(dyn(faces32), s(faces32, z3.tensor()), atol=1e-6)
    dyn.set_style(z4.numpy())
    assert dyn.style.vector == z4.vector
    assert torch.allclose(dyn(faces32), s(faces32, z4.tensor()), atol=1e-6)
    # batches larger than max_batch are split, as for every engine
    small = TorchStudentEngine(s, z3, max_batch=3)
    assert torch.allclose(small(faces32), s(faces32, z3.tensor()), atol=1e-5)


def test_open_torch_dispatches_on_the_file(locked_ckpt, styled_ckpt, tiny_ckpt, faces32):
    eng = open_torch(locked_ckpt)
    assert type(eng) is TorchStudentEngine and eng.style == StyleCode.from_seed(5)
    dyn = open_torch(styled_ckpt, StyleCode.from_seed(2), dynamic_style=True)
    assert type(dyn) is TorchDynamicStyleStudentEngine
    gnr = open_torch(tiny_ckpt)                             # a GNR checkpoint: the baked generator
    assert type(gnr) is TorchEngine and gnr.style == StyleCode.default()
    with pytest.raises(ValueError, match="--which G_B2A_ema does not apply"):
        open_torch(styled_ckpt, which="G_B2A_ema")
    # what the apps read without loading weights
    assert student_file_config(locked_ckpt).dynamic_style is False
    assert student_file_config(styled_ckpt).dynamic_style is True
    assert student_file_config(tiny_ckpt) is None


def test_load_generator_says_a_student_is_a_student(styled_ckpt, locked_ckpt):
    for ck in (styled_ckpt, locked_ckpt):
        with pytest.raises(CheckpointError, match="student checkpoint .*load_student"):
            load_generator(ck)
    # the shipped demo student keeps its teacher's style encoder: --style-image works with it
    G = load_generator(DEMO_STUDENT, which="G_B2A_ema")
    assert G.size == 64


# ---------------------------------------------------------------------------------------------
# The automatic choice
# ---------------------------------------------------------------------------------------------
def test_auto_caches_an_int8_graph_for_a_student_on_the_cpu(styled_ckpt, tmp_path, faces32):
    logs: list[str] = []
    req = EngineRequest(checkpoint=styled_ckpt, style_seed=3, device="cpu", onnx_cache=tmp_path,
                        crop_size=32)
    eng, why = open_engine(req, CPU_ONLY, log=logs.append)
    assert eng.name == "onnxruntime-cpu int8" and "onnxruntime" in why
    [cached] = list(tmp_path.glob("*.onnx"))
    assert "cpu-int8" in cached.name and read_info(cached).precision == "int8"
    assert read_info(cached).kind == "student" and any("int8" in m for m in logs)
    s = tiny_student(dynamic=True)
    assert compare(s(faces32, StyleCode.from_seed(3).tensor()), eng(faces32)).psnr_db > 30
    logs.clear()
    open_engine(req, CPU_ONLY, log=logs.append)             # second time: from the cache
    assert list(tmp_path.glob("*.onnx")) == [cached] and not logs
    # live style changes: the style-as-input int8 graph
    dyn, _ = open_engine(EngineRequest(checkpoint=styled_ckpt, dynamic_style=True,
                                       onnx_cache=tmp_path), CPU_ONLY)
    assert hasattr(dyn, "set_style") and dyn.name == "onnxruntime-cpu int8"
    # --backend torch: the student's torch engine
    t, _ = open_engine(EngineRequest(checkpoint=styled_ckpt, style_seed=3, backend="torch"),
                       CPU_ONLY)
    assert isinstance(t, TorchStudentEngine)


def test_a_locked_student_is_refused_another_style_before_any_backend(locked_ckpt, tmp_path):
    tried = []

    def opener(c, *a):
        tried.append(c.label)
        raise AssertionError("no backend should be tried")

    for req in (EngineRequest(checkpoint=locked_ckpt, style_seed=6, onnx_cache=tmp_path),
                EngineRequest(checkpoint=locked_ckpt, style_seed=0, onnx_cache=tmp_path),
                EngineRequest(checkpoint=locked_ckpt, dynamic_style=True, onnx_cache=tmp_path)):
        with pytest.raises(EngineRequestError, match="locked-style student"):
            open_engine(req, CPU_ONLY, opener=opener)
    assert tried == []
    # its own style, or none: it opens, on either backend
    for backend in ("auto", "torch"):
        for seed in (5, None):
            eng, _ = open_engine(EngineRequest(checkpoint=locked_ckpt, style_seed=seed,
                                               backend=backend, onnx_cache=tmp_path), CPU_ONLY)
            assert eng.style == StyleCode.from_seed(5)


# ---------------------------------------------------------------------------------------------
# The composition root
# ---------------------------------------------------------------------------------------------
def test_model_demo_runs_the_student_on_the_cpu(tmp_path, monkeypatch, faces64):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _runs_on_cpu("cpu") and not _runs_on_cpu("cuda:0")
    assert _runs_on_cpu("auto") == (not torch.cuda.is_available())
    m = open_model(ModelOptions(model="demo", device="cpu", style_seed=2))
    assert "demo model's CPU student" in m.summary and m.summary.startswith("onnxruntime-cpu int8")
    assert "demo_student.pt" in m.details and "demo_model.pt" in m.details
    assert m.engine.size == 64 and m.engine.style == StyleCode.from_seed(2)
    live = open_model(ModelOptions(model="demo", device="cpu", dynamic_style=True, backend="torch"))
    assert isinstance(live.engine, TorchDynamicStyleStudentEngine)


def test_a_fixed_style_runs_where_live_style_changes_were_asked(locked_ckpt, tmp_path,
                                                               monkeypatch):
    """The webcam and the studio ask every model for live style changes: a locked student, or a
    graph with a baked style, runs its one style instead, and says so."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    notes: list[str] = []
    m = open_model(ModelOptions(checkpoint=locked_ckpt, device="cpu", dynamic_style=True),
                   log=notes.append)
    assert not hasattr(m.engine, "set_style") and m.engine.style == StyleCode.from_seed(5)
    assert any("locked-style student" in n for n in notes)
    # so does an exported graph with its style baked in (as the studio already did)
    from export.onnx import export_checkpoint
    export_checkpoint(locked_ckpt, tmp_path / "locked.onnx")
    notes.clear()
    m = open_model(ModelOptions(engine_file=tmp_path / "locked.onnx", device="cpu",
                                dynamic_style=True), log=notes.append)
    assert not hasattr(m.engine, "set_style") and m.engine.style == StyleCode.from_seed(5)
    assert notes == ["locked.onnx has its style baked in (seed 5), so live style changes are off"]
