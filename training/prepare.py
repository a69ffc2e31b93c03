"""Align raw face photos for training with the live pipeline's own aligner and template.

    python -m training.prepare RAW_DIR OUT_DIR [--size 256] [--min-face 96] [--all-faces]

Each image is searched with the same detector and face mesh the live tracker runs
(``realtime.faces``: MediaPipe full-range detector, face mesh on a square region around each
face), the five template keypoints are fitted with the same weighted similarity, and the crop is
cut by the same ``Aligner`` with the same ``CropTemplate`` — so a training crop frames a face
exactly as the live pipeline will. Images are written as PNG under OUT_DIR (sub-folders kept).

Nothing stops the run: files that fail to decode, images without a face, faces smaller than
``--min-face`` pixels (eye-to-mouth box side, in the source image) and faces the mesh cannot fit
are listed in OUT_DIR/prepare_report.json and summarised on the terminal.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .images import IMAGE_EXTENSIONS, ImageReadError, read_image_rgb
from .pixels import to_pixels


@dataclass
class PrepareReport:
    written: list[str] = field(default_factory=list)
    unreadable: list[dict] = field(default_factory=list)      # {"file", "reason"}
    no_face: list[str] = field(default_factory=list)
    too_small: list[dict] = field(default_factory=list)       # {"file", "face_px"}
    mesh_failed: list[str] = field(default_factory=list)
    not_images: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {k: len(v) for k, v in self.__dict__.items()}

    def to_json(self) -> dict:
        return {"summary": self.summary(), **self.__dict__}


class FacePreparer:
    """Detector + region face mesh + template fit + aligned crop, for still images."""

    def __init__(self, size: int = 256, min_face: float = 96.0, all_faces: bool = False,
                 widen: float = 1.0, min_confidence: float = 0.5, region_scale: float = 2.0):
        from realtime.faces import Aligner, CropTemplate
        from realtime.faces.detect import FaceDetector, RegionLandmarker
        self.size = int(size)
        self.template = CropTemplate.default(self.size, widen=widen)
        self.aligner = Aligner(self.template)
        self.detector = FaceDetector(min_confidence)
        self.mesh = RegionLandmarker(static=True)
        self.min_face = float(min_face)
        self.all_faces = all_faces
        self.region_scale = float(region_scale)

    def close(self) -> None:
        self.detector.close()
        self.mesh.close()

    def faces(self, rgb: np.ndarray) -> tuple[list[np.ndarray], str | None, float]:
        """Aligned crops (size x size x 3 uint8) of the faces in ``rgb``; else why none, and
        the largest face size seen (px)."""
        from realtime.faces.align import crop_to_frame_from_landmarks
        from realtime.faces.detect import SquareRegion
        dets = self.detector.detect(rgb)
        if not dets:
            return [], "no_face", 0.0
        crops, largest, reason = [], 0.0, None
        for det in dets if self.all_faces else dets[:1]:
            cx, cy = det.center
            region = SquareRegion(cx, cy, max(8.0, self.region_scale * max(det.width, det.height)))
            lm = self.mesh.landmarks(rgb, region)
            if lm is None or not np.all(np.isfinite(lm)):
                reason = reason or "mesh_failed"
                continue
            side = float(max(np.ptp(lm[:, 0]), np.ptp(lm[:, 1])))
            largest = max(largest, side)
            if side < self.min_face:
                reason = "too_small"
                continue
            m = crop_to_frame_from_landmarks(lm, self.template)
            batch = self.aligner.crop_matrices(rgb, m[None], [0])
            crop = to_pixels(batch.crops[0]).permute(1, 2, 0).numpy()
            crops.append(crop)
        return crops, (None if crops else reason), largest


def prepare(raw: Path, out: Path, size: int = 256, min_face: float = 96.0, all_faces: bool = False,
            widen: float = 1.0, progress: bool = True) -> PrepareReport:
    from PIL import Image
    raw, out = Path(raw), Path(out)
    if not raw.is_dir():
        raise FileNotFoundError(f"RAW_DIR {raw} does not exist or is not a folder")
    files = sorted(p for p in raw.rglob("*") if p.is_file() and not p.name.startswith("."))
    out.mkdir(parents=True, exist_ok=True)
    rep = PrepareReport()
    prep = FacePreparer(size, min_face, all_faces, widen)
    t0 = time.perf_counter()
    try:
        for k, path in enumerate(files):
            rel = path.relative_to(raw)
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                rep.not_images.append(str(rel))
                continue
            try:
                rgb = read_image_rgb(path)
            except ImageReadError as e:
                rep.unreadable.append({"file": str(rel), "reason": str(e)})
                continue
            crops, why, largest = prep.faces(rgb)
            if why == "no_face":
                rep.no_face.append(str(rel))
            elif why == "too_small":
                rep.too_small.append({"file": str(rel), "face_px": round(largest, 1)})
            elif why == "mesh_failed":
                rep.mesh_failed.append(str(rel))
            for j, crop in enumerate(crops):
                name = rel.with_suffix("") if j == 0 else rel.with_name(f"{rel.stem}_face{j}")
                dst = out / name.with_suffix(".png")
                dst.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(crop).save(dst)
                rep.written.append(str(dst.relative_to(out)))
            if progress and (k + 1) % 50 == 0:
                print(f"  {k + 1}/{len(files)} files, {len(rep.written)} faces written "
                      f"({(k + 1) / (time.perf_counter() - t0):.1f} files/s)", file=sys.stderr)
    finally:
        prep.close()
    (out / "prepare_report.json").write_text(json.dumps(rep.to_json(), indent=2) + "\n")
    return rep


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.prepare", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw", type=Path, metavar="RAW_DIR")
    p.add_argument("out", type=Path, metavar="OUT_DIR")
    p.add_argument("--size", type=int, default=256, help="crop size: the model's size (256)")
    p.add_argument("--min-face", type=float, default=None,
                   help="skip faces smaller than this many source pixels (default: size * 3/8)")
    p.add_argument("--all-faces", action="store_true", help="write every face of a photo, not only the best")
    p.add_argument("--widen", type=float, default=1.0, help="the live pipeline's --crop-widen, if you use one")
    a = p.parse_args(argv)
    if a.size < 8:
        p.error("--size must be >= 8")
    min_face = a.size * 3 / 8 if a.min_face is None else a.min_face
    try:
        rep = prepare(a.raw, a.out, a.size, min_face, a.all_faces, a.widen)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    s = rep.summary()
    print(f"{s['written']} aligned faces written to {a.out}; skipped: {s['no_face']} without a face, "
          f"{s['too_small']} too small (< {min_face:g} px), {s['mesh_failed']} the mesh could not fit, "
          f"{s['unreadable']} unreadable, {s['not_images']} not images. Details: {a.out / 'prepare_report.json'}")
    for item in rep.unreadable[:5]:
        print(f"  unreadable: {item['file']}: {item['reason']}", file=sys.stderr)
    return 0 if s["written"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
