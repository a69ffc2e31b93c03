"""``python -m export``: the subcommands end to end (in process) and flag-naming errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from export.__main__ import main
from export.onnx import read_info
from training.style import StyleCode


def test_onnx_then_verify(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["onnx", "--checkpoint", str(tiny_ckpt), "--style", "3", "-o", str(out)]) == 0
    info = read_info(out)
    assert info.style_code == StyleCode.from_seed(3) and info.fold_blur
    vec = tmp_path / "style.npy"
    StyleCode.from_seed(5).save(vec)
    dyn = tmp_path / "dyn.onnx"
    assert main(["onnx", "--checkpoint", str(tiny_ckpt), "--dynamic-style", "--fp16",
                 "-o", str(dyn)]) == 0
    report = tmp_path / "verify.json"
    code = main(["verify", "--checkpoint", str(tiny_ckpt), str(out), str(dyn),
                 "--style-vector", str(vec), "--json", str(report)])
    text = capsys.readouterr().out
    assert code == 0, text
    rows = json.loads(report.read_text())
    ran = [r for r in rows if r["metrics"] is not None]
    assert {(r["model"], r["backend"]) for r in ran} >= {
        ("m.onnx", "onnxruntime-cpu"), ("dyn.onnx", "onnxruntime-cpu"), ("checkpoint", "torch-cpu fp32")}
    assert all(r["passed"] for r in ran)
    assert "PSNR" in text


def test_onnx_int8_reports_psnr(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "q.onnx"
    assert main(["onnx", "--checkpoint", str(tiny_ckpt), "--style", "1", "-o", str(out),
                 "--int8"]) == 0
    assert read_info(out).precision == "int8"
    assert "int8 vs fp32" in capsys.readouterr().out


def test_style_vector_errors_name_the_flag(tiny_ckpt, tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 3)))
    code = main(["onnx", "--checkpoint", str(tiny_ckpt), "--style-vector", str(bad),
                 "-o", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert code == 1 and "--style-vector" in err and "(3, 3)" in err
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("argv,flag", [
    (["trt", "m.onnx", "-o", "m.engine", "--batch", "8:4:1"], "--batch"),
    (["trt", "m.onnx", "-o", "m.engine", "--batch", "one"], "--batch"),
    (["onnx", "--checkpoint", "c.pt", "-o", "m.onnx", "--io", "rgb"], "--io"),
    (["onnx", "--checkpoint", "c.pt", "-o", "m.onnx", "--style", "-3"], "--style"),
    (["onnx", "--checkpoint", "c.pt", "-o", "m.onnx", "--style", "1", "--dynamic-style"],
     "--dynamic-style"),
    (["onnx", "-o", "m.onnx"], "--checkpoint"),
])
def test_argparse_errors_name_the_bad_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert flag in capsys.readouterr().err


def test_missing_checkpoint(tmp_path, capsys):
    assert main(["onnx", "--checkpoint", str(tmp_path / "none.pt"), "-o", str(tmp_path / "m.onnx")]) == 1
    assert "--checkpoint" in capsys.readouterr().err


def test_trt_without_tensorrt_says_so(tiny_G, tmp_path, capsys):
    pytest.importorskip("onnx")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here; the build itself is tested in tests/engines")
    except ImportError:
        pass
    from export.onnx import export_onnx
    m = tmp_path / "m.onnx"
    export_onnx(tiny_G, m, style=StyleCode.from_seed(0))
    assert main(["trt", str(m), "-o", str(tmp_path / "m.engine"), "--fp16"]) == 1
    assert "TensorRT is not installed" in capsys.readouterr().err
    assert not (tmp_path / "m.engine").exists()


def test_module_entry_point():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "export", "trt", "m.onnx", "-o", "m.engine",
                        "--batch", "4:2:8"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "argument --batch" in r.stderr


def test_verify_warns_about_another_checkpoint(tiny_G, tiny_ckpt, tmp_path, capsys):
    from export.onnx import export_onnx
    m = tmp_path / "m.onnx"
    export_onnx(tiny_G, m, style=StyleCode.from_seed(0), checkpoint_sha256="0" * 64,
                checkpoint_name="other.pt")
    main(["verify", "--checkpoint", str(tiny_ckpt), str(m), "--no-torch"])
    assert "was exported from other.pt" in capsys.readouterr().out
