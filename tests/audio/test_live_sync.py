"""The live app with sound, end to end: a clip whose clicks fall on its flashes, looped as a
camera through a slow model, recorded and streamed; read back, flash and click meet within one
frame — because of the delay (without it the click runs ahead by the video's latency) — and the
delay follows the model when it slows down, without a gap or a click in the sound.

Timing on a shared 2-core machine jitters (a frame can leave the pipeline 100 ms later than its
neighbours), so each check is on the median of the flashes of a stretch; every figure measured
is printed (``pytest -s``)."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import numpy as np
import pytest

import realtime.webcam as webcam
from realtime.compose import open_model
from tests.audio import avsync

FRAME_S = 1 / avsync.FPS


class SlowEngine:
    """The opened engine, made slow: before each batch it sleeps ``schedule[i][1]`` seconds,
    from ``schedule[i][0]`` seconds after its first batch on."""

    def __init__(self, engine, schedule):
        self.engine, self.schedule, self.t0 = engine, schedule, None

    def __call__(self, crops):
        now = time.monotonic()
        self.t0 = self.t0 or now
        time.sleep([s for t, s in self.schedule if now - self.t0 >= t][-1])
        return self.engine(crops)

    def __getattr__(self, name):
        return getattr(self.engine, name)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return avsync.flash_clip(tmp_path_factory.mktemp("live") / "flashes.mov")


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_live(monkeypatch, tmp_path, clip, schedule, *args, stream=False):
    """``python -m realtime.webcam --input clip --audio input --record …`` with the identity
    model made slow; returns (exit code, summary, recording, stream)."""
    def slow_model(opts, log=lambda m: None):
        opened = open_model(opts, log=log)
        opened.engine = SlowEngine(opened.engine, schedule)
        return opened

    monkeypatch.setattr(webcam, "open_model", slow_model)     # the composition root, made slow
    url = f"udp://127.0.0.1:{_free_udp_port()}"
    catcher = avsync.StreamCatcher(url) if stream else None
    record, summary = tmp_path / "shown.mp4", tmp_path / "run.json"
    code = webcam.main(["--input", str(clip), "--no-window", "--model", "identity",
                        "--paste", "face", "--audio", "input", "--record", str(record),
                        "--json", str(summary), *(["--stream", url] if stream else []), *args])
    if catcher is not None:
        catcher.join(20)
    s = json.loads(summary.read_text())
    return code, s, avsync.read_file(record), catcher.media if catcher else None


def _stretch(errors, start, end=float("inf")):
    return np.array([e for t, e in errors if start <= t < end])


def _say(name, errors):
    e = np.array([v for _, v in errors])
    print(f"{name}: {len(e)} flashes, video − sound median {1000 * np.median(e):+.0f} ms, "
          f"|error| p50 {1000 * np.median(np.abs(e)):.0f} ms, within one frame "
          f"{np.mean(np.abs(e) <= FRAME_S):.0%}: {[round(1000 * v) for v in e]}")


def test_record_and_stream_carry_the_sound_in_sync_with_a_slow_model(monkeypatch, tmp_path,
                                                                     clip, capsys):
    code, s, rec, streamed = run_live(monkeypatch, tmp_path, clip, [(0, 0.12)], "--seconds", "10",
                                      stream=True)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "sound: delayed" in err and "Traceback" not in err
    audio = s["audio"]
    assert audio["source"] == "the sound of flashes.mov" and len(audio["outputs"]) == 2
    print(f"latency p50 {s['latency']['p50_ms']:.0f} ms, p95 {s['latency']['p95_ms']:.0f} ms; "
          f"delay at the end {audio['delay_ms']:.0f} ms; changes (s, ms) {audio['changes']}")
    for name, media in (("record", rec), ("stream", streamed)):
        assert avsync.track_gaps(media) == [], name
        errors = [(t, e) for t, e in avsync.sync_errors(media) if t >= 1.0]   # after warm-up
        _say(name, errors)
        assert len(errors) >= 6, name
        assert abs(np.median([e for _, e in errors])) <= FRAME_S, name


def test_without_the_delay_the_sound_runs_ahead_by_the_latency(monkeypatch, tmp_path, clip,
                                                               capsys):
    """The control: the same run with ``--audio-delay 0`` is out of sync by the video's
    latency, so the sync above is the delay's doing."""
    code, s, rec, _ = run_live(monkeypatch, tmp_path, clip, [(0, 0.12)], "--seconds", "6",
                               "--audio-delay", "0")
    assert code == 0, capsys.readouterr().err
    assert s["audio"]["delay_ms"] == 0 and s["audio"]["how"].startswith("fixed")
    errors = [(t, e) for t, e in avsync.sync_errors(rec) if t >= 1.0]
    _say("record, --audio-delay 0", errors)
    assert len(errors) >= 4
    ahead = np.median([e for _, e in errors])
    assert ahead > 2 * FRAME_S and ahead == pytest.approx(s["latency"]["p50_ms"] / 1000, rel=0.5)


def test_the_delay_follows_the_model_without_gaps_or_clicks(monkeypatch, tmp_path, clip, capsys):
    """The model takes 30 ms a frame, then from 3 s on 150 ms: the delay follows within a few
    seconds, the recording is in sync before and after, and its sound has no hole, no dip and
    no crackle where the delay changed."""
    code, s, rec, _ = run_live(monkeypatch, tmp_path, clip, [(0, 0.03), (3, 0.15)],
                               "--seconds", "16")
    assert code == 0, capsys.readouterr().err
    changes = s["audio"]["changes"]
    print("delay changes (s, ms):", changes)
    before = [ms for t, ms in changes if t < 3.0][-1]
    after = [ms for t, ms in changes if t < 8.0][-1]
    assert after - before >= 80                       # the model's 120 ms more, followed
    errors = avsync.sync_errors(rec)
    _say("record, before the change", [(t, e) for t, e in errors if 1.0 <= t < 3.0])
    _say("record, after it settled", [(t, e) for t, e in errors if t >= 8.0])
    for stretch in (_stretch(errors, 1.0, 3.0), _stretch(errors, 8.0)):
        assert len(stretch) >= 3 and abs(np.median(stretch)) <= FRAME_S
    assert avsync.track_gaps(rec) == []
    t0, x = rec.sound
    x = x[int(0.5 * avsync.RATE):-avsync.RATE // 10]
    src_t0, src = avsync.read_file(clip).sound
    dip, crackle = avsync.envelope_dip(x), avsync.crackle(x)
    print(f"sound: quietest 20 ms {dip:.2f} of the median (the file itself "
          f"{avsync.envelope_dip(src):.2f}); above 6 kHz {crackle:.4f} (limit "
          f"{avsync.CRACKLE_LIMIT})")
    assert dip >= 0.6 * avsync.envelope_dip(src)
    assert crackle < avsync.CRACKLE_LIMIT


def _sound_server_missing() -> str | None:
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as e:
        return f"no PortAudio here ({e})"
    for tool in ("pulseaudio", "pactl", "parec"):
        if shutil.which(tool) is None:
            return f"no `{tool}` here to start a sound server in the test"
    return None


@pytest.mark.skipif(_sound_server_missing() is not None, reason=str(_sound_server_missing()))
def test_the_virtual_microphone_on_a_pulseaudio_server(tmp_path, monkeypatch):
    """A private PulseAudio server: the null sink appears, what is played into it comes out of
    its monitor (what a call app records), and it is gone after close."""
    from realtime.audio import AudioChunk
    from realtime.audio_io import VirtualMicrophone

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("PULSE_RUNTIME_PATH", str(tmp_path / "pulse"))
    subprocess.run(["pulseaudio", "--start", "--exit-idle-time=-1", "-n",
                    "--load=module-native-protocol-unix", "--load=module-null-sink"], check=True,
                   timeout=20)
    try:
        mic = VirtualMicrophone("gnr_test_mic")
        sinks = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True, text=True)
        assert "gnr_test_mic" in sinks.stdout
        rec = subprocess.Popen(["parec", "--device=gnr_test_mic.monitor", "--format=float32le",
                                "--channels=1", "--rate=48000", "--raw"], stdout=subprocess.PIPE)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(480) / 48000)).astype(np.float32)
        t = time.monotonic()
        for k in range(150):
            mic.write_audio(AudioChunk(tone[:, None], t + k * 0.01))
        time.sleep(0.3)
        rec.terminate()
        heard = np.frombuffer(rec.communicate(timeout=10)[0], np.float32)
        mic.close()
        assert np.abs(heard).max() > 0.1
        sinks = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True, text=True)
        assert "gnr_test_mic" not in sinks.stdout
    finally:
        subprocess.run(["pulseaudio", "--kill"], timeout=20)
