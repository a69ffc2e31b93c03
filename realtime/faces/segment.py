"""Where the person is, per face: the ``head`` paste's masks, made in the face stage.

:class:`PersonSegmenter` is the MediaPipe part: ``selfie_segmentation`` (bundled inside
``mediapipe==0.10.21``, nothing downloaded) run on each face's *head square* — the crop square
the tracker already follows, widened and raised to take in the hair
(:func:`~realtime.faces.masks.head_square_to_crop`), resampled to ``mask_size`` pixels (about
4 ms for 256×256 on one CPU core) — never on the whole frame. The graph keeps no state between
images, so one graph serves every face of a frame.

:class:`HeadMasker` turns that into one mask per aligned crop (tensor math in
:mod:`realtime.faces.masks`): person ∩ the head region widened from the face-mesh oval, never
less than the ``face`` ellipse, smoothed over time per track (last frame's mask is carried along
by the square's own motion, then blended adaptively: no boiling edge, no lag on real motion),
and faded at the square's edges. Each track has its own mask and history, so faces that overlap
keep their own masks: the landmarks of one face bound its mask, where the segmentation alone
would not tell two people apart.
"""
from __future__ import annotations

import numpy as np

from ..types import AlignedBatch, ImageLike, is_tensor
from .align import CropTemplate, apply_affine, compose_affine, invert_affine
from .detect import MediaPipeUnavailableError, QuietGraph
from .masks import (FACE_OVAL, HeadMaskConfig, border_ramp, combine_head, ellipse_ramp,
                    head_prior, head_square_to_crop, motion_compensate, person_ramp,
                    temporal_filter)

__all__ = ["PersonSegmenter", "HeadMasker"]


def _import_selfie_segmentation():
    try:
        from mediapipe.python.solutions import selfie_segmentation
    except Exception as exc:  # ImportError, or a broken native library
        raise MediaPipeUnavailableError(
            "the head paste needs mediapipe 0.10.21, whose selfie segmentation model ships inside "
            f"the package: pip install 'mediapipe==0.10.21' 'numpy<2'  (import failed: {exc})"
        ) from exc
    return selfie_segmentation


class PersonSegmenter:
    """MediaPipe selfie segmentation of a square of the frame: ``segment(image, square_to_frame)``
    → ``size``² float32 person probability on that square."""

    def __init__(self, size: int = 256, model_selection: int = 0):
        import cv2  # ships with mediapipe

        module = _import_selfie_segmentation()
        self._cv2 = cv2
        self.size = int(size)
        self._graph = QuietGraph(lambda: module.SelfieSegmentation(model_selection=int(model_selection)))
        self._buffer = np.empty((self.size, self.size, 3), np.uint8)

    def segment(self, image_rgb: np.ndarray, square_to_frame: np.ndarray) -> np.ndarray:
        """Person probability on the square whose pixels ``square_to_frame`` (2×3) maps to frame
        pixels; parts outside the frame read mid-grey, as the aligner's crops do."""
        r = self.size
        self._cv2.warpAffine(image_rgb, invert_affine(square_to_frame), (r, r), dst=self._buffer,
                             flags=self._cv2.INTER_LINEAR, borderMode=self._cv2.BORDER_CONSTANT,
                             borderValue=(128, 128, 128))
        mask = self._graph.process(self._buffer).segmentation_mask
        return np.array(mask, dtype=np.float32, copy=True)

    def close(self) -> None:
        self._graph.close()


class HeadMasker:
    """``masker(image, tracks, batch) -> batch`` with ``masks`` (N×1×M×M in [0, 1], on the
    crops' device) and ``mask_to_crop`` (the head square, 2×3) for the ``head`` paste.
    ``image`` is the host frame the batch was cut from (a device tensor is copied to the host);
    ``tracks`` are the tracks the batch was cut for. Keeps one mask history per track id;
    tracks that are gone are forgotten. Call :meth:`close` to release the graph."""

    def __init__(self, template: CropTemplate | None = None, config: HeadMaskConfig | None = None):
        self.template = template or CropTemplate.default()
        self.config = config or HeadMaskConfig()
        _import_selfie_segmentation()             # a clear error now; the graph is built at first use,
        self._segmenter: PersonSegmenter | None = None   # in the thread that runs it
        self._border = border_ramp(self.config.mask_size, self.config.edge_feather)
        self._faces: dict[int, object] = {}       # crop size -> the face ellipse on the head square
        self._history: dict[int, tuple] = {}      # track id -> (mask M×M, mask_to_frame)

    def square_to_crop(self, crop_size: int) -> np.ndarray:
        return head_square_to_crop(crop_size, self.config.mask_size, self.config)

    def _face(self, crop_size: int):
        """The ``face`` paste's ellipse drawn on the head square (the head mask's minimum)."""
        face = self._faces.get(crop_size)
        if face is None:
            t = self.template.scaled(crop_size)
            to_mask = invert_affine(self.square_to_crop(crop_size))
            k = to_mask[0, 0]
            center = apply_affine(to_mask, np.array([t.mask_center_crop]))[0]
            radii = (t.mask_radii_crop[0] * k, t.mask_radii_crop[1] * k)
            face = ellipse_ramp(self.config.mask_size, center, radii, t.mask_feather)
            self._faces[crop_size] = face
        return face

    def raw_mask(self, image: np.ndarray, landmarks_frame: np.ndarray, square_to_frame: np.ndarray,
                 crop_size: int):
        """This frame's mask for one face before smoothing and the edge fade (M×M, CPU)."""
        import torch

        cfg, m = self.config, self.config.mask_size
        if self._segmenter is None:
            self._segmenter = PersonSegmenter(m, cfg.model_selection)
        prob = torch.from_numpy(self._segmenter.segment(image, square_to_frame))
        oval = apply_affine(invert_affine(square_to_frame), np.asarray(landmarks_frame)[list(FACE_OVAL)])
        prior = head_prior(oval, m, cfg)
        return combine_head(person_ramp(prob, cfg), prior, self._face(crop_size))

    def __call__(self, image: ImageLike, tracks, batch: AlignedBatch) -> AlignedBatch:
        import torch

        if is_tensor(image):
            image = image.detach().cpu().numpy()
        by_id = {t.track_id: t for t in tracks}
        square_to_crop = self.square_to_crop(batch.crop_size)
        masks, seen = [], set()
        for i, tid in enumerate(batch.track_ids):
            to_frame = compose_affine(batch.crop_to_frame[i], square_to_crop)
            raw = self.raw_mask(image, by_id[tid].landmarks_frame, to_frame, batch.crop_size)
            prev = self._history.get(tid)
            if prev is None:
                smooth = raw
            else:
                warped, valid = motion_compensate(prev[0], prev[1], to_frame)
                smooth = temporal_filter(warped, raw, valid, self.config)
            self._history[tid] = (smooth, to_frame)
            seen.add(tid)
            masks.append(smooth * self._border)
        for tid in [t for t in self._history if t not in seen]:
            del self._history[tid]
        m = self.config.mask_size
        stacked = torch.stack(masks)[:, None] if masks else torch.zeros(0, 1, m, m)
        return batch.with_masks(stacked.to(batch.device), square_to_crop)

    def reset(self) -> None:
        """Forget every track's history."""
        self._history.clear()

    def close(self) -> None:
        if self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None
