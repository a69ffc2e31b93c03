"""Face tracking: stable ids, landmarks every frame, smoothed crop transforms.

Per frame (:meth:`FaceTracker.update`):

1. Every live track runs its own face-mesh graph on a square region around the face (see
   :class:`~realtime.faces.detect.RegionLandmarker`). The region only moves when the face has
   drifted from its centre, changed size or rolled noticeably (hysteresis), so for a still head
   the mesh sees identical pixels frame after frame — the first defence against shaking.
2. The full-range detector runs on the whole frame only when needed: when there is no track,
   when a track missed its face this frame, or every ``detect_interval`` frames to pick up new
   faces. Detections are matched to tracks by position; a track that missed gets its region
   re-seeded from its detection; unmatched detections start new tracks (up to ``max_faces``,
   faces narrower than ``min_face_px`` are skipped and counted).
3. Each track fits the raw crop similarity to its landmarks (eyes weighted most) and smooths it
   with the One-Euro filter. A face that is missed keeps its last smoothed transform for up to
   ``max_missed_frames`` frames, then the track ends; if it comes back later it gets a new id.
4. Two tracks that land on the same face (e.g. while faces cross) are told apart by motion: the
   track whose face jumped is marked missed for this frame instead of stealing the other's id.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..types import FaceTrack, Frame, ImageLike, as_rgb_uint8, is_tensor
from .align import AlignmentError, CropTemplate, crop_to_frame_from_landmarks
from .detect import Detection, FaceDetector, RegionLandmarker, SquareRegion
from .smooth import OneEuroConfig, SimilaritySmoother

__all__ = ["TrackerConfig", "TrackerStats", "FaceTracker"]


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings. Sizes are in frame pixels, intervals in frames."""

    max_faces: int = 1
    detect_interval: int = 10
    max_missed_frames: int = 5
    min_face_px: float = 40.0
    detection_confidence: float = 0.5
    mesh_confidence: float = 0.5
    region_scale: float = 2.0  # square region side / face size fed to the mesh
    region_size: int = 256  # pixels of that region (the mesh works at 192 internally)
    region_recenter: float = 0.08  # move the region when the face centre drifts by this × side
    region_rescale: float = 0.15  # ... or its size changes by this fraction (log ratio)
    region_rotate_deg: float = 10.0  # ... or its roll changes by this many degrees
    mesh_tracking: bool = False  # True: MediaPipe video mode (mesh tracks from its own last landmarks)
    default_fps: float = 30.0  # only used when update() gets no timestamp at all
    smoothing: OneEuroConfig = field(default_factory=OneEuroConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.max_faces <= 16:
            raise ValueError(f"max_faces must be within 1..16, got {self.max_faces}")
        if self.detect_interval < 1:
            raise ValueError(f"detect_interval must be >= 1 frame, got {self.detect_interval}")
        if self.max_missed_frames < 0:
            raise ValueError(f"max_missed_frames must be >= 0, got {self.max_missed_frames}")
        if self.min_face_px < 0:
            raise ValueError(f"min_face_px must be >= 0, got {self.min_face_px}")
        if self.region_scale < 1.2:
            raise ValueError(f"region_scale must be >= 1.2 (the mesh needs context), got {self.region_scale}")


@dataclass
class TrackerStats:
    """Counters since the tracker was created (or reset)."""

    frames: int = 0
    frames_without_face: int = 0
    detector_runs: int = 0
    faces_skipped_small: int = 0  # detections narrower than min_face_px (counted per detector run)
    faces_over_limit: int = 0  # detections ignored because max_faces tracks were live
    mesh_failures: int = 0  # detections where the mesh found no face (e.g. strong profiles)
    missed_frames: int = 0  # track-frames where a live track did not find its face
    tracks_started: int = 0
    tracks_ended: int = 0
    duplicates_resolved: int = 0
    filter_resets: int = 0  # jumps that reset the smoothing

    def as_dict(self) -> dict:
        return asdict(self)


def _box(lm: np.ndarray) -> tuple[float, float, float, float]:
    lo = lm.min(0)
    hi = lm.max(0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class _Track:
    def __init__(self, track_id: int, landmarker: RegionLandmarker, smoother: SimilaritySmoother, score: float):
        self.id = track_id
        self.landmarker = landmarker
        self.smoother = smoother
        self.score = score
        self.region: SquareRegion | None = None
        self.landmarks: np.ndarray | None = None
        self.raw: np.ndarray | None = None
        self.smoothed: np.ndarray | None = None
        self.missed = 0
        self.age = 0
        self.seen_now = False

    @property
    def box(self):
        return _box(self.landmarks)

    @property
    def size(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, y1 - y0)

    @property
    def center(self) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        return np.array([(x0 + x1) / 2, (y0 + y1) / 2])


class FaceTracker:
    """Tracks up to ``config.max_faces`` faces; ``update(frame, timestamp_s)`` → ``list[FaceTrack]``.

    ``frame``: a :class:`~realtime.types.Frame`, or an image (uint8 H×W×3 RGB numpy / torch
    tensor; grayscale and RGBA are converted). Device tensors are copied to the host for
    MediaPipe. ``timestamp_s`` defaults to the Frame's timestamp, else ``index / default_fps``.

    MediaPipe graphs are built once (lazily, at the first frame) and reused; call :meth:`close`
    (or use the tracker as a context manager) to release them.
    """

    def __init__(self, config: TrackerConfig | None = None, template: CropTemplate | None = None):
        self.config = config or TrackerConfig()
        self.template = template or CropTemplate.default()
        self.stats = TrackerStats()
        self._detector: FaceDetector | None = None
        self._pool: list[RegionLandmarker] = []
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._frame_index = 0
        self._last_detect = -(10**9)
        self._rejected: list[tuple[tuple[float, float, float, float], int]] = []  # (box, frame index)
        # import check (and a clear error) at construction, graphs built lazily
        from .detect import _import_solutions

        _import_solutions()

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        for tr in self._tracks:
            self._pool.append(tr.landmarker)
        self._tracks = []
        for lm in self._pool:
            lm.close()
        self._pool = []
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reset(self) -> None:
        """Drop all tracks (ids keep increasing) and the counters; graphs are kept."""
        for tr in self._tracks:
            self._release(tr)
        self._tracks = []
        self.stats = TrackerStats()
        self._last_detect = -(10**9)
        self._rejected = []

    @property
    def num_tracks(self) -> int:
        return len(self._tracks)

    # ------------------------------------------------------------------ helpers
    def _landmarker(self) -> RegionLandmarker:
        if self._pool:
            lm = self._pool.pop()
            lm.reset()
            return lm
        return RegionLandmarker(
            self.config.region_size,
            min_detection_confidence=self.config.mesh_confidence,
            min_tracking_confidence=self.config.mesh_confidence,
            static=not self.config.mesh_tracking,
        )

    def _release(self, tr: _Track) -> None:
        self._pool.append(tr.landmarker)

    def _detect(self, image: np.ndarray) -> list[Detection]:
        if self._detector is None:
            self._detector = FaceDetector(self.config.detection_confidence)
        self.stats.detector_runs += 1
        return self._detector.detect(image)

    def _region_for_box(self, cx: float, cy: float, size: float, angle: float = 0.0) -> SquareRegion:
        return SquareRegion(cx, cy, max(8.0, self.config.region_scale * size), angle)

    def _valid(self, lm: np.ndarray | None, region: SquareRegion) -> bool:
        if lm is None or not np.all(np.isfinite(lm)):
            return False
        x0, y0, x1, y1 = _box(lm)
        size = max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        half = region.side / 2
        inside = abs(cx - region.cx) < half and abs(cy - region.cy) < half
        return inside and 0.1 * region.side < size < 1.2 * region.side

    @staticmethod
    def _matches(lm: np.ndarray, det: Detection) -> bool:
        x0, y0, x1, y1 = _box(lm)
        cx, cy = det.center
        size = max(det.width, det.height)
        ratio = max(x1 - x0, y1 - y0) / max(size, 1e-6)
        return math.hypot((x0 + x1) / 2 - cx, (y0 + y1) / 2 - cy) < 0.5 * size and 0.4 < ratio < 2.5

    def _accept(self, tr: _Track, lm: np.ndarray, t: float) -> bool:
        try:
            raw = crop_to_frame_from_landmarks(lm, self.template)
        except AlignmentError:
            return False
        tr.landmarks = lm
        tr.raw = raw
        resets = tr.smoother.resets
        tr.smoothed = tr.smoother(raw, t)
        self.stats.filter_resets += tr.smoother.resets - resets
        tr.missed = 0
        tr.seen_now = True
        # region hysteresis: the region (what the mesh sees) only moves when the face has moved
        c = tr.center
        # (MediaPipe's video mode keeps state in region coordinates: keep that region upright)
        angle = 0.0 if self.config.mesh_tracking else math.atan2(raw[1, 0], raw[0, 0])
        want = self._region_for_box(c[0], c[1], tr.size, angle)
        r = tr.region
        d_angle = abs((angle - r.angle + math.pi) % (2 * math.pi) - math.pi) if r is not None else 0.0
        if (
            r is None
            or math.hypot(c[0] - r.cx, c[1] - r.cy) > self.config.region_recenter * r.side
            or abs(math.log(want.side / r.side)) > self.config.region_rescale
            or d_angle > math.radians(self.config.region_rotate_deg)
        ):
            tr.region = want
        return True

    def _new_track(self, image: np.ndarray, det: Detection, t: float, index: int) -> _Track | None:
        # a detection the mesh already refused recently (e.g. a profile, a face-like pattern)
        # is not retried every frame
        self._rejected = [(b, i) for b, i in self._rejected if index - i < self.config.detect_interval]
        if any(_iou(det.box_frame, b) > 0.5 for b, _ in self._rejected):
            return None
        landmarker = self._landmarker()
        cx, cy = det.center
        region = self._region_for_box(cx, cy, max(det.width, det.height))
        lm = landmarker.landmarks(image, region)
        if not self._valid(lm, region) or not self._matches(lm, det):
            # no face, or the mesh locked onto a different face in the region than the detection
            self.stats.mesh_failures += 1
            self._rejected.append((det.box_frame, index))
            self._pool.append(landmarker)
            return None
        x0, y0, x1, y1 = _box(lm)
        if max(x1 - x0, y1 - y0) < 0.7 * self.config.min_face_px:
            self.stats.faces_skipped_small += 1
            self._pool.append(landmarker)
            return None
        # speed, jitter and jumps are measured at the eye centres: what the crop must hold still
        smoother = SimilaritySmoother(self.config.smoothing, self.template.points_array()[:2], self.template.eye_distance_crop)
        tr = _Track(self._next_id, landmarker, smoother, det.score)
        tr.region = region
        if not self._accept(tr, lm, t):
            self.stats.mesh_failures += 1
            self._pool.append(landmarker)
            return None
        self._next_id += 1
        self.stats.tracks_started += 1
        return tr

    # ------------------------------------------------------------------ the frame step
    def update(self, frame: Frame | ImageLike, timestamp_s: float | None = None) -> list[FaceTrack]:
        cfg = self.config
        if isinstance(frame, Frame):
            image = frame.image
            if timestamp_s is None:
                timestamp_s = frame.timestamp_s
        else:
            image = as_rgb_uint8(frame)
        if is_tensor(image):
            image = image.detach().cpu().numpy()
        index = self._frame_index
        self._frame_index += 1
        t = float(timestamp_s) if timestamp_s is not None else index / cfg.default_fps
        self.stats.frames += 1

        # 1. every live track follows its face in its own region
        candidates: dict[int, np.ndarray] = {}
        for tr in sorted(self._tracks, key=lambda tr: tr.id):
            tr.seen_now = False
            tr.age += 1
            lm = tr.landmarker.landmarks(image, tr.region)
            if self._valid(lm, tr.region):
                candidates[tr.id] = lm
        self._resolve_duplicates(candidates)
        for tr in self._tracks:
            if tr.id in candidates:
                self._accept(tr, candidates[tr.id], t)

        # 2. detector when needed
        need = (
            not self._tracks
            or any(not tr.seen_now for tr in self._tracks)
            or index - self._last_detect >= cfg.detect_interval
        )
        if need:
            self._last_detect = index
            dets = self._detect(image)
            unmatched = self._associate(image, dets, t)
            for det in unmatched:
                if det.width < cfg.min_face_px:
                    self.stats.faces_skipped_small += 1
                    continue
                if len(self._tracks) >= cfg.max_faces:
                    self.stats.faces_over_limit += 1
                    continue
                tr = self._new_track(image, det, t, index)
                if tr is not None:
                    self._tracks.append(tr)

        # 3. count misses, end lost / shrunk tracks
        keep = []
        for tr in self._tracks:
            if not tr.seen_now:
                tr.missed += 1
                self.stats.missed_frames += 1
            lost = tr.missed > cfg.max_missed_frames
            tiny = tr.size < 0.7 * cfg.min_face_px
            if lost or tiny:
                if tiny and not lost:
                    self.stats.faces_skipped_small += 1
                self.stats.tracks_ended += 1
                self._release(tr)
            else:
                keep.append(tr)
        self._tracks = keep
        if not any(tr.seen_now for tr in self._tracks):
            self.stats.frames_without_face += 1

        return [
            FaceTrack(
                track_id=tr.id,
                landmarks_frame=tr.landmarks,
                crop_to_frame=tr.smoothed,
                crop_to_frame_raw=tr.raw,
                crop_size=self.template.size,
                score=tr.score,
                frames_since_seen=tr.missed,
                age_frames=tr.age,
                frame_index=index,
                timestamp_s=t,
            )
            for tr in sorted(self._tracks, key=lambda tr: tr.id)
        ]

    def _associate(self, image: np.ndarray, dets: list[Detection], t: float) -> list[Detection]:
        """Match detections to tracks; re-seed tracks that missed. Returns unmatched detections."""
        unmatched = []
        taken: set[int] = set()
        for det in dets:
            cx, cy = det.center
            size = max(det.width, det.height)
            best, best_d = None, float("inf")
            for tr in self._tracks:
                if tr.id in taken:
                    continue
                c = tr.center
                d = math.hypot(c[0] - cx, c[1] - cy)
                ratio = size / max(tr.size, 1e-6)
                if d < 0.5 * max(size, tr.size) and 0.4 < ratio < 2.5 and d < best_d:
                    best, best_d = tr, d
            if best is None:
                # also swallow a detection that overlaps a live track (same face, odd box)
                if any(_iou(det.box_frame, tr.box) > 0.3 for tr in self._tracks):
                    continue
                unmatched.append(det)
                continue
            taken.add(best.id)
            best.score = det.score
            if not best.seen_now:
                region = self._region_for_box(cx, cy, size)
                best.landmarker.reset()
                lm = best.landmarker.landmarks(image, region)
                others = [tr.box for tr in self._tracks if tr is not best and tr.seen_now]
                if self._valid(lm, region) and all(_iou(_box(lm), b) < 0.5 for b in others):
                    best.region = region
                    self._accept(best, lm, t)
        return unmatched

    def _resolve_duplicates(self, candidates: dict[int, np.ndarray]) -> None:
        """Two tracks whose new landmarks land on one face (e.g. faces crossing): the track whose
        landmarks jumped further from where its face was keeps nothing this frame (a miss) —
        the other keeps its id."""
        by_id = {tr.id: tr for tr in self._tracks}
        ids = sorted(candidates)
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                if a not in candidates or b not in candidates:
                    continue
                if _iou(_box(candidates[a]), _box(candidates[b])) < 0.5:
                    continue
                self.stats.duplicates_resolved += 1

                def jump(tid: int) -> float:
                    tr = by_id[tid]
                    return float(np.linalg.norm(candidates[tid].mean(0) - tr.landmarks.mean(0))) / max(tr.size, 1.0)

                loser = a if jump(a) > jump(b) else b
                del candidates[loser]
                by_id[loser].landmarker.reset()
