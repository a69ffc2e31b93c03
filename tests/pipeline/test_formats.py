"""Photos and containers: a photo in gives a photo of the same format out (upright, every face
converted, through the composition root), a folder of photos and videos converts, the encoder
follows the output container, an editor's ProRes/DNxHR/10-bit/4:2:2 input keeps its format in
.mov/.mkv, every common codec decodes, and NVENC is set up and replaced properly."""
from __future__ import annotations


import numpy as np
import pytest
from PIL import Image

from realtime.compose import FileInput, FileOutput, open_source
from realtime.convert import main
from realtime.sinks import (ImageFileSink, OutputError, VideoEncoding, VideoFileSink,
                            choose_encoding, encoder_opens, encoder_settings)
from realtime.sources import ImageSource, VideoFileSource, probe
from realtime.synthetic import face_scene

from .media import photo, stream_format, write_clip


def _run(args, capsys):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Photos
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".bmp"])
def test_photo_in_photo_out_same_format(tmp_path, capsys, suffix):
    src = photo(tmp_path / f"p{suffix}")
    code, err = _run([src, "--model", "identity"], capsys)          # default name beside it
    out = tmp_path / f"p_anime{suffix}"
    assert code == 0 and f"wrote {out} (1 face)" in err, err
    with Image.open(out) as im:
        assert im.format == Image.open(src).format and im.size == (320, 240)


def test_photo_exif_orientation_is_applied(tmp_path, capsys):
    src = photo(tmp_path / "phone.jpg", orientation=6)      # stored on its side
    assert Image.open(src).size == (240, 320)
    source = open_source(FileInput(src))
    assert isinstance(source, ImageSource) and source.frame_size == (320, 240)
    code, err = _run([src, "-o", tmp_path / "out.png", "--model", "identity",
                      "--output-mode", "side-by-side"], capsys)
    assert code == 0 and "(1 face)" in err, err
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (240, 640, 3)                       # upright, input and result
    upright = face_scene(320, 240)
    assert np.abs(out[:, :320].astype(int) - upright).mean() < 6     # JPEG noise only


def test_every_face_of_a_group_photo_is_converted(tmp_path, capsys):
    tile = face_scene(256, 240, face_frac=0.5)
    Image.fromarray(np.concatenate([tile] * 3, axis=1)).save(tmp_path / "group.png")
    code, err = _run([tmp_path / "group.png", "--model", "identity"], capsys)   # all by default
    assert code == 0 and "(3 faces)" in err, err
    code, err = _run([tmp_path / "group.png", "--model", "identity", "--max-faces", "2",
                      "--overwrite"], capsys)
    assert code == 0 and "(2 faces)" in err, err


def test_folder_of_photos_and_videos(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    photo(folder / "a.jpg")
    photo(folder / "b.png")
    write_clip(folder / "c.mov", n=4, w=320, h=240)
    (folder / "notes.txt").write_text("x")
    code, err = _run([folder, "-o", tmp_path / "out", "--model", "identity", "--jobs", "2"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        ["a_anime.jpg", "b_anime.png", "c_anime.mov"]
    assert "skipped 1 other file" in err


def test_photo_and_video_outputs_must_match_their_inputs(tmp_path, capsys):
    src = photo(tmp_path / "p.jpg")
    code, err = _run([src, "-o", tmp_path / "p.mp4", "--model", "identity"], capsys)
    assert code == 2 and "a photo converts to an image" in err
    clip = write_clip(tmp_path / "v.mp4", n=2)
    code, err = _run([clip, "-o", tmp_path / "v.png", "--model", "identity"], capsys)
    assert code == 2 and "a video converts to a video file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jpg", "v.mp4"]


def test_broken_photos_fail_cleanly(tmp_path, capsys):
    (tmp_path / "empty.png").write_bytes(b"")
    full = photo(tmp_path / "full.jpg")
    (tmp_path / "cut.jpg").write_bytes(full.read_bytes()[:300])
    for name in ("empty.png", "cut.jpg"):
        out = tmp_path / f"o_{name}"
        code, err = _run([tmp_path / name, "-o", out, "--model", "identity"], capsys)
        assert code == 1 and "Traceback" not in err and not out.exists(), err
        assert err.count(str(tmp_path / name)) == 1
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_image_sink_is_atomic(tmp_path):
    from realtime.types import Frame
    target = tmp_path / "keep.png"
    target.write_bytes(b"old")
    sink = ImageFileSink(target, width=8, height=8)
    sink.write(Frame(np.zeros((8, 8, 3), np.uint8), 0.0, 0))
    sink.abort()
    assert target.read_bytes() == b"old"
    with pytest.raises(OutputError, match="does not exist"):
        ImageFileSink(tmp_path / "nope" / "x.png", width=8, height=8)


# ---------------------------------------------------------------------------------------------
# Containers and codecs
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kw,fmt", [
    ("hevc.mkv", dict(codec="libx265", options={"x265-params": "log-level=error"}), "hevc"),
    ("vp9.webm", dict(codec="libvpx-vp9", audio_codec="libopus"), "vp9"),
    ("av1.mkv", dict(codec="libsvtav1"), "libdav1d"),
    ("mjpeg.avi", dict(codec="mjpeg", pix_fmt="yuvj420p"), "mjpeg"),
    ("prores.mov", dict(codec="prores_ks", pix_fmt="yuv422p10le", options={"profile": "hq"}), "prores"),
])
def test_common_codecs_decode(tmp_path, name, kw, fmt):
    src = write_clip(tmp_path / name, n=5, w=128, h=96, audio_s=0.2, **kw)
    assert probe(src).codec == fmt
    got = list(VideoFileSource(src))
    assert len(got) == 5 and got[0].image.shape == (96, 128, 3)


@pytest.mark.parametrize("src_name,kw,out_name,want", [
    # the container picks the encoder
    ("a.mp4", {}, "o.webm", ("vp9", "yuv420p", "opus")),
    ("a.mp4", {}, "o.mkv", ("h264", "yuv420p", "aac")),
    ("a.mp4", {}, "o.avi", ("h264", "yuv420p", "aac")),
    # an editor's format is kept in .mov / .mkv ...
    ("pr.mov", dict(codec="prores_ks", pix_fmt="yuv422p10le", options={"profile": "hq"}),
     "o.mov", ("prores", "yuv422p10le", "aac")),
    ("dnx.mov", dict(codec="dnxhd", pix_fmt="yuv422p10le", options={"profile": "dnxhr_hqx"}),
     "o.mov", ("dnxhd", "yuv422p10le", "aac")),
    # (this FFmpeg's Matroska muxer takes no DNxHD: H.264 of the same depth and chroma)
    ("dnx.mov", dict(codec="dnxhd", pix_fmt="yuv422p10le", options={"profile": "dnxhr_hqx"}),
     "o.mkv", ("h264", "yuv422p10le", "aac")),
    ("ten.mkv", dict(pix_fmt="yuv420p10le"), "o.mkv", ("h264", "yuv420p10le", "aac")),
    ("422.mov", dict(pix_fmt="yuv422p"), "o.mov", ("h264", "yuv422p", "aac")),
    # ... and not forced on MP4 (players expect 8-bit 4:2:0 there)
    ("422b.mov", dict(pix_fmt="yuv422p"), "o.mp4", ("h264", "yuv420p", "aac")),
])
def test_encoder_follows_the_container_and_keeps_editing_formats(tmp_path, capsys, src_name, kw,
                                                                  out_name, want):
    src = write_clip(tmp_path / src_name, n=4, w=320, h=240, audio_s=0.2, **kw)
    out = tmp_path / out_name
    code, err = _run([src, "-o", out, "--model", "identity"], capsys)
    assert code == 0, err
    f = stream_format(out)
    assert (f["codec"], f["pix_fmt"], f["audio"]) == want and f["frames"] == 4
    if want[0] == "prores":
        assert f["profile"] == "HQ"


def test_dnxhr_too_small_falls_back_to_h264_of_the_same_layout(tmp_path):
    src = write_clip(tmp_path / "dnx.mov", n=2, w=320, h=240, codec="dnxhd", pix_fmt="yuv422p",
                     options={"profile": "dnxhr_sq"})
    enc = choose_encoding(tmp_path / "crop.mov", info=probe(src), size=(64, 64))
    assert (enc.codec, enc.pix_fmt) == ("libx264", "yuv422p")


# ---------------------------------------------------------------------------------------------
# NVENC (issue 12, defect 10): no NVENC here, so what a CPU can show
# ---------------------------------------------------------------------------------------------
def test_nvenc_rate_control_is_constant_quality_without_a_cap():
    opts, bit_rate = encoder_settings("h264_nvenc", crf=20, preset="veryfast")
    assert opts["rc"] == "vbr" and opts["cq"] == "20" and bit_rate == 0
    assert opts["preset"] in {f"p{i}" for i in range(1, 8)} and opts["tune"] == "hq"
    assert encoder_settings("libvpx-vp9")[1] == 0          # VP9's constant-quality mode


def test_encoder_is_probed_at_the_real_size():
    assert encoder_opens("libx264", 320, 240)
    assert not encoder_opens("mpeg4", 8192, 8192)          # MPEG-4 part 2 stops at 8191
    with pytest.raises(OutputError, match="8192x8192"):
        choose_encoding("big.mp4", "mpeg4", size=(8192, 8192))


def test_nvenc_failing_at_the_first_frame_falls_back_without_losing_frames(tmp_path):
    """The sink is told to use NVENC (as after a probe that passed); it fails on this machine at
    the first frame, and the file is made with libx264, every frame and the audio in it."""
    src = write_clip(tmp_path / "in.mp4", n=6, w=320, h=240, audio_s=0.3)
    warnings = []
    source = VideoFileSource(src)
    nvenc = VideoEncoding("h264_nvenc", "yuv420p", *encoder_settings("h264_nvenc"))
    sink = VideoFileSink(tmp_path / "out.mp4", width=320, height=240, info=source.info,
                         audio_from=str(src), encoding=nvenc, warn=warnings.append)
    for f in source:
        sink.write(f)
    sink.close()
    f = stream_format(tmp_path / "out.mp4")
    assert f["frames"] == 6 and f["codec"] == "h264" and f["audio"] == "aac"
    assert len(warnings) == 1 and "h264_nvenc failed at the first frame" in warnings[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


def test_file_output_spec_names_an_image_sink(tmp_path):
    from realtime.compose import make_sinks
    sinks = make_sinks([FileOutput(tmp_path / "x.webp")], (32, 24), 1.0)
    assert isinstance(sinks[0], ImageFileSink) and sinks[0].format == "WEBP"
