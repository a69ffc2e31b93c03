"""Students export to ONNX with the GNR metadata contract and run on onnxruntime as torch does:
fp32 to 1e-4, int8 by PSNR; the existing onnxruntime engine opens them unchanged; styles are
checked (a locked student takes no other style, a style-conditioned one a style or the input)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from export.errors import ExportError
from export.onnx import export_checkpoint, export_student, quantize_onnx, read_info
from export.verify import compare
from training.checkpoint import save_checkpoint
from training.config import ModelConfig
from training.student import STUDENT_KIND, Student, StudentConfig, load_student
from training.style import StyleCode

ASSETS = Path(__file__).resolve().parents[2] / "realtime" / "assets"
TINY = StudentConfig(size=32, widths=(8, 16), mid_blocks=1)


def tiny_student(dynamic: bool, seed: int = 0) -> Student:
    torch.manual_seed(seed)
    s = Student(StudentConfig(**{**TINY.to_dict(), "dynamic_style": dynamic})).eval()
    with torch.no_grad():                 # every weight non-trivial (FiLM starts at zero)
        for name, p in s.named_parameters():
            if "style_mlp" in name or "bias" in name:
                p.normal_(0, 0.1)
    if not dynamic:
        s.style = StyleCode.from_seed(5)
    return s.requires_grad_(False)


def write_student(path, s: Student):
    return save_checkpoint({"kind": STUDENT_KIND, "student": s.state_dict(),
                            "student_config": s.config.to_dict(),
                            "style": s.style.to_dict() if s.style else None,
                            "teacher": {"name": "t.pt"},
                            "config": ModelConfig(size=s.size, num_down=2).to_dict(), "iter": 0}, path)


def _ort(path):
    import onnxruntime as ort
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_locked_student_fp32_parity_and_metadata(tmp_path, faces32):
    s = tiny_student(dynamic=False)
    info = export_student(s, tmp_path / "s.onnx")
    assert (info.kind, info.size, info.dynamic_style, info.precision) == ("student", 32, False, "fp32")
    back = read_info(tmp_path / "s.onnx")
    assert back == info and back.style_code == s.style and back.config["latent_dim"] == 8
    sess = _ort(tmp_path / "s.onnx")
    assert [i.name for i in sess.get_inputs()] == ["input"]
    y = sess.run(None, {"input": faces32.numpy()})[0]
    assert np.abs(y - s(faces32).numpy()).max() < 1e-4
    # its own style is fine; another one is refused, as is a style input
    export_student(s, tmp_path / "same.onnx", style=StyleCode.from_seed(5))
    with pytest.raises(ExportError, match="seed 5"):
        export_student(s, tmp_path / "other.onnx", style=StyleCode.from_seed(6))
    with pytest.raises(ExportError, match="dynamic-style"):
        export_student(s, tmp_path / "dyn.onnx", dynamic_style=True)
    assert not (tmp_path / "other.onnx").exists() and not (tmp_path / "dyn.onnx").exists()


def test_style_conditioned_student_exports_both_ways(tmp_path, faces32):
    s = tiny_student(dynamic=True)
    z = StyleCode.from_seed(3)
    export_student(s, tmp_path / "dyn.onnx", dynamic_style=True)
    sess = _ort(tmp_path / "dyn.onnx")
    for k in (3, 4):
        zk = StyleCode.from_seed(k)
        y = sess.run(None, {"input": faces32.numpy(), "style": zk.numpy()[None]})[0]
        assert np.abs(y - s(faces32, zk.tensor()).numpy()).max() < 1e-4
    # per-image styles through the graph
    zz = torch.randn(len(faces32), 8)
    y = sess.run(None, {"input": faces32.numpy(), "style": zz.numpy()})[0]
    assert np.abs(y - s(faces32, zz).numpy()).max() < 1e-4
    # a style locked in: plain convs, same output
    info = export_student(s, tmp_path / "z3.onnx", style=z)
    assert not info.dynamic_style and info.style_code == z
    y = _ort(tmp_path / "z3.onnx").run(None, {"input": faces32.numpy()})[0]
    assert np.abs(y - s(faces32, z.tensor()).numpy()).max() < 1e-4
    with pytest.raises(ExportError, match="exactly one"):
        export_student(s, tmp_path / "none.onnx")


def test_int8_student_by_psnr_and_style_path_float(tmp_path, faces32):
    s = tiny_student(dynamic=True)
    export_student(s, tmp_path / "dyn.onnx", dynamic_style=True)
    info = quantize_onnx(tmp_path / "dyn.onnx", tmp_path / "dyn8.onnx", calibration=faces32.numpy())
    assert info.precision == "int8" and info.kind == "student" and info.dynamic_style
    import onnx
    graph = onnx.load(str(tmp_path / "dyn8.onnx")).graph
    quantized = {n.input[0] for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")}
    # the style MLP and the FiLM scales/shifts stay float; only a FiLM's output (the next
    # activation's input) is quantized
    assert not any("style_mlp" in q for q in quantized)
    assert all("film/Add_1_output_0" in q for q in quantized if "/film/" in q)
    assert any("conv1.weight" in q for q in quantized)
    sess = _ort(tmp_path / "dyn8.onnx")
    for k in (0, 7):
        zk = StyleCode.from_seed(k)
        y = sess.run(None, {"input": faces32.numpy(), "style": zk.numpy()[None]})[0]
        m = compare(s(faces32, zk.tensor()), torch.from_numpy(y))
        assert m.psnr_db > 30, (k, m)


def test_shipped_demo_student_int8_and_checkpoint_export(tmp_path):
    """The real, trained demo student through export_checkpoint (as the CLI and the engines'
    ONNX cache call it): int8 stays within 30 dB of torch on real face crops."""
    from export.verify import astronaut_crops
    ck = ASSETS / "demo_student.pt"
    s = load_student(ck)
    faces = astronaut_crops(64, n=4)
    export_checkpoint(ck, tmp_path / "d.onnx", dynamic_style=True, target="cpu")
    info = read_info(tmp_path / "d.onnx")
    assert info.kind == "student" and info.checkpoint_name == "demo_student.pt"
    assert info.teacher["name"] == "demo_model.pt"
    quantize_onnx(tmp_path / "d.onnx", tmp_path / "d8.onnx", calibration=faces.numpy())
    sess = _ort(tmp_path / "d8.onnx")
    for k in (1, 2):
        z = StyleCode.from_seed(k)
        y = sess.run(None, {"input": faces.numpy(), "style": z.numpy()[None]})[0]
        assert compare(s(faces, z.tensor()), torch.from_numpy(y)).psnr_db > 30


def test_export_checkpoint_styles_of_a_locked_student(tmp_path):
    s = tiny_student(dynamic=False)
    ck = write_student(tmp_path / "locked.pt", s)
    # no style, or the apps' implicit default (seed 0), or its own: its own style
    for style in (None, StyleCode.default(), StyleCode.from_seed(5)):
        info = export_checkpoint(ck, tmp_path / "l.onnx", style=style, target="gpu")
        assert info.style_code == s.style and info.kind == "student"
    with pytest.raises(ExportError, match="distilled for seed 5"):
        export_checkpoint(ck, tmp_path / "l.onnx", style=StyleCode.from_seed(9))


def test_export_cli_takes_a_student(tmp_path, capsys):
    from export.__main__ import main
    ck = write_student(tmp_path / "locked.pt", tiny_student(dynamic=False))
    assert main(["onnx", "--checkpoint", str(ck), "-o", str(tmp_path / "s.onnx")]) == 0
    assert read_info(tmp_path / "s.onnx").style_code.source == "seed 5"
    assert main(["onnx", "--checkpoint", str(ck), "--int8", "-o", str(tmp_path / "s8.onnx")]) == 0
    assert read_info(tmp_path / "s8.onnx").precision == "int8"
    dyn = write_student(tmp_path / "dyn.pt", tiny_student(dynamic=True))
    assert main(["onnx", "--checkpoint", str(dyn), "--dynamic-style", "-o", str(tmp_path / "d.onnx")]) == 0
    assert read_info(tmp_path / "d.onnx").dynamic_style


def test_onnxruntime_engine_runs_students_unchanged(tmp_path, faces32):
    from realtime.engines.onnxruntime import OnnxRuntimeDynamicStyleEngine, open_onnx
    s = tiny_student(dynamic=True)
    export_student(s, tmp_path / "dyn.onnx", dynamic_style=True)
    eng = open_onnx(tmp_path / "dyn.onnx", expected_size=32, style=StyleCode.from_seed(2))
    assert isinstance(eng, OnnxRuntimeDynamicStyleEngine) and eng.size == 32
    out = eng(faces32)
    assert torch.allclose(out, s(faces32, StyleCode.from_seed(2).tensor()), atol=1e-4)
    eng.set_style(StyleCode.from_seed(6))
    assert torch.allclose(eng(faces32), s(faces32, StyleCode.from_seed(6).tensor()), atol=1e-4)


def test_export_cli_locked_student_needs_no_style_and_refuses_another(tmp_path, capsys):
    from export.__main__ import main
    ck = write_student(tmp_path / "locked.pt", tiny_student(dynamic=False))
    assert main(["onnx", "--checkpoint", str(ck), "-o", str(tmp_path / "s.onnx")]) == 0
    out = capsys.readouterr().out
    assert "its own style (seed 5)" in out and "--style 0" not in out
    for flags in (["--style", "0"], ["--style", "6"], ["--dynamic-style"]):
        assert main(["onnx", "--checkpoint", str(ck), *flags, "-o", str(tmp_path / "x.onnx")]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
        assert "locked" in err or "distilled for one style" in err
    assert not (tmp_path / "x.onnx").exists()
    assert main(["onnx", "--checkpoint", str(ck), "--style", "5", "-o", str(tmp_path / "y.onnx")]) == 0
    # a style-conditioned student without a style: seed 0 folded in, as for a GNR checkpoint
    dyn = write_student(tmp_path / "dyn.pt", tiny_student(dynamic=True))
    assert main(["onnx", "--checkpoint", str(dyn), "-o", str(tmp_path / "d0.onnx")]) == 0
    assert "using --style 0" in capsys.readouterr().out
    assert read_info(tmp_path / "d0.onnx").style_code == StyleCode.from_seed(0)


def test_export_verify_checks_a_students_graphs_against_the_student(tmp_path, capsys):
    from export.__main__ import main
    dyn = write_student(tmp_path / "dyn.pt", tiny_student(dynamic=True))
    assert main(["onnx", "--checkpoint", str(dyn), "--style", "3", "--int8",
                 "-o", str(tmp_path / "s3.onnx")]) == 0
    assert main(["onnx", "--checkpoint", str(dyn), "--dynamic-style", "-o", str(tmp_path / "d.onnx")]) == 0
    assert main(["onnx", "--checkpoint", str(dyn), "--style", "3", "--io", "uint8-nhwc",
                 "-o", str(tmp_path / "u8.onnx")]) == 0
    capsys.readouterr()
    code = main(["verify", "--checkpoint", str(dyn), str(tmp_path / "s3.onnx"), str(tmp_path / "d.onnx"),
                 str(tmp_path / "u8.onnx"), "--style", "3", "--json", str(tmp_path / "v.json")])
    out = capsys.readouterr().out
    assert code == 0, out
    import json
    rows = {(r["model"], r["backend"]): r for r in json.loads((tmp_path / "v.json").read_text())}
    assert rows[("s3.onnx", "onnxruntime-cpu")]["passed"]                  # int8: PSNR >= 30
    assert rows[("d.onnx", "onnxruntime-cpu")]["metrics"]["max_abs"] < 1e-4
    assert rows[("checkpoint", "torch-cpu fp32")]["metrics"]["max_abs"] < 1e-4
    u8 = rows[("u8.onnx", "onnxruntime-cpu")]                              # pixels: PSNR >= 40
    assert u8["passed"] and u8["tolerance"] == ["psnr_db", 40.0]
    # a graph with a baked style is checked with that style, whatever --style says
    assert main(["verify", "--checkpoint", str(dyn), str(tmp_path / "s3.onnx"), "--style", "4",
                 "--no-torch"]) == 0
    locked = write_student(tmp_path / "locked.pt", tiny_student(dynamic=False))
    assert main(["verify", "--checkpoint", str(locked), str(tmp_path / "d.onnx"), "--style", "2"]) == 1
    assert "locked-style student" in capsys.readouterr().err
