"""--paste face|head|box and --match-colour: flags → FaceOptions → build_pipeline → a run."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from realtime import cli
from realtime.compose import ConfigError, FaceOptions, PipelineConfig, build_pipeline
from realtime.engines.base import IdentityEngine
from realtime.faces import HeadMasker
from realtime.types import Frame


class Frames:
    """A source: a few frames of the astronaut's head drifting on a plain background."""

    def __init__(self, n=6, w=320, h=240):
        from realtime.synthetic import face_scene

        self.images = [face_scene(w, h, dx=2.0 * i) for i in range(n)]
        self.frame_size, self.fps = (w, h), 25.0

    def __iter__(self):
        for i, img in enumerate(self.images):
            yield Frame(img, i / self.fps, i)


class Collect:
    def __init__(self):
        self.frames = []

    def write(self, f):
        self.frames.append(f)

    def close(self):
        pass

    def abort(self):
        pass


def parse(*argv):
    p = argparse.ArgumentParser()
    cli.add_face_arguments(p)
    return cli.face_options(p.parse_args(list(argv)))


def test_flags_become_validated_options():
    assert parse().paste == "head" and parse().match_colour is False
    opts = parse("--paste", "box", "--match-colour")
    assert opts.paste == "box" and opts.match_colour is True
    with pytest.raises(SystemExit):
        parse("--paste", "hat")
    with pytest.raises(ConfigError, match="--paste must be one of face, head, box"):
        FaceOptions(paste="hat")
    with pytest.raises(ConfigError, match="--match-colour"):
        FaceOptions(match_colour="yes")


def test_head_is_the_default_for_every_model():
    assert FaceOptions().paste == "head"


@pytest.mark.parametrize("paste", ["head", "face", "box"])
def test_build_pipeline_wires_the_paste(paste):
    pytest.importorskip("mediapipe")
    src, sink = Frames(), Collect()
    cfg = PipelineConfig(faces=FaceOptions(paste=paste, match_colour=paste == "box"))
    pipe = build_pipeline(cfg, src, IdentityEngine(size=256), [sink])
    comp = pipe.compositor
    assert comp.mode == paste and comp.match_colour == (paste == "box")
    assert isinstance(pipe.masker, HeadMasker) == (paste == "head")
    assert comp.extend_hair is False                 # the identity model draws no anime hair
    stats = pipe.run().summary()
    assert stats["frames_out"] == len(src.images) and stats["faces"] == len(src.images)
    if paste == "head":
        assert stats["stages"]["segment"]["n"] == len(src.images)
    for a, b in zip(src.images, sink.frames):     # identity: nearly unchanged in every mode
        mse = np.mean((a.astype(float) - b.image.astype(float)) ** 2)
        assert 10 * np.log10(255 ** 2 / max(mse, 1e-9)) > 35


def test_crop_output_needs_no_masks():
    pytest.importorskip("mediapipe")
    pipe = build_pipeline(PipelineConfig(output="crop"), Frames(2), IdentityEngine(size=256), [Collect()])
    assert pipe.masker is None
    pipe.run()


def test_deflicker_flag_adds_the_flow_blend():
    pytest.importorskip("mediapipe")
    from realtime.faces import FlowBlend

    assert parse("--deflicker").deflicker is True and parse().deflicker is False
    sink = Collect()
    pipe = build_pipeline(PipelineConfig(faces=FaceOptions(deflicker=True)), Frames(4),
                          IdentityEngine(size=256), [sink])
    assert isinstance(pipe.deflicker, FlowBlend)
    assert pipe.run().summary()["frames_out"] == 4
    assert build_pipeline(PipelineConfig(), Frames(1), IdentityEngine(size=256), []).deflicker is None
