"""realtime.types: frame conversion (grayscale, RGBA, bad input) and the stage data types."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime.types import AlignedBatch, FaceTrack, Frame, FrameFormatError, as_rgb_uint8


def test_rgb_passes_through_without_copy():
    img = np.zeros((5, 7, 3), np.uint8)
    assert as_rgb_uint8(img) is img


@pytest.mark.parametrize("shape", [(6, 9), (6, 9, 1)])
def test_grayscale_is_replicated(shape):
    gray = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    rgb = as_rgb_uint8(gray)
    assert rgb.shape == (6, 9, 3) and rgb.flags.c_contiguous
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], gray.reshape(6, 9))


def test_rgba_drops_alpha():
    rgba = np.random.default_rng(0).integers(0, 256, (4, 5, 4), dtype=np.uint8)
    rgb = as_rgb_uint8(rgba)
    np.testing.assert_array_equal(rgb, rgba[..., :3])
    assert rgb.flags.c_contiguous


def test_tensor_frames_stay_tensors():
    t = torch.arange(20, dtype=torch.uint8).reshape(4, 5)
    out = as_rgb_uint8(t)
    assert isinstance(out, torch.Tensor) and out.shape == (4, 5, 3) and out.is_contiguous()
    rgba = torch.zeros(4, 5, 4, dtype=torch.uint8)
    assert as_rgb_uint8(rgba).shape == (4, 5, 3)


def test_bad_frames_raise_specific_errors_with_advice():
    with pytest.raises(FrameFormatError, match="uint8"):
        as_rgb_uint8(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(FrameFormatError, match="channel-first"):
        as_rgb_uint8(np.zeros((3, 40, 50), np.uint8))
    with pytest.raises(FrameFormatError, match="empty"):
        as_rgb_uint8(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(FrameFormatError):
        as_rgb_uint8([[1, 2], [3, 4]])
    with pytest.raises(FrameFormatError, match="from_array"):
        Frame(np.zeros((4, 4), np.uint8), 0.0, 0)


def test_frame_from_array_converts():
    f = Frame.from_array(np.zeros((10, 12), np.uint8), 0.5, 3)
    assert (f.height, f.width, f.timestamp_s, f.index) == (10, 12, 0.5, 3)
    assert not f.on_device and f.to_numpy().shape == (10, 12, 3)
    g = Frame(torch.zeros(10, 12, 3, dtype=torch.uint8), 0.0, 0)
    assert g.on_device and isinstance(g.to_numpy(), np.ndarray)


def _track(tid=0, frame_index=0):
    m = np.array([[0.5, 0.0, 10.0], [0.0, 0.5, 20.0]])
    return FaceTrack(tid, np.zeros((468, 2)), m, m, 256, 0.9, 0, 1, frame_index, 0.0)


def test_face_track_is_immutable_and_validated():
    t = _track()
    assert t.visible and t.scale_frame_per_crop == pytest.approx(0.5)
    with pytest.raises(ValueError):
        t.crop_to_frame[0, 0] = 2.0  # read-only
    with pytest.raises(ValueError, match="2×3"):
        FaceTrack(0, np.zeros((468, 2)), np.eye(3), np.eye(3), 256, 0.9, 0, 1, 0, 0.0)


def test_aligned_batch_validation_concat_select():
    b = AlignedBatch(torch.zeros(2, 3, 8, 8), np.zeros((2, 2, 3)), (4, 5), (0, 0), ((10, 10),) * 2)
    c = AlignedBatch(torch.ones(1, 3, 8, 8), np.ones((1, 2, 3)), (6,), (1,), ((10, 10),))
    j = AlignedBatch.concat([b, c])
    assert len(j) == 3 and j.track_ids == (4, 5, 6) and j.frame_indices == (0, 0, 1) and j.crop_size == 8
    s = j.select([2, 0])
    assert s.track_ids == (6, 4) and float(s.crops[0].mean()) == 1.0
    with pytest.raises(ValueError, match="N×3×S×S"):
        AlignedBatch(torch.zeros(2, 8, 8), np.zeros((2, 2, 3)), (0, 1), (0, 0))
    with pytest.raises(ValueError, match="track ids"):
        AlignedBatch(torch.zeros(2, 3, 8, 8), np.zeros((2, 2, 3)), (0,), (0, 0))
    with pytest.raises(ValueError, match="different sizes"):
        AlignedBatch.concat([b, AlignedBatch(torch.zeros(1, 3, 4, 4), np.zeros((1, 2, 3)), (0,), (0,))])
