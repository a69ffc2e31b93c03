"""Paste-back: warp each stylised crop into the frame with the inverse of its own matrix and blend
it through a feathered mask, chosen by the paste mode:

* ``face`` — the template's inner-face ellipse (an anime face inside the person's own hair);
* ``head`` — the person's head and hair (each crop's own mask, ``AlignedBatch.masks``, made in
  the face stage by :class:`~realtime.faces.HeadMasker` on a square wider and higher than the
  crop): the anime head replaces the real one. Where the real hair reaches beyond the crop, the
  anime crop's colours are carried outward (``extend_hair``: a coarse, 8×8 version of the crop,
  its edge colours continued, faded in over the crop's outer band), so the anime hair takes the
  person's whole silhouette instead of sitting inside a cap of real hair. Without
  ``extend_hair`` (the identity model: there is no anime hair to extend) the paste stops at the
  crop's edge, faded;
* ``box`` — the whole square crop, faded at its edges (the "sticker" look).

* Masks are tied to the crop's own matrix and warped into the frame with it, so they follow the
  face exactly. Each is exactly 0 outside its region (so the crop's border never reaches the
  screen), and the blend ``out = frame + m * (face - frame)`` leaves every pixel with ``m == 0``
  bit-for-bit unchanged.
* Only a box around each face is touched: all faces of a frame are warped together (one batched
  ``grid_sample`` for the colour, one for the mask; the head paste adds one for the crop's edge
  fade and, extending the hair, one for the coarse colours) over boxes of a common size, then
  blended one after another in a stable order — ascending
  track id (the face tracked longest is drawn first, later ones on top), which never flips from
  frame to frame the way a depth or size order would when two faces are about the same size.
* ``match_colour``: each stylised crop's colour is scaled per channel so that its inner face has
  the mean colour of the real face under the frame's light (the gains are smoothed per track).
* A frame with no face to paste is returned unchanged (the very same object, or for a bare
  grayscale / RGBA image its RGB conversion) and counted in ``stats.frames_passed_through``.
* Tensor math only: the frame stays on its device; numpy frames come back as numpy, tensors as
  tensors of the same device.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..types import AlignedBatch, Frame, ImageLike, as_rgb_uint8, is_tensor
from .align import CropTemplate, affine_grid, apply_affine, compose_affine, invert_affine, pixel_to_normalized
from .masks import border_ramp

__all__ = ["PASTE_MODES", "Compositor", "CompositorStats", "CompositeError"]

PASTE_MODES = ("face", "head", "box")
BOX_FEATHER = 0.06          # the box paste's fade at the crop's edges, a fraction of its side
HAIR_BAND = 0.12            # extend_hair: the crop's outer band over which its coarse colours take over


class CompositeError(ValueError):
    """Stylised crops that do not match their aligned batch."""


@dataclass
class CompositorStats:
    frames: int = 0
    frames_passed_through: int = 0  # frames with no face to paste (returned unchanged)
    faces_pasted: int = 0
    faces_outside_frame: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class Compositor:
    """``paste(frame, batch, stylized) -> frame``.

    ``stylized``: N×3×S×S tensor (any float dtype, RGB in [-1, 1], the model's output for
    ``batch.crops``; any device — it is moved to the frame's). When ``frame`` is a
    :class:`~realtime.types.Frame`, only the batch entries cut from that frame (same index) are
    pasted and a new ``Frame`` is returned; for a bare image every entry is pasted.
    ``mode``: one of :data:`PASTE_MODES`; ``head`` needs ``batch.masks``.
    """

    def __init__(self, template: CropTemplate | None = None, mode: str = "face", match_colour: bool = False,
                 extend_hair: bool = True):
        if mode not in PASTE_MODES:
            raise ValueError(f"paste mode must be one of {PASTE_MODES}, got {mode!r}")
        self.template = template or CropTemplate.default()
        self.mode = mode
        self.match_colour = bool(match_colour)
        self.extend_hair = bool(extend_hair)
        self.stats = CompositorStats()
        self._masks: dict = {}
        self._gains: dict[int, object] = {}      # track id -> smoothed colour gains (3,)

    def _mask(self, size: int, device, mode: str):
        """The fixed crop-space mask of ``face``, ``box`` (and the crop-edge fade of ``head``)."""
        key = (mode, size, str(device))
        m = self._masks.get(key)
        if m is None:
            if mode == "face":
                m = self.template.scaled(size).mask(device=device)
            else:
                m = border_ramp(size, HAIR_BAND if mode == "hair" else BOX_FEATHER, device=device)
            self._masks[key] = m
        return m

    def paste(self, frame: Frame | ImageLike, batch: AlignedBatch, stylized) -> Frame | ImageLike:
        self.stats.frames += 1
        if stylized is None or not hasattr(stylized, "shape"):
            raise CompositeError("stylized must be an N×3×S×S tensor (the model's output for batch.crops)")
        if tuple(stylized.shape) != tuple(batch.crops.shape):
            raise CompositeError(
                f"stylized crops have shape {tuple(stylized.shape)} but the batch holds {tuple(batch.crops.shape)}; "
                f"the model must return one RGB crop of the same size per input crop"
            )
        if self.mode == "head" and batch.masks is None:
            raise CompositeError("the head paste needs each crop's mask (batch.masks, made by "
                                 "realtime.faces.HeadMasker in the face stage)")
        wrapped = isinstance(frame, Frame)
        image = frame.image if wrapped else as_rgb_uint8(frame)
        entries = list(range(len(batch)))
        if wrapped:
            entries = [i for i in entries if batch.frame_indices[i] == frame.index]
        # nothing to paste: the frame itself (a bare grayscale / RGBA image comes back converted
        # to RGB, like every other output, so a sink always receives H×W×3)
        passthrough = frame if wrapped else image
        if not entries:
            self.stats.frames_passed_through += 1
            return passthrough
        if self.match_colour:
            stylized = self.matched_colour(batch, stylized, entries)
        # stable order: ascending track id, then batch position
        entries.sort(key=lambda i: (batch.track_ids[i], i))
        out_image = self.paste_image(image, batch.crop_to_frame, stylized, order=entries,
                                     masks=batch.masks if self.mode == "head" else None,
                                     mask_to_crop=batch.mask_to_crop)
        if out_image is None:
            self.stats.frames_passed_through += 1
            return passthrough
        if wrapped:
            return Frame(out_image, frame.timestamp_s, frame.index)
        return out_image

    def matched_colour(self, batch: AlignedBatch, stylized, entries):
        """``stylized`` with each entry's channels scaled so that the mean colour of its inner
        face (the ``face`` ellipse) matches the real crop's; gains are clamped to 0.5..2 and
        smoothed over frames per track (a change of light is followed over a few frames)."""
        import torch

        s = int(stylized.shape[-1])
        w = self._mask(s, stylized.device, "face")
        real = batch.crops.to(stylized.device, torch.float32).add(1.0)       # 0..2, 0 = black
        fake = stylized.float().clamp(-1.0, 1.0).add(1.0)
        out = stylized.float().clone()
        for i in entries:
            mean_r = (real[i] * w).sum((1, 2)) / w.sum()
            mean_f = (fake[i] * w).sum((1, 2)) / w.sum()
            gain = ((mean_r + 0.02) / (mean_f + 0.02)).clamp(0.5, 2.0)
            tid = batch.track_ids[i]
            prev = self._gains.get(tid)
            if prev is not None:
                gain = prev + 0.3 * (gain - prev.to(gain.device))
            self._gains[tid] = gain
            out[i] = fake[i].mul(gain[:, None, None]).sub(1.0)
        return out

    def coverage(self, frame_hw: tuple[int, int], crop_to_frame: np.ndarray, crop_size: int, masks=None,
                 mask_to_crop: np.ndarray | None = None):
        """H×W float32 numpy map of how much of each frame pixel the paste replaces (0 = the
        pixel is returned exactly as it came in); ``masks``/``mask_to_crop``: the ``head``
        paste's masks (``batch.masks``, ``batch.mask_to_crop``). For tests, benchmarks and
        diagnostics."""
        import torch

        h, w = int(frame_hw[0]), int(frame_hw[1])
        mats = np.asarray(crop_to_frame, dtype=np.float64).reshape(-1, 2, 3)
        keep_out = np.zeros((h, w), np.float32)
        if len(mats) == 0:
            return keep_out
        white = torch.ones(len(mats), 3, crop_size, crop_size)
        probe = np.zeros((h, w, 3), np.uint8)
        # paste "white" onto black with the real code path: the result / 255 is the coverage
        out = self.paste_image(probe, mats, white, count=False, masks=masks, mask_to_crop=mask_to_crop)
        if out is None:
            return keep_out
        return out[..., 0].astype(np.float32) / 255.0

    def paste_image(self, image: ImageLike, crop_to_frame: np.ndarray, stylized, order=None, count: bool = True,
                    masks=None, mask_to_crop: np.ndarray | None = None):
        """Paste crops ``order`` (default: all, in batch order) of ``stylized`` (N×3×S×S) with
        their N×2×3 crop→frame matrices into a copy of ``image``; None if none lands in it.
        ``masks`` (N×1×M×M on the square ``mask_to_crop`` maps into each crop): the ``head``
        paste's own masks, in place of the mode's fixed one."""
        import torch
        import torch.nn.functional as F

        if self.mode == "head" and masks is None:
            raise CompositeError("the head paste needs each crop's mask (masks=N×1×M×M, mask_to_crop)")
        head = masks is not None
        mats_all = np.asarray(crop_to_frame, dtype=np.float64).reshape(-1, 2, 3)
        order = list(range(len(mats_all))) if order is None else [int(i) for i in order]
        mats = mats_all[order]
        n = len(mats)
        tensor_in = is_tensor(image)
        h, w = int(image.shape[0]), int(image.shape[1])
        s = int(stylized.shape[-1])
        device = image.device if tensor_in else torch.device("cpu")

        # What each face may change, in crop pixels: its mask's support.
        square = np.array([[-0.5, -0.5], [s - 0.5, -0.5], [s - 0.5, s - 0.5], [-0.5, s - 0.5]])
        if head and self.extend_hair:
            m_size = int(masks.shape[-1])
            m_corners = np.array([[-0.5, -0.5], [m_size - 0.5, -0.5], [m_size - 0.5, m_size - 0.5],
                                  [-0.5, m_size - 0.5]])
            extent = apply_affine(mask_to_crop, m_corners)
        elif self.mode == "face" and not head:
            extent = self.template.scaled(s).mask_extent_crop()
        else:
            extent = square
        # Box of each face's support in the frame, clipped to the frame.
        boxes = []
        for m in mats:
            pts = apply_affine(m, extent)
            x0 = max(0, math.floor(pts[:, 0].min()))
            y0 = max(0, math.floor(pts[:, 1].min()))
            x1 = min(w, math.ceil(pts[:, 0].max()) + 1)
            y1 = min(h, math.ceil(pts[:, 1].max()) + 1)
            boxes.append((x0, y0, x1, y1))
        keep = [i for i, (x0, y0, x1, y1) in enumerate(boxes) if x1 > x0 and y1 > y0]
        if count:
            self.stats.faces_outside_frame += n - len(keep)
        if not keep:
            return None
        bw = max(boxes[i][2] - boxes[i][0] for i in keep)
        bh = max(boxes[i][3] - boxes[i][1] for i in keep)
        # common box size; shift boxes so that they stay inside the frame
        origins = []
        for i in keep:
            x0, y0 = boxes[i][0], boxes[i][1]
            origins.append((min(x0, w - bw), min(y0, h - bh)))

        # One batched warp from crop space into every face's box.
        box_from_norm = invert_affine(pixel_to_normalized(bw, bh))
        crop_thetas, mask_thetas = [], []
        for i, (ox, oy) in zip(keep, origins):
            box_to_crop = compose_affine(invert_affine(mats[i]), np.array([[1.0, 0.0, ox], [0.0, 1.0, oy]]))
            crop_thetas.append(compose_affine(pixel_to_normalized(s, s), compose_affine(box_to_crop, box_from_norm)))
            if head:
                m_size = int(masks.shape[-1])
                box_to_mask = compose_affine(invert_affine(mask_to_crop), box_to_crop)
                mask_thetas.append(compose_affine(pixel_to_normalized(m_size, m_size),
                                                  compose_affine(box_to_mask, box_from_norm)))
        theta = torch.as_tensor(np.stack(crop_thetas), dtype=torch.float32, device=device)
        pick = [order[i] for i in keep]
        if pick == list(range(len(stylized))):
            src = stylized
        else:
            src = stylized[torch.as_tensor(pick, device=stylized.device)]
        # rgb in 0..255, clamped, so that bilinear interpolation and the blend below stay within
        # 0..255 without another pass over the boxes. Colour and mask are warped by the same
        # grid in two calls (3 + 1 channels): on CPU that is ~1.5x faster than one 4-channel call.
        rgb = src.to(device=device, dtype=torch.float32).clamp(-1.0, 1.0).mul_(127.5).add_(127.5)
        k = len(keep)
        grid = affine_grid(theta, bh, bw)
        # (edge pixels repeat beyond the crop: a mask that fades there never blends in black)
        warped_rgb = F.grid_sample(rgb, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if not head:
            mask = self._mask(s, device, self.mode).expand(k, 1, s, s)
            warped_mask = F.grid_sample(mask, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        else:
            sel = torch.as_tensor(pick, device=masks.device)
            mask = masks.index_select(0, sel).to(device=device, dtype=torch.float32)
            mask_grid = affine_grid(torch.as_tensor(np.stack(mask_thetas), dtype=torch.float32, device=device), bh, bw)
            warped_mask = F.grid_sample(mask, mask_grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            inner = self._mask(s, device, "hair" if self.extend_hair else "box").expand(k, 1, s, s)
            warped_inner = F.grid_sample(inner, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            if self.extend_hair:
                # beyond the crop: its coarse colours continued outward, faded in over its edge band
                coarse = F.adaptive_avg_pool2d(rgb, 8)
                warped_far = F.grid_sample(coarse, grid, mode="bilinear", padding_mode="border", align_corners=False)
                warped_rgb = torch.lerp(warped_far, warped_rgb, warped_inner)
            else:
                warped_mask = warped_mask * warped_inner

        out = image.clone() if tensor_in else torch.from_numpy(np.array(image, copy=True))
        for j, (ox, oy) in enumerate(origins):
            roi = out[oy : oy + bh, ox : ox + bw].permute(2, 0, 1)  # 3×bh×bw view of the output
            base = roi.contiguous().float()  # planar copy first: 2x faster blend than strided
            # m == 0 gives exactly base (an integer), so +0.5 and truncation return the input pixel
            blended = torch.lerp(base, warped_rgb[j], warped_mask[j]).add_(0.5)
            roi.copy_(blended)  # float -> uint8 truncates; values are within [0.5, 255.5)
        if count:
            self.stats.faces_pasted += len(keep)
        return out if tensor_in else out.numpy()
