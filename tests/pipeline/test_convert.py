"""`python -m realtime.convert` end to end on real encoded files (PyAV), with the identity model:
frames, timestamps, audio and rotation survive; bad input gets one clear line and no output."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from realtime.convert import main
from realtime.synthetic import face_scene, read_back, write_audio_only, write_video

from .media import frames

REPO = Path(__file__).resolve().parents[2]


def _clip(path, n=12, w=320, h=240, **kw):
    return write_video(path, frames(n, w, h), **kw)


def _run(args, capsys):
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def test_converts_with_audio_timestamps_and_side_by_side(tmp_path, capsys):
    src = _clip(tmp_path / "a.mp4", n=15, fps=15, audio_s=1.0)
    out = tmp_path / "a_out.mp4"
    code, err = _run([src, "-o", out, "--model", "identity", "--output-mode", "side-by-side"], capsys)
    assert code == 0, err
    a, b = read_back(src), read_back(out)
    assert b["frames"] == 15 and (b["width"], b["height"]) == (640, 240)
    np.testing.assert_allclose(b["timestamps"], a["timestamps"], atol=1e-3)
    assert b["audio_codec"] == "aac" and abs(b["audio_s"] - a["audio_s"]) < 0.05
    assert "wrote" in err


def test_rotated_vfr_and_odd_sized_inputs(tmp_path, capsys):
    ts = [0, 0.04, 0.1, 0.3, 0.34, 0.5]
    rot = write_video(tmp_path / "rot.mp4", [np.ascontiguousarray(np.rot90(face_scene(320, 240), -1))
                                             for _ in ts], timestamps_s=ts, rotation=90)
    code, err = _run([rot, "-o", tmp_path / "rot_out.mp4", "--model", "identity"], capsys)
    assert code == 0, err
    back = read_back(tmp_path / "rot_out.mp4")
    assert back["rotation"] == 90 and (back["width"], back["height"]) == (240, 320)
    np.testing.assert_allclose(back["timestamps"], ts, atol=1e-3)
    odd = write_video(tmp_path / "odd.mkv", [face_scene(641, 479) for _ in range(4)], codec="libx264rgb")
    code, err = _run([odd, "-o", tmp_path / "odd_out.mp4", "--model", "identity"], capsys)
    assert code == 0, err
    assert (read_back(tmp_path / "odd_out.mp4")["width"], read_back(tmp_path / "odd_out.mp4")["height"]) == (642, 480)


def test_no_face_video_passes_through(tmp_path, capsys):
    src = write_video(tmp_path / "empty.mp4", [np.full((120, 160, 3), 40, np.uint8)] * 5)
    code, err = _run([src, "-o", tmp_path / "e_out.mp4", "--model", "identity"], capsys)
    assert code == 0, err
    assert read_back(tmp_path / "e_out.mp4")["frames"] == 5


def test_ten_faces_with_max_faces_two(tmp_path, capsys):
    tile = face_scene(256, 240, face_frac=0.5)
    frame = np.concatenate([np.concatenate([tile] * 5, axis=1)] * 2, axis=0)   # 1280 x 480
    src = write_video(tmp_path / "crowd.mp4", [frame] * 3)
    code, err = _run([src, "-o", tmp_path / "c_out.mp4", "--model", "identity", "--max-faces", "2"], capsys)
    assert code == 0, err
    assert read_back(tmp_path / "c_out.mp4")["frames"] == 3


@pytest.mark.parametrize("make,needle", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(bytes(range(256)) * 20), "not a readable video"),
])
def test_bad_inputs_fail_cleanly(tmp_path, capsys, make, needle):
    bad = tmp_path / "bad.mp4"
    make(bad)
    out = tmp_path / "bad_out.mp4"
    code, err = _run([bad, "-o", out, "--model", "identity"], capsys)
    assert code == 1 and needle in err and "Traceback" not in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4"]


def test_truncated_and_audio_only(tmp_path, capsys):
    full = _clip(tmp_path / "full.mp4", n=30, audio_s=1.0)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    code, err = _run([cut, "-o", tmp_path / "cut_out.mp4", "--model", "identity"], capsys)
    assert code == 1 and not (tmp_path / "cut_out.mp4").exists() and "Traceback" not in err
    p = write_audio_only(tmp_path / "sound.m4a")
    code, err = _run([p, "-o", tmp_path / "s_out.mp4", "--model", "identity"], capsys)
    assert code == 1 and "no video stream" in err


def test_output_folder_missing_and_existing_output_skipped(tmp_path, capsys):
    src = _clip(tmp_path / "a.mp4", n=3)
    code, err = _run([src, "-o", tmp_path / "missing" / "o.mp4", "--model", "identity"], capsys)
    assert code == 2 and "does not exist" in err          # checked before anything starts
    existing = tmp_path / "o.mp4"
    existing.write_bytes(b"keep me")
    code, err = _run([src, "-o", existing, "--model", "identity"], capsys)
    assert code == 0 and "skipped" in err and existing.read_bytes() == b"keep me"
    code, err = _run([src, "-o", existing, "--model", "identity", "--overwrite"], capsys)
    assert code == 0 and read_back(existing)["frames"] == 3


def test_folder_of_inputs_with_jobs(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("x", "y", "z"):
        _clip(folder / f"{name}.mp4", n=4)
    (folder / "notes.txt").write_text("not a video")
    out = tmp_path / "out"
    code, err = _run([folder, "-o", out, "--model", "identity", "--jobs", "2"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["x_anime.mp4", "y_anime.mp4", "z_anime.mp4"]


def test_disk_full_leaves_nothing(tmp_path, capsys):
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root) to fill a disk")
    try:
        src = _clip(tmp_path / "big.mp4", n=40, w=640, h=480, audio_s=1.5)
        code, err = _run([src, "-o", small / "o.mp4", "--model", "identity", "--crf", "0"], capsys)
        assert code == 1 and "No space left" in err and "Traceback" not in err
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)])


def test_sigint_mid_conversion_leaves_no_output(tmp_path):
    src = _clip(tmp_path / "long.mp4", n=300, w=320, h=240)
    out = tmp_path / "long_out.mp4"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "realtime.convert", str(src), "-o", str(out),
                             "--model", "identity"], cwd=REPO, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:      # wait until encoding has begun
        if any(p.name.startswith(".long_out.") for p in tmp_path.iterdir()):
            break
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]
