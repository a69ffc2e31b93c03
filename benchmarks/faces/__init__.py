"""Benchmark of the face stage: tracking cost, align+paste cost, steadiness, accuracy, lag.

    python -m benchmarks.faces                       # synthesized clips only
    python -m benchmarks.faces --video a.mp4 b.mp4   # plus real clips
    python -m benchmarks.faces --out results/faces.json

Every clip is synthesized in code from the astronaut photo (:func:`realtime.synthetic.astronaut`,
a real, public-domain face) moved by known similarity transforms, with Gaussian sensor noise;
nothing is downloaded. The measurement functions here are also what
``tests/realtime/test_faces*.py`` assert on, so the numbers in the report and the thresholds in
the tests come from the same code. Timing is reported here and never asserted in tests.

* :mod:`.clips` — the photo's ground truth, clips with known motion, video files;
* :mod:`.metrics` — steadiness, accuracy, lag, identity paste;
* :mod:`.timing` — the cost of tracking and of align + paste;
* ``__main__`` — the run, its tables and the command line.

Metrics (all in pixels of the 256 crop unless stated):

* still steadiness: std over frames of the *true* eye centres (known from the transform) mapped
  into the crop by the tracker's smoothed transform — the crop's own jitter, no detector noise.
* accuracy: RMS distance between the true eye centres in the recovered crop and in the crop
  made from the known transform.
* re-detected steadiness (the real-footage metric): MediaPipe face mesh run again on each
  output crop; std over time and mean |second difference| of its four eye-corner coordinates,
  for the smoothed transform and for raw per-frame alignment without smoothing.
* lag: during constant motion, the time shift (frames, least squares, sub-frame) that best maps
  the raw keypoint trajectory onto the smoothed one.
* identity paste: crop → paste unchanged; PSNR over the pasted region, and the count of pixels
  outside the mask that changed (must be 0).

The names below are the toolkit the tests use (``apply_affine`` is
:func:`realtime.faces.align.apply_affine`, the geometry every metric is written in).
"""
from __future__ import annotations

from realtime.faces.align import apply_affine

from .clips import (PhotoReference, photo_reference, photo_to_frame, random_similarities,
                    read_video, render, sweep_similarities, synth_clip, synthesized_clips,
                    synthesized_transforms, write_video)
from .metrics import (accuracy, analytic_outside_mask, identity_paste, lag, psnr,
                      redetect_steadiness, still_steadiness, time_shift, track_clip,
                      true_steadiness)
from .timing import time_align_paste, time_tracking

__all__ = ["apply_affine", "PhotoReference", "photo_reference", "photo_to_frame",
           "random_similarities", "read_video", "render", "sweep_similarities", "synth_clip",
           "synthesized_clips", "synthesized_transforms", "write_video", "accuracy",
           "analytic_outside_mask", "identity_paste", "lag", "psnr", "redetect_steadiness",
           "still_steadiness", "time_shift", "track_clip", "true_steadiness", "time_align_paste",
           "time_tracking"]
