"""The battery of hostile inputs (issue 13): each case runs an app in process on media made in
code and must end with its exit status, one clear last line, no traceback, and nothing partial
or hidden in the output folder. Signals are in test_hardening.py and test_convert.py (they need
a child process or a signal to this one).

``python -m tests.pipeline.test_battery`` prints the table (input, exit status, last line)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from realtime.synthetic import face_scene, write_audio_only, write_video

from .media import cut, damage_middle, frames, not_checkpoints, photo, write_clip

DEMO_CKPT = Path(__file__).resolve().parents[2] / "realtime" / "assets" / "demo_model.pt"


@dataclass
class Case:
    """``make(lib, inp, out)`` returns the command line (inputs in ``inp``, outputs in ``out``)."""
    name: str
    make: Callable[["Library", Path, Path], list]
    code: int
    needle: str                                   # a regex the last line must match
    outputs: tuple[str, ...] = ()                 # what ``out`` holds afterwards
    app: str = "convert"
    needs_root: bool = False
    keep: dict = field(default_factory=dict)


class Library:
    """Media shared by the cases, made once (read only)."""

    def __init__(self, root: Path):
        self.root = root
        r = root
        self.clip = write_video(r / "clip.mp4", frames(12, 320, 240), audio_s=0.5)
        self.faststart = write_video(r / "fs.mp4", frames(40, 320, 240), audio_s=1.6, faststart=True)
        self.long_mp4 = write_video(r / "long.mp4", frames(40, 320, 240), audio_s=1.6)
        self.mkv = write_video(r / "v.mkv", frames(40, 160, 120), audio_s=1.6)
        self.webm = write_video(r / "v.webm", frames(40, 160, 120), audio_s=1.6, codec="libvpx-vp9",
                                audio_codec="libopus")
        self.avi = write_video(r / "v.avi", frames(40, 160, 120), audio_s=1.6, codec="mpeg4")
        self.mov = write_video(r / "v.mov", frames(40, 160, 120), audio_s=1.6)
        self.ts = write_video(r / "v.ts", frames(40, 160, 120), audio_s=1.6)
        self.bad_ckpts = not_checkpoints(r / "ckpts")

    def copy(self, src: Path, inp: Path, name: str | None = None) -> Path:
        dst = inp / (name or src.name)
        shutil.copyfile(src, dst)
        return dst


def _mk(fn):
    """A case maker from ``fn(lib, inp) -> input path`` converted into ``out/o<suffix>``."""
    def make(lib, inp, out):
        src = fn(lib, inp)
        return [src, "-o", out / f"o{_out_suffix(src)}", "--model", "identity"]
    return make


def _out_suffix(src: Path) -> str:
    from realtime.convert import output_suffix
    return output_suffix(Path(src))


def _with(fn, *extra):
    def make(lib, inp, out):
        return fn(lib, inp, out) + list(extra)
    return make


def _ckpt(fn):
    def make(lib, inp, out):
        return [lib.clip, "-o", out / "o.mp4", "--checkpoint", fn(lib, inp)]
    return make


def _flags(*flags):
    def make(lib, inp, out):
        return [lib.clip, "-o", out / "o.mp4", "--model", "identity", *flags]
    return make


def _bytes(name, data):
    def fn(lib, inp):
        p = inp / name
        p.write_bytes(data)
        return p
    return fn


def _clip(name, **kw):
    return lambda lib, inp: write_clip(inp / name, **kw)


def _video(name, imgs, **kw):
    return lambda lib, inp: write_video(inp / name, imgs() if callable(imgs) else imgs, **kw)


def _pickled(lib, inp):
    p = inp / "objects.pt"
    torch.save({"G_A2B_ema": {"w": torch.zeros(2)}, "opts": _Options()}, p)
    return p


class _Options:
    """A custom object pickled into a checkpoint."""


def _wrong_keys(lib, inp):
    p = inp / "other.pt"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, p)
    return p


def _style_vector(data):
    def make(lib, inp, out):
        p = inp / "style.npy"
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            np.save(p, data)
        return [lib.clip, "-o", out / "o.mp4", "--model", "demo", "--style-vector", p]
    return make


def _two_inputs_into_a_file(lib, inp, out):
    (out / "exists.mp4").write_bytes(b"keep")
    return [lib.clip, lib.mkv, "-o", out / "exists.mp4", "--model", "identity"]


def _existing(overwrite):
    def make(lib, inp, out):
        (out / "o.mp4").write_bytes(b"keep me")
        return [lib.clip, "-o", out / "o.mp4", "--model", "identity"] + \
            (["--overwrite"] if overwrite else [])
    return make


def _mount(out: Path, options: str) -> None:
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(out)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")


def _read_only(lib, inp, out):
    _mount(out, "ro,size=64k")
    return [lib.clip, "-o", out / "o.mp4", "--model", "identity"]


def _disk_full(lib, inp, out):
    _mount(out, "size=64k")
    big = write_video(inp / "big.mp4", frames(40, 640, 480), audio_s=1.5)
    return [big, "-o", out / "o.mp4", "--model", "identity", "--crf", "0"]


def _folder_with_leftovers(lib, inp, out):
    folder = inp / "clips"
    folder.mkdir()
    lib.copy(lib.clip, folder, "a.mp4")
    lib.copy(lib.clip, folder, "a_anime.mp4")
    (folder / ".a_anime.mp4.k2j4.part.mp4").write_bytes(b"\0" * 64)
    return [folder, "-o", out, "--model", "identity"]


def _many_faces(lib, inp):
    tile = face_scene(320, 240, face_frac=0.5)
    frame = np.concatenate([np.concatenate([tile] * 3, axis=1)] * 3, axis=0)     # 960x720
    return write_video(inp / "crowd.mp4", [frame] * 3)


def _rotated(lib, inp):
    return write_video(inp / "rot.mp4", [np.ascontiguousarray(np.rot90(f, -1))
                                         for f in frames(4, 320, 240)], rotation=90)


def _webcam(*flags):
    def make(lib, inp, out):
        return ["--input", lib.clip, "--no-window", "--model", "identity", "--max-frames", "5",
                "--record", out / "rec.mp4", *flags]
    return make


def _refused_port() -> str:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"tcp://127.0.0.1:{port}"


V = ("o.mp4",)
CASES = [
    # --- video inputs that are not (whole) videos
    Case("empty file", _mk(_bytes("e.mp4", b"")), 1, r"the file is empty \(0 bytes\)"),
    Case("random bytes", _mk(_bytes("r.mp4", np.random.default_rng(0).bytes(20000))), 1,
         "not a readable video file"),
    Case("a text file named .mp4", _mk(_bytes("t.mp4", b"hello\n" * 100)), 1, "not a readable video"),
    Case("audio only (.m4a)", _mk(lambda lib, inp: write_audio_only(inp / "a.m4a")), 1,
         "has no video stream"),
    Case("MP4 cut at 50% (index at the end)", _mk(lambda lib, inp: cut(lib.long_mp4, inp / "c.mp4", .5)),
         1, "not a readable video"),
    Case("MP4 cut at 95% (inside the index)",
         _mk(lambda lib, inp: cut(lib.long_mp4, inp / "c.mp4", .95)), 1, "truncated"),
    Case("faststart MP4 cut at 50%", _mk(lambda lib, inp: cut(lib.faststart, inp / "c.mp4", .5)), 1,
         "truncated"),
    Case("faststart MP4 cut at 95%", _mk(lambda lib, inp: cut(lib.faststart, inp / "c.mp4", .95)), 1,
         "truncated"),
    Case("faststart MP4 cut at 99%", _mk(lambda lib, inp: cut(lib.faststart, inp / "c.mp4", .99)), 1,
         "truncated"),
    Case("MOV cut at 95%", _mk(lambda lib, inp: cut(lib.mov, inp / "c.mov", .95)), 1, "truncated"),
    Case("MKV cut at 80%", _mk(lambda lib, inp: cut(lib.mkv, inp / "c.mkv", .8)), 1, "truncated"),
    Case("WebM cut at 50%", _mk(lambda lib, inp: cut(lib.webm, inp / "c.webm", .5)), 1, "truncated"),
    Case("AVI cut at 80%", _mk(lambda lib, inp: cut(lib.avi, inp / "c.avi", .8)), 1, "truncated"),
    Case("MP4 with 2 KB of noise in the middle",
         _mk(lambda lib, inp: damage_middle(lib.long_mp4, inp / "d.mp4")), 1, "corrupt"),
    Case("MPEG-TS cut at 50% (a stream: no declared length)",
         _mk(lambda lib, inp: cut(lib.ts, inp / "c.ts", .5)), 0, r"wrote .*o\.ts", ("o.ts",)),
    Case("missing input", lambda lib, inp, out: [inp / "nope.mp4", "-o", out / "o.mp4", "--model",
                                                 "identity"], 2, "no such file or folder"),
    Case("empty folder", lambda lib, inp, out: [inp, "-o", out, "--model", "identity"], 2,
         "holds no videos or photos"),
    # --- valid but unusual videos
    Case("no face", _mk(_video("n.mp4", [np.full((120, 160, 3), 40, np.uint8)] * 4)), 0,
         r"wrote .*\(4 frames, 0 faces", V),
    Case("nine faces, --max-faces 16", _with(_mk(_many_faces), "--max-faces", "16"), 0,
         r"wrote .*\(3 frames, \d\d faces", V),
    Case("16x16 frames", _mk(_video("s.mp4", lambda: frames(3, 16, 16))), 0, "wrote", V),
    Case("64x64 frames", _mk(_video("s.mp4", lambda: frames(3, 64, 64))), 0, "wrote", V),
    Case("odd size 641x479", _mk(_video("odd.mkv", lambda: frames(3, 641, 479), codec="libx264rgb")),
         0, "wrote", ("o.mkv",)),
    Case("4000x64 (huge aspect)", _mk(_video("w.mp4", lambda: frames(2, 4000, 64))), 0, "wrote", V),
    Case("64x2000 (huge aspect)", _mk(_video("t.mp4", lambda: frames(2, 64, 2000))), 0, "wrote", V),
    Case("rotated 90°", _mk(_rotated), 0, "wrote", V),
    Case("variable frame rate", _mk(_video("vfr.mp4", lambda: frames(6, 320, 240),
                                           timestamps_s=[0, .04, .1, .3, .34, 1.5])), 0, "wrote", V),
    Case("10-bit H.264 (.mkv)", _mk(_clip("ten.mkv", pix_fmt="yuv420p10le", w=320, h=240)), 0,
         "wrote", ("o.mkv",)),
    Case("4:2:2 H.264 (.mov)", _mk(_clip("422.mov", pix_fmt="yuv422p", w=320, h=240)), 0, "wrote",
         ("o.mov",)),
    Case("ProRes 422 HQ (.mov)", _mk(_clip("p.mov", codec="prores_ks", pix_fmt="yuv422p10le",
                                           w=320, h=240)), 0, "wrote", ("o.mov",)),
    Case("HEVC 10-bit (.mkv)", _mk(_clip("h.mkv", codec="libx265", pix_fmt="yuv420p10le",
                                         options={"x265-params": "log-level=error"})), 0, "wrote",
         ("o.mkv",)),
    Case("VP9 (.webm)", _mk(_clip("v.webm", codec="libvpx-vp9")), 0, "wrote", ("o.webm",)),
    Case("MJPEG (.avi)", _mk(_clip("m.avi", codec="mjpeg", pix_fmt="yuvj420p")), 0, "wrote", ("o.avi",)),
    # --- outputs
    Case("output folder missing", lambda lib, inp, out: [lib.clip, "-o", out / "no" / "o.mp4",
                                                         "--model", "identity"], 2, "does not exist"),
    Case("output folder read-only", _read_only, 1, "cannot write", needs_root=True),
    Case("disk full (64 KB)", _disk_full, 1, "No space left on device", needs_root=True),
    Case("output exists", _existing(False), 0, r"skipped .*output exists \(use --overwrite\)", V,
         keep={"o.mp4": b"keep me"}),
    Case("output exists, --overwrite", _existing(True), 0, "wrote", V),
    Case("output is the input", lambda lib, inp, out: [lib.copy(lib.clip, out), "-o", out / "clip.mp4",
                                                       "--model", "identity"], 2,
         "is the input itself", ("clip.mp4",)),
    Case("two inputs into one file", _two_inputs_into_a_file, 2, "several inputs need a folder",
         ("exists.mp4",)),
    Case("a video into .png", lambda lib, inp, out: [lib.clip, "-o", out / "o.png", "--model",
                                                     "identity"], 2, "a video converts to a video"),
    Case("--codec libx264 into .webm", lambda lib, inp, out: [lib.clip, "-o", out / "o.webm",
                                                              "--model", "identity", "--codec",
                                                              "libx264"], 2, "does not support"),
    Case("folder into itself, with a leftover .part.mp4 and an earlier output",
         _folder_with_leftovers, 0, r"wrote .*a_anime\.mp4", ("a_anime.mp4",)),
    # --- checkpoints
    *[Case(f"--checkpoint: {kind}", _ckpt(lambda lib, inp, k=kind: lib.bad_ckpts[k]), 2,
           f"not a PyTorch checkpoint: it looks like {what}")
      for kind, what in (("empty", "nothing"), ("text", "a text file"), ("png", "a PNG image"),
                         ("mp4", "an MP4/MOV video"), ("json", "a JSON file"),
                         ("random", "binary data"))],
    Case("--checkpoint holding pickled objects", _ckpt(_pickled), 2,
         r"pickled Python objects \(.*_Options\)"),
    Case("--checkpoint of another model", _ckpt(_wrong_keys), 2, "not a GNR checkpoint|no GNR"),
    Case("--checkpoint cut in half", _ckpt(lambda lib, inp: cut(DEMO_CKPT, inp / "half.pt", .5)), 2,
         "could not read .* \\(truncated or damaged\\?\\)"),
    Case("--checkpoint is a folder", _ckpt(lambda lib, inp: inp), 2, "is a folder"),
    Case("--checkpoint missing", _ckpt(lambda lib, inp: inp / "nope.pt"), 2, "no such file"),
    # --- styles
    Case("--style-vector: a text file", _style_vector(b"0.1 0.2\n"), 2, "style-vector|\\.npy"),
    Case("--style-vector: 3 numbers", _style_vector(np.zeros(3, np.float32)), 2, "8"),
    Case("--style-image: not an image", lambda lib, inp, out: [
        lib.clip, "-o", out / "o.mp4", "--model", "demo", "--style-image",
        _bytes("s.png", b"no")(lib, inp)], 2, "image"),
    Case("--style -1", _flags("--style", "-1"), 2, "--style"),
    # --- flags
    *[Case(f"{' '.join(f)}", _flags(*f), 2, re.escape(f[0]))
      for f in (("--max-faces", "0"), ("--max-faces", "17"), ("--min-face", "-5"),
                ("--crop-widen", "0"), ("--batch-frames", "0"), ("--jobs", "0"), ("--crf", "99"),
                ("--preset", "quick"), ("--codec", "nosuch"))],
    Case("--device cuda (no GPU here)", _flags("--device", "cuda"), 2, "CUDA|cuda"),
    # --- photos
    Case("phone photo (EXIF rotated)", lambda lib, inp, out: [photo(inp / "p.jpg", orientation=6),
                                                              "-o", out / "p.jpg", "--model",
                                                              "identity"], 0,
         r"wrote .*p\.jpg \(1 face\)", ("p.jpg",)),
    Case("empty .png", _mk(_bytes("e.png", b"")), 1, "the file is empty"),
    Case("JPEG cut after 300 bytes", _mk(lambda lib, inp: cut(photo(inp / "f.jpg"), inp / "c.jpg",
                                                            300 / (inp / "f.jpg").stat().st_size)),
         1, "not a readable image"),
    Case("a photo into .mp4", lambda lib, inp, out: [photo(inp / "p.png"), "-o", out / "p.mp4",
                                                     "--model", "identity"], 2,
         "a photo converts to an image"),
    # --- the live app
    Case("webcam --stream notaurl://x", _webcam("--stream", "notaurl://x"), 2,
         "unsupported protocol", app="webcam"),
    Case("webcam --stream to an unknown host", _webcam("--stream", "udp://no.such.host.invalid:5000"),
         2, "unknown host", app="webcam"),
    Case("webcam --stream to a refused TCP port", lambda lib, inp, out: _webcam(
        "--stream", _refused_port())(lib, inp, out), 2, "Connection refused", app="webcam"),
    Case("webcam --json into a missing folder", _webcam("--json", "/nonexistent/run.json"), 2,
         "does not exist", app="webcam"),
    Case("webcam --input an empty file", lambda lib, inp, out: [
        "--input", _bytes("e.mp4", b"")(lib, inp), "--no-window", "--model", "identity"], 2,
         "empty", app="webcam"),
    # --- the exporter
    Case("export onnx --checkpoint an MP4", lambda lib, inp, out: [
        "onnx", "--checkpoint", lib.bad_ckpts["mp4"], "-o", out / "m.onnx"], 1,
         "not a PyTorch checkpoint", app="export"),
]


def run_case(case: Case, lib: Library, base: Path, capture) -> tuple[int, str, list, dict]:
    """Run one case: (exit status, stderr, what the output folder holds, the kept files)."""
    inp, out = base / "in", base / "out"
    inp.mkdir(parents=True)
    out.mkdir()
    try:
        args = [str(a) for a in case.make(lib, inp, out)]
        if case.app == "convert":
            from realtime.convert import main
        elif case.app == "webcam":
            from realtime.webcam import main
        else:
            from export.__main__ import main
        code = main(args)
        err = capture()
        listing = sorted(p.name for p in out.iterdir())
        kept = {name: (out / name).read_bytes() for name in case.keep}
    finally:
        subprocess.run(["umount", str(out)], capture_output=True)
    return code, err, listing, kept


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return Library(tmp_path_factory.mktemp("library"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_battery(case, lib, tmp_path, capsys):
    code, err, listing, kept = run_case(case, lib, tmp_path, lambda: capsys.readouterr().err)
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert "Traceback" not in err, err
    assert code == case.code and re.search(case.needle, last), (code, err)
    assert listing == sorted(case.outputs), listing               # nothing partial, nothing hidden
    assert kept == case.keep


def main() -> None:
    """Print the battery as a Markdown table (input, exit status, last line)."""
    import io
    import tempfile
    from contextlib import redirect_stderr
    rows = []
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "lib").mkdir()
        lib = Library(Path(d) / "lib")
        for i, case in enumerate(CASES):
            buf = io.StringIO()
            try:
                with redirect_stderr(buf):
                    code, err, listing, _ = run_case(case, lib, Path(d) / f"case{i}", buf.getvalue)
            except BaseException as e:  # noqa: BLE001 - a skipped case (no root) is reported
                rows.append(f"| {case.name} | – | skipped: {e} |")
                continue
            last = err.strip().splitlines()[-1] if err.strip() else ""
            last = re.sub(r"/tmp/[^ ]*/case\d+/(in|out)/", "", last).replace("|", "\\|")
            ok = "" if code == case.code and re.search(case.needle, last) else " **(unexpected)**"
            rows.append(f"| {case.name} | {code}{ok} | {last} |")
    print("| input | exit | last line |\n|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
