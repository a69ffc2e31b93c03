"""``python -m realtime.doctor``: what this machine can run, checked end to end. Run it first.

    python -m realtime.doctor                       # a verdict per item; writes results/doctor.json
    python -m realtime.doctor --json out.json --frames 300 --device cuda:1

1. **The machine** (:mod:`realtime.machine`): GPUs, driver, CUDA, cuDNN, PyTorch, onnxruntime
   (providers; which of its distributions are installed, and the fix when both are), TensorRT,
   torch.compile's Triton, the video encoders that really open at 1920x1080 (NVENC), MediaPipe's
   bundled face models, PyAV, and what ``--backend auto`` can use here.
2. **Parity** of every backend that runs here with the float32 CPU model, on random weights and
   real face crops, at :mod:`export.verify`'s tolerances (float32: max abs error 1e-4; fp16:
   PSNR 40 dB). On the CPU: torch and onnxruntime, float32, a small model. On CUDA, the released
   size (256x256): torch fp16 + CUDA graphs — captured while a live pipeline uploads, aligns and
   pastes frames on the same GPU —, the same under torch.compile, onnxruntime CUDA fp16 and
   fp32 (TF32 off), onnxruntime's TensorRT provider and TensorRT itself where installed, and the
   graphs engine on a second GPU where there is one; each with ms per batch at batch 1 and 8.
3. **``--backend auto``** on a checkpoint of that model, style as an input (as the webcam): the
   choice, the measured candidates and the reasons.
4. **Convert**: a synthesized clip through :func:`realtime.convert.convert_file` with that engine;
   every frame written, faces found and changed.
5. **Live**: the clip looped as a camera, headless (as ``python -m realtime.webcam --input``),
   with a style change midway: frames, drops, latency p50/p95.

Verdicts: ok, warn, skip (not available here; the reason is given), fail. Exit status 0 when
nothing failed, 1 otherwise, 2 for a bad option. Without CUDA it says so in one line, checks the
CPU paths (about a minute on 2 cores) and exits 0. On a GPU it takes a few minutes, most of them
torch.compile's first compile (Inductor's cache makes the next run faster).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from training.messages import one_line

SCHEMA = "gnr-anime/doctor"
SCHEMA_VERSION = 1
VERDICTS = ("ok", "warn", "skip", "fail")
SMALL_CONFIG = dict(size=64, num_down=2, channel_divisor=8)      # the demo model's shape
STYLE_SEED = 7
CLIP_FRAMES = 24


class Skip(Exception):
    """A check that cannot run here (the message says why)."""


class Failed(Exception):
    """A check that ran and found a problem (the message says what)."""


@dataclass
class Item:
    name: str
    verdict: str
    detail: str
    seconds: float = 0.0
    data: dict = field(default_factory=dict)


# =============================================================================================
# Helpers
# =============================================================================================
def random_generator(cfg, seed: int = 0):
    """A GNR generator of config ``cfg`` with random (seeded) weights, on the CPU."""
    import torch

    from training.networks import Generator

    torch.manual_seed(seed)
    return Generator.from_config(cfg).eval().requires_grad_(False)


def time_batches(engine, batches=(1, 8), reps: int = 20) -> dict[str, float]:
    """Median ms per batch at each size (synchronised on the engine's device)."""
    import torch

    out = {}
    for b in batches:
        x = torch.zeros(b, 3, engine.size, engine.size, device=engine.device)
        times = []
        for i in range(reps + 3):
            t = time.perf_counter()
            engine(x)
            if engine.device.type == "cuda":
                torch.cuda.synchronize(engine.device)
            if i >= 3:
                times.append(time.perf_counter() - t)
        out[f"batch {b}"] = round(sorted(times)[len(times) // 2] * 1000, 3)
    return out


class Parity:
    """Float32 CPU reference outputs of one generator on real face crops, per style."""

    def __init__(self, G, n: int = 4):
        from export.verify import astronaut_crops

        self.G, self.crops, self.refs = G, astronaut_crops(G.config.size, n=n), {}

    def check(self, engine, style, precision: str) -> tuple[str, dict]:
        """(detail, data) when ``engine``'s output is within tolerance; Failed otherwise."""
        from export.verify import compare, passes, reference_output, tolerance

        if style.vector not in self.refs:
            self.refs[style.vector] = reference_output(self.G, self.crops, style)
        if hasattr(engine, "set_style"):
            engine.set_style(style)
        out = engine(self.crops.to(engine.device)).float().cpu()
        m = compare(self.refs[style.vector], out)
        tol = tolerance(precision)
        bound = f"max abs <= {tol[1]:g}" if tol[0] == "max_abs" else f"PSNR >= {tol[1]:g} dB"
        data = {"engine": engine.name, "max_abs": m.max_abs, "mean_abs": m.mean_abs,
                "psnr_db": m.psnr_db, "tolerance": bound}
        if not passes(m, tol):
            raise Failed(f"{engine.name}: {m}, outside {bound}")
        return f"{m} ({bound})", data


class LoadPipeline:
    """A live pipeline running on ``device`` in a thread (identity engine: decode, upload,
    align, paste), to capture CUDA graphs beside it."""

    what = "a live pipeline (upload, align, paste)"

    def __init__(self, clip: Path, device: str):
        from .compose import LoopedInput, PipelineConfig, build_pipeline, open_source
        from .engines import IdentityEngine

        source = open_source(LoopedInput(clip, loop=True, paced=False))
        self.pipe = build_pipeline(PipelineConfig(live=True), source,
                                   IdentityEngine(size=256, device=device), [])
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="doctor-load", daemon=True)

    def _run(self):
        try:
            self.pipe.run()
        except BaseException as e:  # noqa: BLE001 - reported by the check
            self.error = e

    @property
    def frames(self) -> int:
        return self.pipe.stats.frames_out

    def __enter__(self):
        self.thread.start()
        t0 = time.monotonic()        # wait until frames flow (the tracker starts first)
        while self.frames < 3 and time.monotonic() - t0 < 30 and self.error is None:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.pipe.stop()
        self.thread.join(timeout=10)
        return False


class Recorder:
    """Wraps a style-as-input engine and records (time, style) at each batch it runs."""

    def __init__(self, engine):
        self.engine, self.seen = engine, []

    def set_style(self, style) -> None:
        self.engine.set_style(style)

    def __call__(self, crops):
        self.seen.append((time.monotonic(), self.engine.style.numpy().copy()))
        return self.engine(crops)

    def __getattr__(self, name):
        return getattr(self.engine, name)


class GpuBusy(LoadPipeline):
    """Where PyAV or MediaPipe are missing: a thread doing what a pipeline's face and output
    threads do to the GPU (upload 1280x720 frames, resize, blend, allocate), without them."""

    what = "a thread uploading, resizing and blending frames"

    def __init__(self, device: str):
        self.device, self.error, self.count = device, None, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="doctor-load", daemon=True)

    def _run(self):
        import numpy as np
        import torch

        frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), np.uint8)
        try:
            while not self.stop.is_set():
                x = torch.from_numpy(frame).to(self.device).permute(2, 0, 1)[None].float()
                crop = torch.nn.functional.interpolate(x, size=(256, 256), mode="bilinear")
                x[..., :256, :256] = 0.5 * x[..., :256, :256] + 0.5 * crop
                x.to(torch.uint8).cpu()
                self.count += 1
        except BaseException as e:  # noqa: BLE001 - reported by the check
            self.error = e

    @property
    def frames(self) -> int:
        return self.count

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)
        return False


# =============================================================================================
# The doctor
# =============================================================================================
class Doctor:
    def __init__(self, device: str, frames: int | None, work: Path, say: Callable[[str], None]):
        import torch

        from training.device import resolve_device

        self.items: list[Item] = []
        self.say, self.work = say, work
        self.cuda = torch.cuda.is_available()
        self.device = resolve_device(device)        # a torch.device
        self.device_arg = device
        self.on_gpu = self.device.type == "cuda"
        self.frames = frames or (300 if self.on_gpu else 60)
        self.clip: Path | None = None
        self.media = False                  # PyAV and MediaPipe's face models are here

    def run(self, name: str, fn: Callable, *args):
        """Run one check and record its verdict. ``fn`` returns (detail, data) or
        (detail, data, verdict); it raises Skip or Failed, or anything (a fail)."""
        t0 = time.monotonic()
        data: dict = {}
        try:
            out = fn(*args)
            detail, data = out[0], out[1]
            verdict = out[2] if len(out) > 2 else "ok"
        except Skip as e:
            verdict, detail = "skip", str(e)
        except Failed as e:
            verdict, detail = "fail", str(e)
        except Exception as e:  # noqa: BLE001 - any error fails this item, in one line
            verdict, detail = "fail", one_line(e)
        item = Item(name, verdict, detail, round(time.monotonic() - t0, 2), data)
        self.items.append(item)
        self.say(f"  [{verdict:^4}] {name}: {detail} ({item.seconds:.1f} s)")
        return item

    # -- the machine ------------------------------------------------------------------------------
    def machine(self) -> dict:
        from . import machine
        from .engines.select import Capabilities, EngineRequest, rank_candidates

        facts = machine.collect()
        for line in machine.describe(facts):
            self.say(f"  {line}")
        caps = Capabilities.detect()
        dev = str(self.device) if self.on_gpu else self.device_arg
        cands, skipped = rank_candidates(EngineRequest(checkpoint=Path("model.pt"), device=dev),
                                         caps)
        facts["auto_candidates"] = [c.label for c in cands]
        facts["auto_not_used"] = skipped
        self.say(f"  --backend auto for a checkpoint (--device {dev}) can use: "
                 + ", ".join(c.label for c in cands))
        self.caps, self.facts = caps, facts
        self.media = "version" in facts["pyav"] and \
            bool(facts["mediapipe"].get("face_models_bundled"))
        return facts

    def install_checks(self) -> None:
        f = self.facts
        o = f["onnxruntime"]

        def ort():
            if o.get("problem"):
                raise Failed(o["problem"])
            if "error" in o:
                raise Failed(f"onnxruntime {o['error']}: pip install 'gnr-anime[cpu]' (or [gpu])")
            return f"{', '.join(o['distributions'])} installed alone", o

        def encoders():
            e = f.get("encoders", {})
            if "error" in e:
                raise Failed(e["error"])
            if not e.get("libx264"):
                raise Failed("libx264 does not open: this PyAV cannot write H.264 files")
            nv = [c for c in ("h264_nvenc", "hevc_nvenc") if e.get(c)]
            return (f"NVENC opens at 1920x1080 ({', '.join(nv)})" if nv else
                    "no NVENC at 1920x1080 (none on this GPU, or no GPU): libx264 encodes"), e

        def mediapipe():
            m = f["mediapipe"]
            if "error" in m or not m["face_models_bundled"]:
                raise Failed(m.get("error") or f"face models missing: {m['missing']} "
                                                "(pip install mediapipe==0.10.21)")
            return f"MediaPipe {m['version']}, face models bundled", m

        self.run("onnxruntime install", ort)
        self.run("video encoders", encoders)
        self.run("mediapipe", mediapipe)

    # -- parity -----------------------------------------------------------------------------------
    def cpu_parity(self) -> None:
        from export.onnx import export_onnx
        from training.config import ModelConfig
        from training.style import StyleCode

        from .engines.onnxruntime import open_onnx
        from .engines.torch import TorchEngine

        G = random_generator(ModelConfig(**SMALL_CONFIG))
        style = StyleCode.from_seed(STYLE_SEED)
        par = Parity(G)
        self.run("torch-cpu fp32 parity", lambda: par.check(
            TorchEngine(G, style, device="cpu", max_batch=4), style, "fp32"))

        def ort():
            path = self.work / "small-cpu.onnx"
            export_onnx(G, path, style=style, target="cpu")
            return par.check(open_onnx(path, device="cpu", max_batch=4), style, "fp32")
        self.run("onnxruntime-cpu fp32 parity", ort)

    def gpu_backends(self, G, clip: Path | None) -> None:
        """Every CUDA backend on the released-size model: parity and ms per batch."""
        import torch

        from export.onnx import export_onnx
        from training.style import StyleCode

        from .engines.base import BackendUnavailableError
        from .engines.onnxruntime import open_onnx
        from .engines.torch import TorchEngine

        style = StyleCode.from_seed(STYLE_SEED)
        par = Parity(G)
        dev = str(self.device)
        onnx: dict[str, Path] = {}

        def exported(precision: str) -> Path:
            if precision not in onnx:
                onnx[precision] = self.work / f"released-{precision}.onnx"
                export_onnx(G, onnx[precision], style=style, precision=precision, target="gpu")
            return onnx[precision]

        def measured(engine, precision, extra=None):
            detail, data = par.check(engine, style, precision)
            data["ms_per_batch"] = time_batches(engine)
            data.update(extra or {})
            engine.close()
            return f"{detail}; ms per batch {data['ms_per_batch']}", data

        def graphs_under_load():
            load = LoadPipeline(clip, dev) if clip is not None and self.media else GpuBusy(dev)
            with load:
                t0 = time.monotonic()
                eng = TorchEngine(G, style, device=dev, max_batch=8)
                opened = time.monotonic() - t0
                before = load.frames
                time.sleep(0.5)
                during = load.frames - before
            if load.error is not None:
                raise Failed(f"{load.what} beside the capture failed: {one_line(load.error)}")
            if load.frames < 3 or during < 1:
                raise Failed(f"{load.what} beside the capture stalled ({load.frames} frames)")
            return measured(eng, "fp16", {"captured_batches": list(eng.captured_batches),
                                          "open_s": round(opened, 1), "beside": load.what,
                                          "load_frames": load.frames})
        self.run("torch-cuda fp16 +cudagraphs, captured while another thread uses the GPU",
                 graphs_under_load)

        def compiled():
            if not self.caps.torch_compile:
                raise Skip("torch.compile cannot build CUDA kernels here (Triton missing)")
            t0 = time.monotonic()
            eng = TorchEngine(G, style, device=dev, max_batch=8, compiled=True)
            return measured(eng, "fp16", {"open_s": round(time.monotonic() - t0, 1),
                                          "cache": str(eng.compile_cache)})
        self.run("torch-cuda fp16 +compile +cudagraphs", compiled)

        def ort(precision: str, tensorrt_ep: bool = False):
            if not self.caps.ort_cuda:
                raise Skip(self.caps.ort_problem or "this onnxruntime has no CUDA provider "
                                                    "(install onnxruntime-gpu for this CUDA)")
            if tensorrt_ep and "TensorrtExecutionProvider" not in self.caps.ort_providers:
                raise Skip("this onnxruntime build has no TensorRT provider")
            try:
                eng = open_onnx(exported(precision), device=dev, max_batch=8,
                                tensorrt_ep=tensorrt_ep, trt_cache_dir=self.work / "ort-trt")
            except BackendUnavailableError as e:
                if tensorrt_ep:                 # listed, but TensorRT's libraries are absent
                    raise Skip(one_line(e)) from None
                raise
            return measured(eng, precision)
        self.run("onnxruntime-cuda fp16", ort, "fp16")
        self.run("onnxruntime-cuda fp32 (TF32 off)", ort, "fp32")
        self.run("onnxruntime-tensorrt fp16", ort, "fp16", True)

        def tensorrt():
            if self.caps.tensorrt is None:
                raise Skip(self.facts["tensorrt"].get("reason", "TensorRT is not installed"))
            from export.tensorrt import build_engine

            from .engines.tensorrt import open_tensorrt
            path = self.work / "released-fp16.engine"
            side = build_engine(exported("fp16"), path, fp16=True, batch=(1, 4, 8),
                                device_index=self.device.index or 0)
            return measured(open_tensorrt(path, device=dev), "fp16",
                            {"build_s": side["build_seconds"]})
        self.run("tensorrt fp16", tensorrt)

        def second_gpu():
            if torch.cuda.device_count() < 2:
                raise Skip("one GPU: the cuda:1 check needs two")
            other = f"cuda:{1 if (self.device.index or 0) == 0 else 0}"
            return measured(TorchEngine(G, style, device=other, max_batch=4), "fp16")
        self.run("torch-cuda fp16 +cudagraphs on another GPU", second_gpu)

    # -- the product path ---------------------------------------------------------------------------
    def auto_engine(self, G):
        """``--backend auto`` on a checkpoint of ``G`` (style as an input, as the webcam)."""
        from training.checkpoint import make_checkpoint, save_checkpoint

        from .cli import apply_process_settings
        from .engines.select import EngineRequest, open_engine

        ckpt = save_checkpoint(make_checkpoint({"G_A2B_ema": G}, G.config), self.work / "model.pt")
        dev = str(self.device) if self.on_gpu else self.device_arg
        req = EngineRequest(checkpoint=ckpt, device=dev, dynamic_style=True,
                            style_seed=STYLE_SEED, onnx_cache=self.work / "onnx-cache")
        notes: list[str] = []
        engine, why = open_engine(req, caps=self.caps, log=notes.append)
        self.engine = engine
        apply_process_settings(engine, notes.append)      # as the apps do once their engine is open
        return why, {"engine": engine.name, "why": why, "notes": notes}

    def convert(self, clip: Path, n: int):
        import numpy as np

        from .compose import FileOutput, PipelineConfig
        from .convert import Job, convert_file
        from .synthetic import read_back

        engine = self._engine()
        out = self.work / "clip_anime.mp4"
        job = convert_file(Job(clip, out), engine, PipelineConfig(output="composite"),
                           FileOutput(out))
        if job.status != "done":
            raise Failed(f"convert {job.status}: {job.message}")
        src, back = read_back(clip), read_back(out)
        if back["frames"] != n or (back["width"], back["height"]) != (src["width"], src["height"]):
            raise Failed(f"wrote {back['frames']} frames of {back['width']}x{back['height']}, "
                         f"expected {n} of {src['width']}x{src['height']}")
        if job.faces < n * 0.8:
            raise Failed(f"faces found in {job.faces} of {n} frames")
        h, w = src["first"].shape[:2]
        box = (slice(h // 4, 3 * h // 4), slice(w // 3, 2 * w // 3))
        diff = float(np.abs(src["first"][box].astype(np.int16)
                            - back["first"][box].astype(np.int16)).mean())
        if diff < 2.0:
            raise Failed(f"the face region is unchanged (mean difference {diff:.2f} levels)")
        s = job.summary or {}
        return (f"{n} frames, {job.faces} faces, {n / max(job.seconds, 1e-9):.1f} fps, face "
                f"region changed by {diff:.0f} levels", {"summary": s, "face_diff": diff})

    def live(self, clip: Path):
        import numpy as np

        from training.style import StyleCode

        from .compose import LoopedInput, PipelineConfig, build_pipeline, open_source
        from .styles import BlendedStyleEngine, StyleMixer

        engine = self._engine()
        first = engine.style.numpy()
        mixer = StyleMixer(first)
        n = self.frames
        changed_at = [None]
        calls = Recorder(engine)

        def on_output(frame, work):
            if changed_at[0] is None and frame.index >= 1:  # a new style, as a key press would
                mixer.set(StyleCode.from_seed(STYLE_SEED + 1).numpy())
                changed_at[0] = time.monotonic()

        source = open_source(LoopedInput(clip, loop=True, paced=True, max_frames=n))
        pipe = build_pipeline(PipelineConfig(live=True), source, BlendedStyleEngine(calls, mixer),
                              [], on_output=on_output)
        s = pipe.run().summary()
        lat = s["latency"]
        if s["frames_out"] == 0 or s["faces"] == 0:
            raise Failed(f"{s['frames_out']} frames shown, {s['faces']} faces found")
        after = [z for t, z in calls.seen if changed_at[0] is not None and t > changed_at[0] + 0.01]
        if any(np.allclose(z, first, atol=1e-7) for z in after):
            raise Failed("the engine ran with the old style after a style change")
        detail = (f"{s['frames_out']} of {s['frames_in']} frames shown, {s['dropped_total']} "
                  f"dropped, {s['fps']:.1f} fps, latency p50 {lat['p50_ms']:.1f} ms, p95 "
                  f"{lat['p95_ms']:.1f} ms; {len(after)} batches after a style change")
        smooth = s["frames_out"] >= s["frames_in"] / 2 and after
        return detail, {"summary": s, "batches_after_style_change": len(after)}, \
            ("ok" if smooth else "warn")

    def make_clip(self, w: int, h: int):
        from .synthetic import face_scene, write_video

        self.clip = write_video(self.work / "clip.mp4", [face_scene(w, h, dx=2 * i, dy=i % 5)
                                                         for i in range(CLIP_FRAMES)], fps=25)
        return f"{CLIP_FRAMES} frames of {w}x{h}, the astronaut's head moving", {}

    def _engine(self):
        engine = getattr(self, "engine", None)
        if engine is None:
            raise Skip("no engine: the --backend auto check failed")
        if self.clip is None:
            raise Skip("no test clip (see the clip check above)")
        return engine

    # -- all of it ---------------------------------------------------------------------------------
    def check_all(self) -> None:
        from training.config import RELEASED, ModelConfig

        self.say("machine")
        self.machine()
        self.say("checks")
        self.install_checks()
        if not self.cuda:
            self.say("  no CUDA here: checking the CPU paths")
        elif not self.on_gpu:
            self.say(f"  --device {self.device}: checking the CPU paths only")
        self.run("synthesize a test clip", self.make_clip,
                 *((1280, 720) if self.on_gpu else (320, 240)))
        self.cpu_parity()
        if self.on_gpu:
            G = random_generator(RELEASED)
            self.gpu_backends(G, self.clip)
        else:
            why = "no CUDA GPU here" if not self.cuda else f"--device {self.device}"
            self.run("CUDA backends", _skip, why)
            G = random_generator(ModelConfig(**SMALL_CONFIG))
        self.run("--backend auto (style as input)", self.auto_engine, G)
        self.run("convert a clip", self.convert, self.clip, CLIP_FRAMES)
        self.run("live pipeline, looped clip, headless", self.live, self.clip)
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()


def _skip(reason: str):
    raise Skip(reason)


# =============================================================================================
# main
# =============================================================================================
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m realtime.doctor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, default=Path("results/doctor.json"),
                   help="write the report here (default results/doctor.json)")
    p.add_argument("--device", default="auto",
                   help="auto (the GPU when there is one), cpu, cuda or cuda:N (default auto)")
    p.add_argument("--frames", type=int, default=None,
                   help="frames for the live check (default 300 on CUDA, 60 on the CPU)")
    return p


def main(argv=None) -> int:
    from training.device import DeviceError
    from training.fileio import write_bytes_atomic

    args = build_parser().parse_args(argv)
    say = lambda m: print(m, flush=True)          # noqa: E731
    if args.frames is not None and args.frames < 10:
        say(f"error: --frames must be at least 10, got {args.frames}")
        return 2
    folder = args.json.parent if str(args.json.parent) else Path(".")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gnr-doctor-") as tmp:
        try:
            doc = Doctor(args.device, args.frames, Path(tmp), say)
        except (DeviceError, ValueError) as e:
            say(f"error: {one_line(e)}")
            return 2
        say("gnr-anime doctor")
        doc.check_all()
    counts = {v: sum(i.verdict == v for i in doc.items) for v in VERDICTS}
    verdict = "fail" if counts["fail"] else "ok"
    report = {"schema": SCHEMA, "version": SCHEMA_VERSION,
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "seconds": round(time.monotonic() - t0, 1), "device": str(doc.device),
              "cuda": doc.cuda, "verdict": verdict, "counts": counts, "machine": doc.facts,
              "items": [asdict(i) for i in doc.items]}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(args.json, json.dumps(report, indent=1, default=str).encode())
        wrote = f"wrote {args.json}"
    except OSError as e:
        wrote = f"could not write --json {args.json}: {e.strerror or e}"
        verdict = "fail"
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    say(f"verdict: {verdict} ({summary}) in {report['seconds']:.0f} s; {wrote}")
    return 1 if verdict == "fail" else 0


if __name__ == "__main__":
    sys.exit(main())
