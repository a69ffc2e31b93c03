"""Named data types passed between the stages of the live pipeline.

Coordinate conventions (used by every stage; names carry the space they live in):

* **Pixel coordinates** put the *centre* of pixel ``(col, row)`` at ``(x, y) = (col, row)``
  (OpenCV's ``warpAffine`` convention). The image therefore spans ``[-0.5, W - 0.5]``.
* ``*_frame`` values are in full-frame pixels of the camera / video frame.
* ``*_crop`` values are in pixels of the model's square crop (``crop_size`` × ``crop_size``).
* A matrix named ``a_to_b`` is a 2×3 affine ``M`` with ``p_b = M[:, :2] @ p_a + M[:, 2]``.
  For faces these are *similarities* (rotation, uniform scale, translation; no shear).

Image layout and dtype:

* A frame's pixels are **uint8 RGB, H×W×3, channel last** — a contiguous ``numpy.ndarray`` on the
  host, or a ``torch.uint8`` tensor with the same layout on a device (CUDA or CPU).
* Crops fed to the model are **float32 N×3×S×S, RGB, values in [-1, 1]** on the frame's device.

Input that is not RGB is converted by :func:`as_rgb_uint8` (and so by :meth:`Frame.from_array`):
grayscale H×W or H×W×1 is replicated into three channels; RGBA H×W×4 has its alpha dropped (not
composited: webcams deliver opaque alpha). Any other dtype or layout raises
:class:`FrameFormatError` with a message that says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Union

import numpy as np

if TYPE_CHECKING:  # torch is only needed by callers that already imported it
    import torch

ImageLike = Union[np.ndarray, "torch.Tensor"]

__all__ = [
    "AlignedBatch",
    "FaceTrack",
    "Frame",
    "FrameFormatError",
    "ImageLike",
    "as_rgb_uint8",
    "is_tensor",
]


class FrameFormatError(ValueError):
    """A frame is not an image this pipeline can read (wrong dtype, layout or size)."""


def is_tensor(x: object) -> bool:
    """True for a ``torch.Tensor`` (without importing torch when it is not loaded yet)."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def as_rgb_uint8(image: ImageLike) -> ImageLike:
    """Return ``image`` as uint8 RGB H×W×3 of the same kind (numpy stays numpy, tensor stays tensor).

    * H×W×3 uint8 is returned as is (made contiguous if it was not).
    * H×W and H×W×1 (grayscale) are replicated into 3 channels.
    * H×W×4 (RGBA) has its alpha channel dropped.

    Raises :class:`FrameFormatError` for other dtypes (convert floats with
    ``(x * 255).round().clip(0, 255).astype(np.uint8)``), channel-first images, or empty images.
    """
    tensor = is_tensor(image)
    if not tensor and not isinstance(image, np.ndarray):
        raise FrameFormatError(
            f"expected a numpy array or torch tensor holding an H×W×3 uint8 RGB image, "
            f"got {type(image).__name__}"
        )
    shape = tuple(image.shape)
    dtype_ok = (str(image.dtype) == "torch.uint8") if tensor else image.dtype == np.uint8
    if not dtype_ok:
        raise FrameFormatError(
            f"frames must be uint8 (0..255), got dtype {image.dtype}; convert first, e.g. "
            f"(x * 255).round().clip(0, 255) cast to uint8 for floats in [0, 1]"
        )
    if len(shape) == 2:
        image = image[..., None]
        shape = tuple(image.shape)
    if len(shape) != 3:
        raise FrameFormatError(
            f"expected an image of shape H×W×3 (or H×W, H×W×1, H×W×4), got shape {shape}"
        )
    h, w, c = shape
    if c not in (1, 3, 4):
        hint = ""
        if h in (1, 3, 4):
            hint = " — this looks channel-first; use image.permute(1, 2, 0) / np.transpose(image, (1, 2, 0))"
        raise FrameFormatError(f"expected channel-last H×W×C with C in (1, 3, 4), got shape {shape}{hint}")
    if h == 0 or w == 0:
        raise FrameFormatError(f"empty frame of shape {shape}")
    if c == 1:
        image = image.expand(h, w, 3) if tensor else np.broadcast_to(image, (h, w, 3))
    elif c == 4:
        image = image[..., :3]
    if tensor:
        return image.contiguous()
    return np.ascontiguousarray(image)


@dataclass(frozen=True, eq=False)
class Frame:
    """One video frame: uint8 RGB H×W×3 (numpy on the host or a torch tensor on a device).

    ``timestamp_s`` is the presentation time in seconds (used by the time-based smoothing, so
    variable frame rates behave); ``index`` counts frames from 0 in the order they were read.
    Build it with :meth:`from_array` to convert grayscale / RGBA input.
    """

    image: ImageLike
    timestamp_s: float
    index: int

    def __post_init__(self) -> None:
        shape = tuple(self.image.shape)
        if len(shape) != 3 or shape[2] != 3:
            raise FrameFormatError(
                f"Frame.image must be H×W×3 RGB, got shape {shape}; use Frame.from_array() to convert"
            )

    @classmethod
    def from_array(cls, image: ImageLike, timestamp_s: float, index: int) -> "Frame":
        """Wrap ``image`` after converting grayscale / RGBA to RGB (see :func:`as_rgb_uint8`)."""
        return cls(as_rgb_uint8(image), float(timestamp_s), int(index))

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def on_device(self) -> bool:
        """True when the pixels are a torch tensor (CUDA or CPU), False for a host numpy array."""
        return is_tensor(self.image)

    def to_numpy(self) -> np.ndarray:
        """The pixels as a host numpy array (a copy only when they live on a device)."""
        if self.on_device:
            return self.image.detach().cpu().numpy()
        return self.image


def _readonly(a: np.ndarray, dtype=np.float64) -> np.ndarray:
    a = np.array(a, dtype=dtype, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class FaceTrack:
    """One tracked face in one frame (an immutable snapshot produced by the tracker).

    Attributes:
        track_id: stable id while the face stays tracked; a face that is lost for longer than
            the tracker's ``max_missed_frames`` and comes back gets a new id.
        landmarks_frame: K×2 float32 face-mesh landmarks in full-frame pixels (468 points,
            MediaPipe face-mesh order) from the last frame the face was seen.
        crop_to_frame: 2×3 *smoothed* similarity mapping crop pixels (``crop_size`` square)
            to frame pixels — what the aligner and compositor use.
        crop_to_frame_raw: 2×3 similarity fitted to this frame's landmarks without smoothing.
        crop_size: side of the crop the two matrices refer to.
        score: detection score of the detector hit that started / last re-found the track.
        frames_since_seen: 0 when the landmarks come from this frame; k > 0 when the face was
            missed for k frames and the last transform is kept.
        age_frames: frames since the track started.
        frame_index, timestamp_s: the frame this snapshot belongs to.
    """

    track_id: int
    landmarks_frame: np.ndarray
    crop_to_frame: np.ndarray
    crop_to_frame_raw: np.ndarray
    crop_size: int
    score: float
    frames_since_seen: int
    age_frames: int
    frame_index: int
    timestamp_s: float

    def __post_init__(self) -> None:
        for name in ("crop_to_frame", "crop_to_frame_raw"):
            m = getattr(self, name)
            if np.shape(m) != (2, 3):
                raise ValueError(f"FaceTrack.{name} must be a 2×3 matrix, got shape {np.shape(m)}")
            object.__setattr__(self, name, _readonly(m))
        lm = np.asarray(self.landmarks_frame)
        if lm.ndim != 2 or lm.shape[1] != 2:
            raise ValueError(f"FaceTrack.landmarks_frame must be K×2, got shape {lm.shape}")
        object.__setattr__(self, "landmarks_frame", _readonly(lm, np.float32))

    @property
    def visible(self) -> bool:
        """True when the face was found in this very frame."""
        return self.frames_since_seen == 0

    @property
    def scale_frame_per_crop(self) -> float:
        """Frame pixels per crop pixel of the smoothed transform (> 1: the crop shrinks the face)."""
        return float(np.hypot(self.crop_to_frame[0, 0], self.crop_to_frame[1, 0]))

    @property
    def box_frame(self) -> tuple[float, float, float, float]:
        """Bounding box ``(x0, y0, x1, y1)`` of the landmarks, in frame pixels."""
        lo = self.landmarks_frame.min(axis=0)
        hi = self.landmarks_frame.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


@dataclass(frozen=True, eq=False)
class AlignedBatch:
    """Aligned face crops ready for the model, each carrying the matrix that pastes it back.

    Attributes:
        crops: float32 tensor N×3×S×S, RGB in [-1, 1], on the device of the frame it was cut from.
            Parts of a crop that fall outside the frame are 0 (mid-grey), never smeared edges.
        crop_to_frame: float64 numpy array N×2×3 (host; tiny, and kept on the host so that the
            compositor's region arithmetic never waits on the device). Crop pixels → frame pixels.
        track_ids: the track id of each crop.
        frame_indices: the frame index each crop was cut from, so that a batch may gather faces
            from several frames (the compositor pastes only the entries of the frame it is given).
        frame_sizes: (H, W) of the frame each crop was cut from.
        masks: None, or float tensor N×1×M×M in [0, 1] on the crops' device: each crop's own
            paste mask (the ``head`` paste), made in the face stage by
            :class:`~realtime.faces.HeadMasker`.
        mask_to_crop: 2×3 float64 (host), mask pixels → crop pixels, shared by every entry: where
            the masks' square lies relative to each crop (None with no masks).
    """

    crops: "torch.Tensor"
    crop_to_frame: np.ndarray
    track_ids: tuple[int, ...]
    frame_indices: tuple[int, ...]
    frame_sizes: tuple[tuple[int, int], ...] = field(default=())
    masks: "torch.Tensor | None" = None
    mask_to_crop: np.ndarray | None = None

    def __post_init__(self) -> None:
        shape = tuple(self.crops.shape)
        if len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3]:
            raise ValueError(f"AlignedBatch.crops must be N×3×S×S, got shape {shape}")
        n = shape[0]
        m = np.asarray(self.crop_to_frame, dtype=np.float64)
        if m.shape != (n, 2, 3):
            raise ValueError(f"AlignedBatch.crop_to_frame must be {n}×2×3, got shape {m.shape}")
        object.__setattr__(self, "crop_to_frame", _readonly(m))
        object.__setattr__(self, "track_ids", tuple(int(t) for t in self.track_ids))
        object.__setattr__(self, "frame_indices", tuple(int(f) for f in self.frame_indices))
        object.__setattr__(self, "frame_sizes", tuple((int(h), int(w)) for h, w in self.frame_sizes))
        if len(self.track_ids) != n or len(self.frame_indices) != n:
            raise ValueError(
                f"AlignedBatch has {n} crops but {len(self.track_ids)} track ids and "
                f"{len(self.frame_indices)} frame indices"
            )
        if self.frame_sizes and len(self.frame_sizes) != n:
            raise ValueError(f"AlignedBatch has {n} crops but {len(self.frame_sizes)} frame sizes")
        if self.masks is not None:
            ms = tuple(self.masks.shape)
            if len(ms) != 4 or ms[0] != n or ms[1] != 1 or ms[2] != ms[3]:
                raise ValueError(f"AlignedBatch.masks must be {n}×1×M×M, got shape {ms}")
            if np.shape(self.mask_to_crop) != (2, 3):
                raise ValueError("AlignedBatch.masks need mask_to_crop, a 2×3 matrix")
            object.__setattr__(self, "mask_to_crop", _readonly(self.mask_to_crop))
        elif self.mask_to_crop is not None:
            raise ValueError("AlignedBatch.mask_to_crop is given without masks")

    def __len__(self) -> int:
        return int(self.crops.shape[0])

    @property
    def crop_size(self) -> int:
        return int(self.crops.shape[-1])

    @property
    def device(self):
        return self.crops.device

    @classmethod
    def concat(cls, batches: "list[AlignedBatch]") -> "AlignedBatch":
        """Join batches (e.g. faces of several frames) into one; crop sizes must agree."""
        import torch

        if not batches:
            raise ValueError("AlignedBatch.concat needs at least one batch")
        sizes = {b.crop_size for b in batches}
        if len(sizes) != 1:
            raise ValueError(f"cannot concatenate crops of different sizes {sorted(sizes)}")
        have_sizes = all(b.frame_sizes or len(b) == 0 for b in batches)
        with_masks = [b.masks is not None for b in batches if len(b)]
        if any(with_masks) and not all(with_masks):
            raise ValueError("cannot concatenate batches with and without paste masks")
        masks = mask_to_crop = None
        if with_masks and all(with_masks):
            squares = [b.mask_to_crop for b in batches if len(b)]
            if any(not np.array_equal(q, squares[0]) for q in squares):
                raise ValueError("cannot concatenate batches whose masks cover different squares")
            masks, mask_to_crop = torch.cat([b.masks for b in batches if len(b)], 0), squares[0]
        return cls(
            crops=torch.cat([b.crops for b in batches], 0),
            crop_to_frame=np.concatenate([b.crop_to_frame for b in batches], 0),
            track_ids=sum((b.track_ids for b in batches), ()),
            frame_indices=sum((b.frame_indices for b in batches), ()),
            frame_sizes=sum((b.frame_sizes for b in batches), ()) if have_sizes else (),
            masks=masks,
            mask_to_crop=mask_to_crop,
        )

    def with_masks(self, masks, mask_to_crop: np.ndarray) -> "AlignedBatch":
        """This batch with per-crop paste masks (N×1×M×M) on the square ``mask_to_crop`` maps
        into each crop."""
        return replace(self, masks=masks, mask_to_crop=mask_to_crop)

    def select(self, indices) -> "AlignedBatch":
        """The sub-batch of the given entry positions (in that order)."""
        idx = [int(i) for i in indices]
        import torch

        sel = torch.as_tensor(idx, dtype=torch.long, device=self.crops.device)
        masks = None
        if self.masks is not None:
            masks = self.masks.index_select(0, sel.to(self.masks.device)) if idx else self.masks[:0]
        return AlignedBatch(
            crops=self.crops.index_select(0, sel) if idx else self.crops[:0],
            crop_to_frame=self.crop_to_frame[idx] if idx else self.crop_to_frame[:0],
            track_ids=tuple(self.track_ids[i] for i in idx),
            frame_indices=tuple(self.frame_indices[i] for i in idx),
            frame_sizes=tuple(self.frame_sizes[i] for i in idx) if self.frame_sizes else (),
            masks=masks,
            mask_to_crop=self.mask_to_crop if masks is not None else None,
        )
