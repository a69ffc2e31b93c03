"""Make the demo video that ships with the package (realtime/assets/demo.mp4).

The public-domain astronaut photo from scikit-image, moved by a smooth known similarity motion
(turning ±8°, zooming 0.9–1.1, drifting), 480×360 at 25 fps for 4 s, with a soft two-tone audio
track so that audio pass-through is visible in the output. Run from the repository root:

    python -m realtime.assets.make_demo_video
"""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("demo.mp4")
W, H, FPS, SECONDS = 480, 360, 25, 4


def frame_at(photo: np.ndarray, t: float) -> np.ndarray:
    import cv2
    angle = 8 * math.sin(2 * math.pi * t / 4)
    scale = 1.0 * (1 + 0.1 * math.sin(2 * math.pi * t / 3))
    cx = W / 2 + 40 * math.sin(2 * math.pi * t / 5)
    cy = H / 2 + 12 * math.sin(2 * math.pi * t / 2.5)
    m = cv2.getRotationMatrix2D((255.0, 165.0), angle, scale)   # about the face centre
    m[:, 2] += (cx - 255.0, cy - 165.0)
    return cv2.warpAffine(photo, m, (W, H), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(60, 80, 100))


def main() -> Path:
    import av
    from skimage import data
    photo = data.astronaut()
    tmp = OUT.with_suffix(".part.mp4")
    out = av.open(str(tmp), "w")
    vs = out.add_stream("libx264", rate=FPS)
    vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
    vs.options = {"crf": "26", "preset": "slow"}
    aus = out.add_stream("aac", rate=48000)
    aus.layout = "mono"
    for i in range(FPS * SECONDS):
        vf = av.VideoFrame.from_ndarray(frame_at(photo, i / FPS), format="rgb24")
        vf.pts = i
        vf.time_base = Fraction(1, FPS)
        for p in vs.encode(vf):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)
    n = 48000 * SECONDS
    t = np.arange(n) / 48000
    tone = 0.1 * np.sin(2 * np.pi * np.where(t % 1 < 0.5, 440, 660) * t) * np.minimum(1, (t % 0.5) * 20)
    for i in range(0, n, 1024):
        af = av.AudioFrame.from_ndarray(tone[None, i:i + 1024].astype(np.float32), format="flt",
                                        layout="mono")
        af.sample_rate, af.pts, af.time_base = 48000, i, Fraction(1, 48000)
        for p in aus.encode(af):
            out.mux(p)
    for p in aus.encode(None):
        out.mux(p)
    out.close()
    tmp.replace(OUT)
    return OUT


if __name__ == "__main__":
    print(main())
