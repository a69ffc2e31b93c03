"""The live app driven headless: a file looped as a camera, an MPEG-TS stream over UDP read back
by a PyAV client, a recording, a frame limit, and the shutdown summary."""
from __future__ import annotations

import json
import socket
import threading

import pytest
import numpy as np

from realtime.styles import StyleBank, StyleMixer
from realtime.webcam import main
from realtime.synthetic import face_scene, read_back, write_video
from tests.conftest import free_udp_port, watch_stream


def test_headless_stream_and_record(tmp_path, capsys):
    src = write_video(tmp_path / "cam.mp4", [face_scene(320, 240, dx=i) for i in range(10)], fps=25)
    port = free_udp_port()
    url = f"udp://127.0.0.1:{port}"
    reader, received = watch_stream(url)
    summary = tmp_path / "summary.json"
    code = main(["--input", str(src), "--no-window", "--model", "identity", "--max-frames", "40",
                 "--stream", url, "--record", str(tmp_path / "shown.mp4"), "--json", str(summary)])
    err = capsys.readouterr().err
    reader.join(timeout=10)
    assert code == 0, err
    s = json.loads(summary.read_text())
    assert s["frames_in"] == 40 and s["frames_out"] + s["dropped_total"] == 40
    assert "latency p50" in err                              # the shutdown summary
    assert len(received) >= 5 and received[0] == (320, 240)  # the stream was watchable
    rec = read_back(tmp_path / "shown.mp4")
    assert rec["frames"] == s["frames_out"] and (rec["width"], rec["height"]) == (320, 240)


def test_bad_input_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"")
    assert main(["--input", str(bad), "--no-window", "--model", "identity"]) == 2
    assert "empty" in capsys.readouterr().err


def test_style_mixer_blends_smoothly_and_bank_round_trips(tmp_path):
    a, b = np.zeros(8, np.float32), np.ones(8, np.float32)
    m = StyleMixer(a)
    m.set(b, now=10.0)
    assert np.allclose(m.current(10.0), a) and np.allclose(m.current(10.3), b)
    mid = m.current(10.15)
    assert 0.4 < mid[0] < 0.6                                # halfway through 0.3 s
    bank = StyleBank(tmp_path / "cfg" / "styles.json")
    assert bank.save(b) == 1 and bank.save(a) == 2
    again = StyleBank(tmp_path / "cfg" / "styles.json")
    assert np.allclose(again.get(0), b) and again.get(5) is None
    (tmp_path / "cfg" / "styles.json").write_text("{broken")
    assert StyleBank(tmp_path / "cfg" / "styles.json").styles == []


def _free_tcp_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                     # nothing listens there now: a connection is refused
    return port


def test_bad_stream_urls_are_one_line_before_anything_starts(tmp_path, capsys):
    src = write_video(tmp_path / "cam.mp4", [face_scene(160, 120)] * 3)
    cases = [("notaurl://x", "unsupported protocol 'notaurl'"),
             ("shown.ts", "unsupported protocol"),
             ("udp://127.0.0.1", "no port"),
             ("udp://127.0.0.1:99999", "not a valid URL"),
             ("udp://no.such.host.invalid:5000", "unknown host"),
             (f"tcp://127.0.0.1:{_free_tcp_port()}", "Connection refused")]
    for url, needle in cases:
        code = main(["--input", str(src), "--no-window", "--model", "identity", "--max-frames", "5",
                     "--stream", url, "--record", str(tmp_path / "rec.mp4")])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and "Traceback" not in err, (url, err)
        last = err.strip().splitlines()[-1]
        assert last.startswith("error:") and url in last
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.mp4"], url


def _hanging_up_receiver() -> int:
    """A TCP receiver that hangs up (a reset) after the first bytes; returns its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def hang_up():
        conn, _ = server.accept()
        conn.recv(1000)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()                                   # a reset: the next send fails at once
        server.close()

    threading.Thread(target=hang_up, daemon=True).start()
    return server.getsockname()[1]


def test_a_stream_that_fails_mid_run_is_dropped_and_the_rest_goes_on(tmp_path, capsys):
    """A warning, the recording and the run go on to their end, and the exit status says an
    output was lost."""
    src = write_video(tmp_path / "cam.mp4", [face_scene(320, 240, dx=i) for i in range(10)], fps=25)
    url = f"tcp://127.0.0.1:{_hanging_up_receiver()}"
    code = main(["--input", str(src), "--no-window", "--model", "identity", "--max-frames", "40",
                 "--stream", url, "--record", str(tmp_path / "rec.mp4"),
                 "--json", str(tmp_path / "run.json")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err, err
    assert "sending failed" in err and "the other outputs go on" in err
    assert err.strip().splitlines()[-1].startswith(f"error: --stream {url}")
    s = json.loads((tmp_path / "run.json").read_text())
    assert s["frames_in"] == 40 and read_back(tmp_path / "rec.mp4")["frames"] == s["frames_out"]


def test_when_the_only_output_fails_the_app_stops(tmp_path, capsys):
    src = write_video(tmp_path / "cam.mp4", [face_scene(320, 240, dx=i) for i in range(10)], fps=25)
    url = f"tcp://127.0.0.1:{_hanging_up_receiver()}"
    code = main(["--input", str(src), "--no-window", "--model", "identity", "--max-frames", "400",
                 "--stream", url, "--json", str(tmp_path / "run.json")])
    err = capsys.readouterr().err
    assert code == 1 and "sending failed" in err, err
    assert json.loads((tmp_path / "run.json").read_text())["frames_in"] < 400   # stopped early


def test_json_into_a_missing_folder_is_refused_before_the_run(tmp_path, capsys):
    src = write_video(tmp_path / "cam.mp4", [face_scene(160, 120)] * 3)
    code = main(["--input", str(src), "--no-window", "--model", "identity", "--max-frames", "5",
                 "--json", str(tmp_path / "nope" / "run.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == f"error: --json {tmp_path / 'nope' / 'run.json'}: the " \
                                        f"folder {tmp_path / 'nope'} does not exist"
    assert "engine:" not in err                       # nothing was opened


def test_summary_lines_fit_an_80_column_terminal(tmp_path, capsys):
    src = write_video(tmp_path / "cam.mp4", [face_scene(160, 120)] * 3)
    assert main(["--input", str(src), "--no-window", "--model", "identity", "--max-frames", "5"]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("latency p50") and all(len(line) <= 80 for line in lines[-2:])


def test_output_mode_help_and_mode_spelling():
    from realtime.webcam import build_parser
    text = build_parser().format_help()
    assert "--output-mode {composite,crop,side-by-side}, --mode" in text.replace("\n", " ")
    assert "input and result side by side" in " ".join(text.split())
    assert build_parser().parse_args(["--mode", "crop"]).output_mode == "crop"


def _sound_backend_problem() -> str | None:
    """Why this machine cannot play or capture sound (None: it can)."""
    from realtime.audio_io import AudioUnavailableError, load_sounddevice
    try:
        load_sounddevice()
    except AudioUnavailableError as e:
        return str(e)
    return None


def test_sound_flags_are_checked_before_anything_runs(tmp_path, capsys):
    src = write_video(tmp_path / "cam.mp4", [face_scene(160, 120)] * 3)
    cases = [(["--audio", "input"], "--audio input plays the sound of --input FILE"),
             (["--input", str(src), "--audio-delay", "50"], "--audio-delay: only with --audio"),
             (["--input", str(src), "--audio-output", "x"], "--audio-output: only with --audio"),
             (["--input", str(src), "--audio", "input", "--audio-delay", "-5"],
              "--audio-delay must be within 0..2000 ms, got -5"),
             (["--input", str(src), "--audio", "input", "--audio-delay", "nan"],
              "--audio-delay must be within 0..2000 ms")]
    for args, needle in cases:
        code = main([*args, "--no-window", "--model", "identity", "--max-frames", "3"])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and "Traceback" not in err, (args, err)
        assert "engine:" not in err                   # nothing was opened


@pytest.mark.skipif(_sound_backend_problem() is None, reason="this machine has a sound backend")
def test_without_a_sound_backend_one_line_says_what_to_install_and_the_video_goes_on(tmp_path,
                                                                                      capsys):
    src = write_video(tmp_path / "cam.mp4", [face_scene(320, 240, dx=i) for i in range(10)],
                      fps=25, audio_s=0.4)
    code = main(["--input", str(src), "--no-window", "--model", "identity", "--max-frames", "20",
                 "--audio", "--record", str(tmp_path / "rec.mp4")])
    err = capsys.readouterr().err
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: no sound")]
    assert len(warnings) == 1 and "pip install -e '.[audio]'" in warnings[0], err
    if "PortAudio" in _sound_backend_problem():
        assert "libportaudio2" in warnings[0]
    rec = read_back(tmp_path / "rec.mp4")
    assert rec["frames"] > 0 and rec["audio_codec"] is None     # the video, without sound


@pytest.mark.skipif(_sound_backend_problem() is None, reason="this machine has a sound backend")
def test_without_a_virtual_microphone_the_recording_still_gets_the_sound(tmp_path, capsys):
    src = write_video(tmp_path / "cam.mp4", [face_scene(320, 240, dx=i) for i in range(10)],
                      fps=25, audio_s=0.4)
    code = main(["--input", str(src), "--no-window", "--model", "identity", "--max-frames", "20",
                 "--audio", "input", "--virtual-camera", "--record", str(tmp_path / "rec.mp4")])
    err = capsys.readouterr().err
    assert code == 0, err
    line = [x for x in err.splitlines() if x.startswith("warning: no virtual microphone")]
    assert len(line) == 1 and ("pactl" in line[0] or "PortAudio" in line[0]), err
    assert "sound: delayed" in err
    rec = read_back(tmp_path / "rec.mp4")
    assert rec["frames"] > 0 and rec["audio_codec"] == "aac" and rec["audio_s"] > 0.3


def test_a_file_without_sound_is_a_warning_and_the_video_goes_on(tmp_path, capsys):
    src = write_video(tmp_path / "cam.mp4", [face_scene(320, 240, dx=i) for i in range(10)], fps=25)
    code = main(["--input", str(src), "--no-window", "--model", "identity", "--max-frames", "10",
                 "--audio", "input", "--record", str(tmp_path / "rec.mp4")])
    err = capsys.readouterr().err
    assert code == 0 and "has no sound track to play" in err and "Traceback" not in err, err
    assert read_back(tmp_path / "rec.mp4")["frames"] > 0
