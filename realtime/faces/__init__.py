"""The face stage of the live pipeline: track → align → (model) → paste back.

``FaceTracker.update(frame, timestamp_s) -> list[FaceTrack]`` finds and follows faces (MediaPipe
full-range detector + face mesh per face region, One-Euro smoothed crop transforms);
``Aligner.crop(frame, tracks) -> AlignedBatch`` cuts model crops in one batched warp;
``HeadMasker(image, tracks, batch) -> batch`` attaches each crop's ``head`` paste mask (MediaPipe
selfie segmentation on the crop square ∩ a head region from the landmarks, smoothed in time);
``FlowBlend(batch, stylized) -> stylized`` (optional) deflickers the stylised crops;
``Compositor.paste(frame, batch, stylized) -> frame`` blends the stylised crops back through the
``face``, ``head`` or ``box`` mask.

Nothing heavy is imported here: torch and mediapipe load when the classes are used.
"""

from .align import TEMPLATE_256, Aligner, AlignmentError, CropTemplate, fit_similarity
from .composite import PASTE_MODES, CompositeError, Compositor, CompositorStats
from .detect import MediaPipeUnavailableError
from .masks import HeadMaskConfig
from .segment import HeadMasker, PersonSegmenter
from .smooth import OneEuroConfig, SimilaritySmoother
from .temporal import DeflickerConfig, FlowBlend
from .track import FaceTracker, TrackerConfig, TrackerStats

__all__ = [
    "TEMPLATE_256",
    "Aligner",
    "AlignmentError",
    "CompositeError",
    "Compositor",
    "CompositorStats",
    "CropTemplate",
    "DeflickerConfig",
    "FaceTracker",
    "FlowBlend",
    "HeadMaskConfig",
    "HeadMasker",
    "MediaPipeUnavailableError",
    "OneEuroConfig",
    "PASTE_MODES",
    "PersonSegmenter",
    "SimilaritySmoother",
    "TrackerConfig",
    "TrackerStats",
    "fit_similarity",
]
