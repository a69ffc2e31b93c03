"""The face stage of the live pipeline: track → align → (model) → paste back.

``FaceTracker.update(frame, timestamp_s) -> list[FaceTrack]`` finds and follows faces (MediaPipe
full-range detector + face mesh per face region, One-Euro smoothed crop transforms);
``Aligner.crop(frame, tracks) -> AlignedBatch`` cuts model crops in one batched warp;
``Compositor.paste(frame, batch, stylized) -> frame`` blends the stylised crops back.

Nothing heavy is imported here: torch and mediapipe load when the classes are used.
"""

from .align import TEMPLATE_256, Aligner, AlignmentError, CropTemplate, fit_similarity
from .composite import CompositeError, Compositor, CompositorStats
from .detect import MediaPipeUnavailableError
from .smooth import OneEuroConfig, SimilaritySmoother
from .track import FaceTracker, TrackerConfig, TrackerStats

__all__ = [
    "TEMPLATE_256",
    "Aligner",
    "AlignmentError",
    "CompositeError",
    "Compositor",
    "CompositorStats",
    "CropTemplate",
    "FaceTracker",
    "MediaPipeUnavailableError",
    "OneEuroConfig",
    "SimilaritySmoother",
    "TrackerConfig",
    "TrackerStats",
    "fit_similarity",
]
