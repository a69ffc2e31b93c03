"""The audio delay line: exact delays, and changes without a click, a gap or a pitch change."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.audio import SAMPLE_RATE, DelayLine, LatencyTracker

RATE = SAMPLE_RATE


def _tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _run(line: DelayLine, x: np.ndarray, block: int = 480, changes=None) -> np.ndarray:
    """Push and pull in blocks as a real-time loop would; ``changes``: {block index: ms}."""
    out = []
    for k, i in enumerate(range(0, len(x), block)):
        if changes and k in changes:
            line.set_delay_ms(changes[k])
        line.push(x[i:i + block])
        out.append(line.pull(len(x[i:i + block]))[:, 0])
    return np.concatenate(out)


def test_a_click_comes_out_exactly_the_delay_later():
    x = np.zeros(RATE, np.float32)
    x[1000] = 1.0
    line = DelayLine(delay_ms=80)
    y = _run(line, x)
    assert int(np.argmax(np.abs(y))) == 1000 + int(0.080 * RATE)


def test_changing_the_delay_is_continuous_and_keeps_the_pitch():
    x = _tone(2.0)
    line = DelayLine(delay_ms=40, fade_ms=40)
    y = _run(line, x, changes={50: 120.0, 120: 60.0})       # at 0.5 s and 1.2 s
    assert line.changes == 2 and line.delay_ms == pytest.approx(60.0, abs=0.05)
    steady = y[int(0.2 * RATE):]
    # no click: the largest step between samples stays of the order of the tone's own (an
    # equal-power fade of two phases of one tone peaks at sqrt(2) times it); a click or a jump
    # of the read position would step by up to the amplitude itself, 20x more
    tone_step = np.abs(np.diff(x)).max()
    assert np.abs(np.diff(steady)).max() <= 1.5 * tone_step
    # no gap: the envelope never collapses (an equal-power fade of two shifted copies of a tone
    # may dip, but never to silence)
    frames = steady[: len(steady) // 480 * 480].reshape(-1, 480)
    assert np.sqrt((frames ** 2).mean(axis=1)).min() > 0.1      # the tone's RMS is 0.35
    # no pitch change: zero crossings per second stay at 2 x 440 in every 100 ms window
    win = steady[: len(steady) // 4800 * 4800].reshape(-1, 4800)
    crossings = (np.diff(np.signbit(win), axis=1) != 0).sum(axis=1) * 10
    assert np.all(np.abs(crossings - 880) <= 20)


def test_small_wobbles_of_the_target_are_ignored():
    line = DelayLine(delay_ms=50, hysteresis_ms=8)
    _run(line, _tone(0.5), changes={10: 53.0, 20: 46.0, 30: 55.0})
    assert line.changes == 0 and line.delay_ms == pytest.approx(50.0, abs=0.05)


def test_silence_until_the_delay_has_filled_and_stereo_mixes_down():
    line = DelayLine(channels=1, delay_ms=10)
    stereo = np.ones((960, 2), np.float32) * np.array([0.2, 0.4], np.float32)
    line.push(stereo)
    y = line.pull(960)[:, 0]
    n = int(0.010 * RATE)
    assert np.all(y[:n] == 0) and np.allclose(y[n:], 0.3)


def test_latency_tracker_uses_the_recent_median_or_the_fixed_value():
    tr = LatencyTracker(window_s=3.0)
    for i in range(60):
        tr.add(0.050, now=i * 0.05)
    assert tr.delay_ms() == pytest.approx(50.0)
    for i in range(60, 140):                      # the model got slower: 90 ms
        tr.add(0.090, now=i * 0.05)
    assert tr.delay_ms() == pytest.approx(90.0)
    assert LatencyTracker(fixed_ms=120).delay_ms() == 120.0
    with pytest.raises(ValueError, match="audio-delay"):
        LatencyTracker(fixed_ms=-5)


def test_a_small_lasting_offset_is_corrected_after_it_settles():
    """Below the hysteresis the delay stays put for ``settle_s``, then moves: no lasting bias."""
    line = DelayLine(delay_ms=100, hysteresis_ms=20, fine_ms=5, settle_s=1.0)
    x = _tone(3.0)
    _run(line, x[:int(0.9 * RATE)], changes={0: 112.0})
    assert line.changes == 0 and line.delay_ms == pytest.approx(100.0)
    _run(line, x[int(0.9 * RATE):int(1.2 * RATE)], changes={0: 112.0})
    assert line.changes == 1 and line.delay_ms == pytest.approx(112.0)


def test_a_push_longer_than_the_buffer_keeps_positions():
    line = DelayLine(delay_ms=0, max_delay_s=0.1)            # holds 1.1 s
    x = np.zeros(2 * RATE, np.float32)
    x[-100] = 1.0
    line.push(x)
    line.read_pos = line.written - 200
    y = line.pull(200)[:, 0]
    assert line.written == 2 * RATE and int(np.argmax(y)) == 100
