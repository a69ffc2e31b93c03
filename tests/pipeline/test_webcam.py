"""The live app driven headless: a file looped as a camera, an MPEG-TS stream over UDP read back
by a PyAV client, a recording, a frame limit, and the shutdown summary."""
from __future__ import annotations

import json
import socket
import threading

import av
import numpy as np

from realtime.styles import StyleBank, StyleMixer
from realtime.webcam import main
from realtime.synthetic import face_scene, read_back, write_video


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_headless_stream_and_record(tmp_path, capsys):
    src = write_video(tmp_path / "cam.mp4", [face_scene(320, 240, dx=i) for i in range(10)], fps=25)
    port = _free_udp_port()
    url = f"udp://127.0.0.1:{port}"
    received: list[tuple[int, int]] = []

    def client():
        try:
            c = av.open(url + "?timeout=8000000", format="mpegts", timeout=8)
            for f in c.decode(video=0):
                received.append((f.width, f.height))
                if len(received) >= 5:
                    break
            c.close()
        except av.error.FFmpegError:
            pass

    reader = threading.Thread(target=client, daemon=True)
    reader.start()
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
