"""Benchmark of the face stage: tracking cost, align+paste cost, steadiness, accuracy, lag.

``python -m benchmarks.faces`` runs every measurement of :mod:`benchmarks.faces` on synthesized
clips (and real ones given with ``--video``), prints the tables and writes the JSON."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from realtime.faces.smooth import OneEuroConfig
from realtime.faces.track import TrackerConfig

from benchmarks.common import write_json
from benchmarks.faces.clips import (photo_reference, random_similarities, read_video,
                                    sweep_similarities, synthesized_clips, synthesized_transforms)
from benchmarks.faces.metrics import (accuracy, identity_paste, lag, redetect_steadiness,
                                      still_steadiness, true_steadiness)
from benchmarks.faces.timing import time_align_paste, time_tracking


def run(videos: Sequence[str] = (), max_video_frames: int = 300, quick: bool = False) -> dict:
    import torch

    ref = photo_reference()
    n = 30 if quick else 60
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    out: dict = {
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "loadavg_at_start": load},
        "defaults": {"tracker": {k: v for k, v in TrackerConfig().__dict__.items() if k != "smoothing"}, "one_euro": OneEuroConfig().__dict__},
    }
    out["timing"] = {
        "track_1face_15pct_1280x720": time_tracking(ref, 0.15, 1, frames=2 * n),
        "track_1face_5pct_1280x720": time_tracking(ref, 0.05, 1, frames=2 * n),
        "track_4faces_12pct_1280x720": time_tracking(ref, 0.12, 4, frames=n),
        "align_paste_4faces_12pct_1280x720": time_align_paste(ref, 4, 0.12, frames=2 * n),
        "align_paste_4faces_20pct_1280x720": time_align_paste(ref, 4, 0.2, frames=2 * n),
    }
    out["still"] = {f"scale_{s}": still_steadiness(ref, scale=s, n=40) for s in (0.5, 1.0, 2.0)}
    out["still"]["1280x720_face_5pct"] = still_steadiness(ref, (720, 1280), 0.05 * 1280 / ref.face_px, n=40)
    out["accuracy"] = {
        "independent_frames": accuracy(ref, random_similarities(ref, 30, (480, 640)), (480, 640), True),
        "continuous_sweep": accuracy(ref, sweep_similarities(ref, 40, (480, 640)), (480, 640), False),
    }
    out["lag"] = {f"{v}_crop_px_per_frame": lag(ref, v) for v in (0.5, 1.0, 2.0, 4.0, 8.0)}
    out["lag"]["2_crop_px_per_frame_plus_1deg"] = lag(ref, 2.0, rotate_deg_per_frame=1.0)
    out["steadiness_true"] = {
        name: true_steadiness(ref, size, ms, seed=21 + k) for k, (name, (size, ms)) in enumerate(synthesized_transforms(ref, n).items())
    }
    clips = synthesized_clips(ref, n)
    for path in videos:
        frames, times = read_video(path, max_video_frames)
        clips[os.path.basename(path)] = (frames, times)
    out["steadiness_redetected"] = {name: redetect_steadiness(f, t) for name, (f, t) in clips.items()}
    out["identity_paste"] = {name: identity_paste(f, t) for name, (f, t) in clips.items()}
    return out


def print_report(res: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title="Face stage timing (CPU, ms per frame)")
    for c in ("case", "p50", "p95", "notes"):
        t.add_column(c)
    for k, v in res["timing"].items():
        note = f"faces found {v.get('mean_faces_found', v.get('faces'))}"
        if "align" in v:
            note += f"; align p50 {v['align']['p50_ms']:.2f}, paste p50 {v['paste']['p50_ms']:.2f}"
        t.add_row(k, f"{v['p50_ms']:.2f}", f"{v['p95_ms']:.2f}", note)
    con.print(t)
    t = Table(title="Still face, σ=3 sensor noise: eye-centre std in the crop (px, max over axes)")
    for c in ("case", "face px", "smoothed", "raw (no smoothing)"):
        t.add_column(c)
    for k, v in res["still"].items():
        t.add_row(k, f"{v['face_px']:.0f}", f"{v['std_px_smoothed']:.3f}", f"{v['std_px_raw']:.3f}")
    con.print(t)
    t = Table(title="Accuracy vs known similarity transforms (eye-centre RMS, crop px)")
    for c in ("case", "RMS", "max", "found"):
        t.add_column(c)
    for k, v in res["accuracy"].items():
        key = "smoothed" if "rms_px_smoothed" in v else "raw"
        t.add_row(f"{k} ({key})", f"{v['rms_px']:.2f}", f"{v[f'max_px_{key}']:.2f}", f"{v['found']}/{v['frames']}")
    con.print(t)
    t = Table(title="Lag of the smoothed transform during constant motion")
    for c in ("case", "crop px/s", "lag (frames, LS shift)", "lag along track", "lag (crop px)"):
        t.add_column(c)
    for k, v in res["lag"].items():
        t.add_row(k, f"{v.get('speed_crop_px_per_s', float('nan')):.0f}", f"{v['lag_frames']:.2f}", f"{v.get('lag_frames_along_track', float('nan')):.2f}", f"{v.get('lag_px_crop', float('nan')):.2f}")
    con.print(t)
    t = Table(title="Synthetic clips, true eye centres in the crop (px): smoothed vs raw per-frame alignment")
    for c in ("clip", "std smoothed", "std raw", "|d2| smoothed", "|d2| raw"):
        t.add_column(c)
    for k, v in res["steadiness_true"].items():
        s, r = v["smoothed"], v["raw"]
        t.add_row(k, f"{s['std_px']:.3f}", f"{r['std_px']:.3f}", f"{s['mean_abs_d2_px']:.3f}", f"{r['mean_abs_d2_px']:.3f}")
    con.print(t)
    t = Table(title="Eye corners re-detected in the crops (px): smoothed vs raw per-frame alignment")
    for c in ("clip", "frames", "std smoothed", "std raw", "|d2| smoothed", "|d2| raw", "beats raw"):
        t.add_column(c)
    for k, v in res["steadiness_redetected"].items():
        s, r = v["smoothed"], v["raw"]
        t.add_row(k, f"{v['measured']}/{v['frames']}", f"{s['std_px']:.3f}", f"{r['std_px']:.3f}", f"{s['mean_abs_d2_px']:.3f}", f"{r['mean_abs_d2_px']:.3f}", str(v["smoothed_beats_raw"]))
    con.print(t)
    t = Table(title="Identity paste (crop → paste unchanged)")
    for c in ("clip", "faces", "PSNR min (dB)", "PSNR mean (dB)", "changed px outside mask"):
        t.add_column(c)
    for k, v in res["identity_paste"].items():
        t.add_row(k, str(v["faces"]), f"{v['psnr_db_min']:.1f}", f"{v['psnr_db_mean']:.1f}", str(v["changed_px_outside_mask"]))
    con.print(t)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.faces", description=__doc__.split("\n\n")[0])
    p.add_argument("--video", nargs="*", default=[], metavar="FILE", help="real clips to measure steadiness / paste on")
    p.add_argument("--max-video-frames", type=int, default=300, help="frames read from each video (default 300)")
    p.add_argument("--out", default="results/faces.json", help="JSON output path (default results/faces.json)")
    p.add_argument("--quick", action="store_true", help="shorter clips")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the face stage's tensor ops are small, and beside MediaPipe's threads more is slower)")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be at least 1")
    for v in args.video:
        if not os.path.isfile(v):
            p.error(f"--video: no such file: {v}")
    if args.max_video_frames < 3:
        p.error("--max-video-frames must be at least 3")
    import torch

    torch.set_num_threads(args.threads)
    res = run(args.video, args.max_video_frames, args.quick)
    print_report(res)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_json(args.out, res)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
