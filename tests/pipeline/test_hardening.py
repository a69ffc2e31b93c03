"""Issue 13: every hostile input to `python -m realtime.convert` gets one clear line, the right
exit status and nothing left behind — cut-off files (faststart too), options checked before
anything is created, SIGTERM/SIGHUP like Ctrl-C, folders with temporary files and earlier
outputs, short messages. Valid files that look odd (VFR, B-frames, edit lists, a wrong declared
duration, audio longer than video) still convert."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest

from realtime.convert import main
from realtime.sources import MediaError, VideoFileSource, probe
from realtime.synthetic import write_video

from .media import cut, damage_middle, frames, write_clip

REPO = Path(__file__).resolve().parents[2]


def _run(args, capsys):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------------------------
# 1. cut-off files fail like every truncated file; valid odd files do not
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fraction", [0.5, 0.95, 0.99])
def test_faststart_mp4_cut_short_fails_before_anything_is_written(tmp_path, capsys, fraction):
    full = write_video(tmp_path / "fs.mp4", frames(50), audio_s=2.0, faststart=True)
    bad = cut(full, tmp_path / "cut.mp4", fraction)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MediaError, match="truncated"):
        probe(bad)
    code, err = _run([bad, "-o", out / "o.mp4", "--model", "identity"], capsys)
    assert code == 1 and "truncated" in err and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("error: ") and _names(out) == []


@pytest.mark.parametrize("suffix,codec,audio", [(".mkv", "libx264", "aac"),
                                                (".webm", "libvpx-vp9", "libopus"),
                                                (".avi", "mpeg4", "aac"), (".mov", "libx264", "aac")])
def test_other_containers_cut_short_fail(tmp_path, suffix, codec, audio):
    full = write_video(tmp_path / f"full{suffix}", frames(50), audio_s=2.0, codec=codec,
                       audio_codec=audio)
    bad = cut(full, tmp_path / f"cut{suffix}", 0.8)
    with pytest.raises(MediaError, match="truncated|corrupt|not a readable"):
        list(VideoFileSource(bad))


def test_damaged_middle_fails(tmp_path):
    bad = damage_middle(write_video(tmp_path / "a.mp4", frames(50), audio_s=2.0), tmp_path / "b.mp4")
    with pytest.raises(MediaError, match="corrupt"):
        list(VideoFileSource(bad))


def _edit_list_clip(path: Path, n: int = 30, lead: int = 2) -> Path:
    """An MP4 whose first ``lead`` frames lie before time 0: the muxer writes an edit list and
    FFmpeg drops those frames on decoding (the container still lists them)."""
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=25)
    vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
    tb = Fraction(1, 25000)
    vs.time_base = vs.codec_context.time_base = tb
    for i, img in enumerate(frames(n)):
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        vf.pts, vf.time_base = (i - lead) * 1000, tb
        for p in vs.encode(vf):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)
    out.close()
    return path


def test_valid_odd_files_are_not_called_truncated(tmp_path):
    """VFR with a long gap (its MP4 header duration is wrong), B-frames (x264's default), an
    edit list dropping two frames, audio longer than the video, and an MKV/WebM/AVI/MOV each
    convert to their last frame."""
    ts = [0, 0.04, 0.1, 0.3, 0.34, 0.5, 0.52, 0.56, 1.5, 1.54]
    vfr = write_video(tmp_path / "vfr.mp4", frames(len(ts)), timestamps_s=ts)
    assert probe(vfr).duration_s < 1.0                       # the header is wrong, on purpose
    assert [f.timestamp_s for f in VideoFileSource(vfr)] == pytest.approx(ts, abs=1e-3)
    assert len(list(VideoFileSource(_edit_list_clip(tmp_path / "edit.mp4")))) == 28
    long_audio = write_video(tmp_path / "la.mkv", frames(10), audio_s=3.0)
    assert len(list(VideoFileSource(long_audio))) == 10
    for suffix, codec, audio in ((".mkv", "libx264", "aac"), (".webm", "libvpx-vp9", "libopus"),
                                 (".avi", "mpeg4", "aac"), (".mov", "libx264", "aac"),
                                 (".ts", "libx264", "aac")):
        p = write_video(tmp_path / f"ok{suffix}", frames(30), audio_s=1.2, codec=codec,
                        audio_codec=audio)
        assert len(list(VideoFileSource(p))) == 30, suffix


def test_declared_matroska_duration_far_beyond_the_frames_is_truncation(tmp_path):
    """The statistics tags FFmpeg writes per stream are what the check reads; a file whose
    video ends 1.2 s before its declared end is cut short."""
    full = write_video(tmp_path / "a.mkv", frames(50), audio_s=2.0)
    streams = {s.type: s.metadata.get("DURATION") for s in av.open(str(full)).streams}
    assert streams["video"].startswith("00:00:02")
    with pytest.raises(MediaError, match=r"ends at .* declares 2\.00 s"):
        list(VideoFileSource(cut(full, tmp_path / "b.mkv", 0.5)))


# ---------------------------------------------------------------------------------------------
# 4. options are checked before anything is created
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flags,needle", [
    (["--max-faces", "0"], "--max-faces"), (["--max-faces", "-1"], "--max-faces"),
    (["--max-faces", "17"], "--max-faces"), (["--min-face", "-5"], "--min-face"),
    (["--crop-widen", "0"], "--crop-widen"), (["--batch-frames", "0"], "--batch-frames"),
    (["--batch-frames", "-3"], "--batch-frames"), (["--jobs", "0"], "--jobs"),
    (["--crf", "60"], "--crf"), (["--preset", "quick"], "--preset"),
    (["--codec", "nosuchcodec"], "--codec"), (["--smooth-beta", "-1"], "--smooth-beta"),
])
def test_bad_options_name_the_flag_and_create_nothing(tmp_path, capsys, flags, needle):
    src = write_clip(tmp_path / "a.mp4", n=3)
    out = tmp_path / "out"
    out.mkdir()
    code, err = _run([src, "-o", out / "o.mp4", "--model", "identity", *flags], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {needle}"), err
    assert _names(out) == [] and _names(tmp_path) == ["a.mp4", "out"]


def test_codec_that_the_container_does_not_take_is_refused_up_front(tmp_path, capsys):
    src = write_clip(tmp_path / "a.mp4", n=3)
    code, err = _run([src, "-o", tmp_path / "o.webm", "--model", "identity", "--codec", "libx264"],
                     capsys)
    assert code == 2 and "--codec libx264" in err and "webm" in err
    assert _names(tmp_path) == ["a.mp4"]


# ---------------------------------------------------------------------------------------------
# 5. SIGTERM and SIGHUP stop like Ctrl-C
# ---------------------------------------------------------------------------------------------
def _start(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "realtime.convert", *map(str, args)], cwd=REPO,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kw)


def _wait_for_output(folder: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(folder.iterdir()):    # encoding has begun
        time.sleep(0.02)
    assert any(folder.iterdir()), "the conversion never started"


def test_sigterm_mid_conversion_leaves_nothing(tmp_path):
    src = write_video(tmp_path / "long.mp4", frames(200, 320, 240))
    out = tmp_path / "out"
    out.mkdir()
    proc = _start([src, "-o", out / "long_out.mp4", "--model", "identity"])
    _wait_for_output(out)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    assert _names(out) == []


def test_sighup_mid_conversion_in_process(tmp_path, capsys):
    """The same for SIGHUP (a closed terminal), sent to this very process once the temporary
    output exists; the test's own handler catches a signal that would come too late."""
    src = write_video(tmp_path / "long.mp4", frames(200, 320, 240))
    out = tmp_path / "out"
    out.mkdir()
    late = []
    previous = signal.signal(signal.SIGHUP, lambda *a: late.append(a))
    sender = threading.Thread(target=lambda: (_wait_for_output(out), time.sleep(0.2),
                                              os.kill(os.getpid(), signal.SIGHUP)))
    try:
        sender.start()
        code, err = _run([src, "-o", out / "long_out.mp4", "--model", "identity"], capsys)
        sender.join()
    finally:
        signal.signal(signal.SIGHUP, previous)
    if late:
        pytest.skip("the conversion finished before the signal came")
    assert code == 129 and "interrupted (SIGHUP)" in err and _names(out) == []


# ---------------------------------------------------------------------------------------------
# 6. folders: hidden temporary files and our own outputs are skipped, and said so
# ---------------------------------------------------------------------------------------------
def test_folder_into_itself_twice_and_leftover_temp_file(tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    write_clip(folder / "a.mp4", n=3)
    (folder / ".a_anime.mp4.x1y2.part.mp4").write_bytes(b"\x00" * 100)     # a crash's leftover
    code, err = _run([folder, "-o", folder, "--model", "identity"], capsys)
    assert code == 0, err
    assert "skipped 1 hidden file" in err
    assert _names(folder) == [".a_anime.mp4.x1y2.part.mp4", "a.mp4", "a_anime.mp4"]
    code, err = _run([folder, "-o", folder, "--model", "identity"], capsys)
    assert code == 0 and "1 earlier output (*_anime)" in err, err
    assert "a_anime_anime" not in err and _names(folder) == [".a_anime.mp4.x1y2.part.mp4",
                                                             "a.mp4", "a_anime.mp4"]


# ---------------------------------------------------------------------------------------------
# 9 and the stumbles: short lines, the error last, no table for one input
# ---------------------------------------------------------------------------------------------
def test_help_example_and_mode_spelling(capsys):
    from realtime.convert import build_parser
    text = build_parser().format_help()
    assert "--output side-by-side" not in text and "--output-mode side-by-side" in text
    assert build_parser().parse_args(["x.mp4", "--mode", "crop"]).output_mode == "crop"


def test_one_failing_input_ends_with_its_error_naming_the_file_once(tmp_path, capsys):
    bad = tmp_path / "X.mp4"
    bad.write_bytes(b"")
    code, err = _run([bad, "-o", tmp_path / "o.mp4", "--model", "identity"], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and lines[-1] == f"error: {bad}: the file is empty (0 bytes)"
    assert err.count(str(bad)) == 1 and "summary" not in err
    assert lines[0] == "engine: identity on cpu, 256x256, identity"       # short engine line


def test_several_inputs_get_a_summary_table(tmp_path, capsys):
    good = write_clip(tmp_path / "good.mp4", n=3)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope" * 100)
    code, err = _run([good, bad, "-o", tmp_path / "out", "--model", "identity"], capsys)
    assert code == 1 and "Conversion summary" in err
    assert err.strip().splitlines()[-1].startswith(f"error: {bad}: not a readable video")
    assert _names(tmp_path / "out") == ["good_anime.mp4"]


def test_demo_output_is_ignored_by_git():
    assert "gnr_demo.mp4" in (REPO / ".gitignore").read_text().split()


def test_native_log_lines_are_held_back_unless_verbose(tmp_path, capfd):
    """MediaPipe's absl/TFLite lines go to fd 2 from C++: silent by default, shown with -v."""
    from realtime.faces import FaceTracker, TrackerConfig
    from realtime.faces.detect import show_native_logs
    from realtime.types import Frame

    def run() -> str:
        t = FaceTracker(TrackerConfig())
        for i, img in enumerate(frames(3, 320, 240)):
            t.update(Frame(img, i / 25, i), i / 25)
        t.close()
        os.write(2, b"our own line\n")
        return capfd.readouterr().err

    show_native_logs(True)
    try:
        shown = run()
    finally:
        show_native_logs(False)
    quiet = run()
    assert "inference_feedback_manager" in shown
    assert "inference_feedback_manager" not in quiet and "our own line" in quiet
    assert "W0000" not in quiet and "INFO: Created TensorFlow Lite" not in quiet
