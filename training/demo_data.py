"""Demo training data made on this machine, honestly: no downloaded datasets.

* Domain A (faces): the real, public-domain photos that scikit-image ships — the astronaut
  (Eileen Collins), the cameraman, and the 100 small grayscale LFW face crops of
  ``skimage.data.lfw_subset()`` — aligned with the live pipeline's template
  (``realtime.faces.align``: MediaPipe face mesh -> weighted similarity -> crop), then augmented
  (small pose jitter, mirror, exposure, contrast, gamma, white balance, saturation, blur, noise).
* Domain B (anime): faces drawn procedurally (``render_anime``): flat colours, inked outlines,
  big eyes with two-tone irises and highlights, spiky fringe, cel-shaded hair, blush — placed where
  the template puts a face (eyes at 36 % of the height, mouth at 66 %). The *style* that varies
  from image to image is what GNR's style code should learn: hair colour and length, eye colour,
  skin tone, background, mouth, accessories.

    python -m training.demo_data demo_data --size 64

writes demo_data/A_astronaut, A_camera, A_lfw, B_anime, labels.csv and recipe.json (counts and
seed). ``labels.csv`` names the attributes of every anime face drawn (``file`` relative to
B_anime, then one column per attribute of :data:`ATTRIBUTES`): the labelled data that
``python -m training.isf`` (attribute-conditioned styles) trains on. The labels are read off the
drawn style (:meth:`AnimeStyle.attributes`), so adding them changed no image.
"""
from __future__ import annotations

import argparse
import colorsys
import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INK = (38, 24, 28)
BASE = 256          # drawings are laid out in a 256 x 256 crop of the template

HAIR_COLOURS = ("black", "brown", "blonde", "silver", "red", "orange", "yellow", "green", "cyan",
                "blue", "purple", "pink")
# Every attribute labels.csv names, with its values (in this order).
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "hair": HAIR_COLOURS,
    "hair_length": ("short", "long"),
    "mouth": ("line", "open", "smile"),
    "blush": ("no", "yes"),
    "ribbon": ("no", "yes"),
}
# Hue bands (degrees, upper bounds) for saturated, not-too-dark hair.
_HUE_NAMES = ((15, "red"), (45, "orange"), (70, "yellow"), (160, "green"), (195, "cyan"),
              (255, "blue"), (290, "purple"), (345, "pink"), (361, "red"))


def hair_colour_name(rgb: tuple[int, int, int]) -> str:
    """The name of a drawn hair colour (one of :data:`HAIR_COLOURS`), read off its HSV: dark is
    black, unsaturated is silver, dark warm is brown, pale warm yellow is blonde, the rest by hue."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    h *= 360
    if v < 0.32:
        return "black"
    if s < 0.2:
        return "silver"
    if h < 50 and v < 0.6:
        return "brown"
    if 25 <= h < 60 and s < 0.55:
        return "blonde"
    return next(name for top, name in _HUE_NAMES if h < top)


# ---------------------------------------------------------------------------------------------
# The anime renderer
# ---------------------------------------------------------------------------------------------
def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1))
    return int(r * 255), int(g * 255), int(b * 255)


def _shade(c, k: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, v * k))) for v in c)


def _mix(a, b, t: float) -> tuple[int, int, int]:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


@dataclass(frozen=True)
class AnimeStyle:
    hair: tuple[int, int, int]
    eyes: tuple[int, int, int]
    skin: tuple[int, int, int]
    background: tuple[int, int, int]
    clothes: tuple[int, int, int]
    hair_length: float          # 0 short .. 1 long
    fringe_spikes: int
    fringe_depth: float         # how far the fringe comes down (px at 256)
    eye_height: float           # eye opening (px at 256)
    mouth: str                  # "line" | "open" | "smile"
    blush: bool
    ribbon: bool
    dx: float                   # small placement jitter (px at 256)
    dy: float
    angle: float                # degrees
    scale: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "AnimeStyle":
        palette = rng.random()
        if palette < 0.15:        # natural dark / brown / blonde
            hair = _hsv(rng.uniform(0.02, 0.12), rng.uniform(0.3, 0.8), rng.uniform(0.15, 0.9))
        elif palette < 0.22:      # silver / white
            hair = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.12), rng.uniform(0.75, 0.95))
        else:                     # anime colours: any hue
            hair = _hsv(rng.uniform(0, 1), rng.uniform(0.35, 0.85), rng.uniform(0.55, 0.95))
        eyes = _hsv(rng.uniform(0, 1), rng.uniform(0.45, 0.95), rng.uniform(0.45, 0.95))
        skin = _hsv(rng.uniform(0.04, 0.08), rng.uniform(0.08, 0.3), rng.uniform(0.88, 1.0))
        bg_kind = rng.random()
        if bg_kind < 0.35:
            background = _hsv(rng.uniform(0, 1), rng.uniform(0.05, 0.3), rng.uniform(0.85, 1.0))
        elif bg_kind < 0.6:
            background = (245, 245, 245)
        else:
            background = _hsv(rng.uniform(0, 1), rng.uniform(0.2, 0.6), rng.uniform(0.4, 0.9))
        clothes = _hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.8), rng.uniform(0.2, 0.95))
        return cls(hair=hair, eyes=eyes, skin=skin, background=background, clothes=clothes,
                   hair_length=float(rng.uniform(0, 1)), fringe_spikes=int(rng.integers(4, 9)),
                   fringe_depth=float(rng.uniform(54, 72)), eye_height=float(rng.uniform(30, 44)),
                   mouth=str(rng.choice(["line", "open", "smile"])), blush=bool(rng.random() < 0.6),
                   ribbon=bool(rng.random() < 0.2), dx=float(rng.normal(0, 2.5)),
                   dy=float(rng.normal(0, 2.5)), angle=float(rng.normal(0, 3)),
                   scale=float(rng.normal(1, 0.03)))

    def attributes(self) -> dict[str, str]:
        """The labels of this drawing, one value of :data:`ATTRIBUTES` per attribute."""
        return {"hair": hair_colour_name(self.hair),
                "hair_length": "long" if self.hair_length >= 0.5 else "short",
                "mouth": self.mouth, "blush": "yes" if self.blush else "no",
                "ribbon": "yes" if self.ribbon else "no"}


def labels_csv(rows: list[tuple[str, dict[str, str]]]) -> str:
    """``file`` + one column per attribute, for (file name, attributes) rows."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", *ATTRIBUTES])
    for name, attrs in rows:
        w.writerow([name, *(attrs[a] for a in ATTRIBUTES)])
    return buf.getvalue()


def render_anime(style: AnimeStyle, size: int = 64, supersample: int = 4, seed: int = 0) -> np.ndarray:
    """One anime face, size x size x 3 uint8, laid out on the live pipeline's crop template."""
    from PIL import Image, ImageDraw

    S = BASE * supersample
    rng = np.random.default_rng(seed)
    k = supersample * style.scale
    c0 = BASE / 2
    ca, sa = math.cos(math.radians(style.angle)), math.sin(math.radians(style.angle))

    def P(x, y):   # template px (256) -> canvas px, with the style's small pose jitter
        x, y = x - c0, y - c0
        x, y = ca * x - sa * y, sa * x + ca * y
        return ((x * style.scale + c0 + style.dx) * supersample, (y * style.scale + c0 + style.dy) * supersample)

    def poly(pts):
        return [P(x, y) for x, y in pts]

    def ell(cx, cy, rx, ry, n=40, a0=0.0, a1=2 * math.pi):
        return [(cx + rx * math.cos(a0 + (a1 - a0) * t / n), cy + ry * math.sin(a0 + (a1 - a0) * t / n))
                for t in range(n + 1)]

    W = max(2, int(round(3.2 * k)))          # ink width
    img = Image.new("RGB", (S, S), style.background)
    d = ImageDraw.Draw(img)
    hair, hair_dark, hair_light = style.hair, _shade(style.hair, 0.72), _mix(style.hair, (255, 255, 255), 0.45)
    skin, skin_dark = style.skin, _shade(style.skin, 0.86)

    # back hair (behind the head), length varies
    bottom = 170 + 95 * style.hair_length
    back = (ell(128, 100, 100, 92, a0=math.pi, a1=2 * math.pi)
            + [(228, 110), (232 + 8 * style.hair_length, bottom), (190, bottom - 12), (128, bottom - 30),
               (66, bottom - 12), (24 - 8 * style.hair_length, bottom), (28, 110)])
    d.polygon(poly(back), fill=hair_dark, outline=INK, width=W)
    # neck and clothes
    d.polygon(poly([(106, 180), (150, 180), (154, 240), (102, 240)]), fill=skin_dark, outline=INK, width=W)
    d.polygon(poly([(30, 262), (44, 236), (100, 224), (128, 240), (156, 224), (212, 236), (226, 262)]),
              fill=style.clothes, outline=INK, width=W)
    # face: wide cheeks, pointed chin
    face = [(50, 60), (50, 118), (60, 160), (88, 196), (128, 219), (168, 196), (196, 160), (206, 118), (206, 60)]
    d.polygon(poly(face + ell(128, 60, 78, 50, a0=0, a1=-math.pi)), fill=skin)
    d.line(poly(face), fill=INK, width=W, joint="curve")
    # shadow cast by the fringe
    shadow = [(52, 70)] + [(52 + 152 * t / 8, style.fringe_depth + 8 + 6 * math.sin(t * 1.7)) for t in range(9)] + [(204, 70)]
    d.polygon(poly(shadow), fill=skin_dark)
    # blush
    if style.blush:
        blush = _mix(skin, (240, 110, 130), 0.45)
        for cx in (84, 172):
            d.ellipse([*P(cx - 17, 124), *P(cx + 17, 134)], fill=blush)
    # eyes
    eh = style.eye_height
    for ex, side in ((92.5, -1), (163.5, 1)):
        ey = 95
        d.polygon(poly(ell(ex, ey, 24, eh / 2)), fill=(252, 252, 252))
        d.polygon(poly(ell(ex, ey + 1, 14, eh / 2 - 1)), fill=style.eyes)
        d.polygon(poly(ell(ex, ey - eh / 6, 14, eh / 3.2, a0=math.pi, a1=2 * math.pi)), fill=_shade(style.eyes, 0.55))
        d.polygon(poly(ell(ex, ey + 2, 6, eh / 4.5)), fill=_shade(style.eyes, 0.25))
        d.polygon(poly(ell(ex - 5, ey - eh / 6, 5, 5)), fill=(255, 255, 255))
        d.polygon(poly(ell(ex + 6, ey + eh / 5, 2.5, 2.5)), fill=(255, 255, 255))
        # upper lash line with an outer flick, lower lid
        lash = ell(ex, ey + 2, 26, eh / 2 + 3, a0=math.pi * 1.08, a1=math.pi * 1.92)
        d.line(poly(lash), fill=INK, width=int(W * 2.2), joint="curve")
        tip = (ex + side * 30, ey - eh / 2 + 2)
        d.line(poly([lash[-1] if side > 0 else lash[0], tip]), fill=INK, width=int(W * 1.6))
        d.line(poly(ell(ex, ey - 2, 18, eh / 2 + 2, a0=0.25 * math.pi, a1=0.75 * math.pi)), fill=INK, width=W)
        # brow
        d.line(poly(ell(ex, ey - eh / 2 - 4, 22, 10, a0=1.15 * math.pi, a1=1.85 * math.pi)),
               fill=_shade(hair, 0.5), width=W)
    # nose and mouth
    d.line(poly([(129, 136), (126, 146)]), fill=_shade(skin, 0.6), width=W)
    if style.mouth == "line":
        d.line(poly([(118, 172), (128, 174), (138, 172)]), fill=INK, width=W)
    elif style.mouth == "smile":
        d.line(poly(ell(128, 166, 12, 8, a0=0.15 * math.pi, a1=0.85 * math.pi)), fill=INK, width=W)
    else:
        d.polygon(poly(ell(128, 172, 9, 7, a0=0, a1=math.pi) + [(119, 170), (137, 170)]),
                  fill=(170, 60, 70), outline=INK, width=W)
    # fringe: top of the head with a spiky lower edge
    n = style.fringe_spikes
    edge = []
    for j in range(n + 1):
        x = 40 + 176 * j / n
        edge.append((x, 84 if j in (0, n) else style.fringe_depth - 10 + 6 * rng.standard_normal()))
        if j < n:
            edge.append((x + 88 / n + 4 * rng.standard_normal(), style.fringe_depth + 12 + 6 * rng.random()))
    top = ell(128, 70, 92, 70, a0=0, a1=-math.pi, n=30)
    fringe = edge + top
    d.polygon(poly(fringe), fill=hair, outline=INK, width=W)
    # side locks framing the face
    for sx in (-1, 1):
        lock = [(128 + sx * 86, 60), (128 + sx * 92, 150 + 40 * style.hair_length),
                (128 + sx * 70, 120), (128 + sx * 62, 70)]
        d.polygon(poly(lock), fill=hair, outline=INK, width=W)
    # hair highlight band
    d.line(poly(ell(128, 62, 62, 34, a0=1.2 * math.pi, a1=1.8 * math.pi)), fill=hair_light, width=int(W * 2.5))
    if style.ribbon:
        rc = _hsv(rng.uniform(0, 1), 0.7, 0.9)
        d.polygon(poly([(176, 14), (206, 2), (200, 30)]), fill=rc, outline=INK, width=W)
        d.polygon(poly([(176, 14), (160, -8), (150, 22)]), fill=rc, outline=INK, width=W)
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8).copy()


# ---------------------------------------------------------------------------------------------
# Real faces from scikit-image, aligned with the live template
# ---------------------------------------------------------------------------------------------
def _face_mesh_landmarks(rgb: np.ndarray) -> np.ndarray | None:
    import mediapipe as mp
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                         refine_landmarks=False) as fm:
        res = fm.process(np.ascontiguousarray(rgb))
    if not res.multi_face_landmarks:
        return None
    h, w = rgb.shape[:2]
    return np.array([(p.x * w, p.y * h) for p in res.multi_face_landmarks[0].landmark])


def _crop(rgb: np.ndarray, crop_to_frame: np.ndarray, size: int) -> np.ndarray:
    from realtime.faces.align import Aligner, CropTemplate
    al = Aligner(CropTemplate.default(size))
    crops = al.crop_matrices(rgb, crop_to_frame[None], [0]).crops
    return ((crops[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()


def _jitter(m: np.ndarray, rng: np.random.Generator, size: int, rot=8.0, scale=0.08, shift=0.04) -> np.ndarray:
    """Compose a random similarity about the crop centre (crop space) into crop->frame."""
    from realtime.faces.align import compose_affine
    a = math.radians(rng.uniform(-rot, rot))
    s = math.exp(rng.uniform(-scale, scale))
    c = (size - 1) / 2
    t = rng.uniform(-shift, shift, 2) * size
    r = np.array([[s * math.cos(a), -s * math.sin(a)], [s * math.sin(a), s * math.cos(a)]])
    jit = np.concatenate([r, (np.array([c, c]) - r @ np.array([c, c]) + t)[:, None]], 1)
    return compose_affine(m, jit)


def photometric(img: np.ndarray, rng: np.random.Generator, gray_p: float = 0.1) -> np.ndarray:
    """Exposure, contrast, gamma, white balance, saturation, blur, noise (uint8 in and out)."""
    from PIL import Image, ImageFilter
    x = img.astype(np.float32) / 255.0
    x = x * rng.uniform(0.7, 1.3)                                   # exposure
    x = (x - x.mean()) * rng.uniform(0.75, 1.25) + x.mean()         # contrast
    x = np.clip(x, 0, 1) ** rng.uniform(0.75, 1.35)                 # gamma
    x = x * rng.uniform(0.88, 1.12, 3)                              # white balance
    g = x.mean(-1, keepdims=True)
    sat = 0.0 if rng.random() < gray_p else rng.uniform(0.6, 1.3)
    x = g + (x - g) * sat
    out = Image.fromarray((np.clip(x, 0, 1) * 255).round().astype(np.uint8))
    if rng.random() < 0.3:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    x = np.asarray(out, dtype=np.float32)
    if rng.random() < 0.4:
        x = x + rng.normal(0, rng.uniform(1, 6), x.shape)
    return np.clip(x, 0, 255).round().astype(np.uint8)


def real_faces(size: int, n_astronaut: int, n_camera: int, lfw_copies: int, seed: int):
    """Yields (folder name, index, uint8 image) for the three real-face sources."""
    from skimage import data
    from realtime.faces.align import CropTemplate, crop_to_frame_from_landmarks
    rng = np.random.default_rng(seed)
    tpl = CropTemplate.default(size)
    for name, img, count in (("A_astronaut", data.astronaut(), n_astronaut),
                             ("A_camera", np.stack([data.camera()] * 3, -1), n_camera)):
        if count <= 0:
            continue
        lm = _face_mesh_landmarks(img)
        if lm is None:
            raise RuntimeError(f"face mesh found no face in skimage.data {name}")
        m = crop_to_frame_from_landmarks(lm, tpl)
        for i in range(count):
            crop = _crop(img, _jitter(m, rng, size), size)
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            yield name, i, photometric(crop, rng, gray_p=0.1 if name == "A_astronaut" else 0.0)
    if lfw_copies <= 0:
        return
    import cv2
    lfw = data.lfw_subset()[:100]            # the first 100 are faces
    k = 0
    for j, face in enumerate(lfw):
        g = (face * 255).round().astype(np.uint8)
        up = cv2.resize(g, (200, 200), interpolation=cv2.INTER_CUBIC)
        pad = cv2.copyMakeBorder(up, 100, 100, 100, 100, cv2.BORDER_CONSTANT, value=128)
        rgb = np.stack([pad] * 3, -1)
        lm = _face_mesh_landmarks(rgb)
        if lm is None:
            continue
        m = crop_to_frame_from_landmarks(lm, tpl)
        for _ in range(lfw_copies):
            crop = _crop(rgb, _jitter(m, rng, size, rot=4, scale=0.04, shift=0.02), size)
            # a random skin tint so the grayscale crops are not all grey
            tint = np.array(_hsv(rng.uniform(0.02, 0.09), rng.uniform(0.15, 0.45), 1.0), np.float32) / 255
            crop = np.clip(crop.astype(np.float32) * tint, 0, 255).astype(np.uint8)
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            yield "A_lfw", k, photometric(crop, rng, gray_p=0.0)
            k += 1


def make_demo_data(out: Path, size: int = 64, n_anime: int = 2000, n_astronaut: int = 400,
                   n_camera: int = 0, lfw_copies: int = 3, seed: int = 0) -> dict:
    """Write the demo data set (see the module docstring). The anime faces are a pure function
    of ``seed``: a larger ``n_anime`` keeps the first images (and labels) as they were."""
    from PIL import Image

    from .fileio import write_bytes_atomic
    out = Path(out)
    counts: dict[str, int] = {}
    for name, i, img in real_faces(size, n_astronaut, n_camera, lfw_copies, seed):
        (out / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(img)).save(out / name / f"{i:05d}.png")
        counts[name] = counts.get(name, 0) + 1
    (out / "B_anime").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    labels = []
    for i in range(n_anime):
        style = AnimeStyle.sample(rng)
        Image.fromarray(render_anime(style, size, seed=seed * 100_000 + i)).save(out / "B_anime" / f"{i:05d}.png")
        labels.append((f"{i:05d}.png", style.attributes()))
    counts["B_anime"] = n_anime
    write_bytes_atomic(out / "labels.csv", labels_csv(labels).encode())
    recipe = {"size": size, "seed": seed, "counts": counts,
              "sources": {"A_astronaut": "skimage.data.astronaut() (public domain), aligned, augmented",
                          "A_camera": "skimage.data.camera() (grayscale), aligned, augmented",
                          "A_lfw": "skimage.data.lfw_subset()[:100] face crops 25x25, upscaled, aligned, tinted",
                          "B_anime": "training.demo_data.render_anime, styles from AnimeStyle.sample"},
              "labels": "labels.csv: file (relative to B_anime) and the attributes of each anime face",
              "command": f"python -m training.demo_data {out} --size {size} --n-anime {n_anime} "
                         f"--n-astronaut {n_astronaut} --n-camera {n_camera} --lfw-copies {lfw_copies} --seed {seed}"}
    (out / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
    return recipe


def ship_demo_model(run_checkpoint: str | Path, out: str | Path, weights: str = "ema", note: str = "",
                    half: bool = True) -> Path:
    """The shipped demo model: two generators (face->anime for rendering, anime->face for taking a
    style from an anime image) under the keys the pipeline loads (``G_A2B_ema``, ``G_B2A_ema``),
    plus our config. ``weights="live"`` stores the live generators under those keys instead of
    the EMA copies (for very short runs, where the 0.999 EMA still holds much of the random
    initialisation: 0.999**1500 = 22 %); the file says which in ``demo["weights"]``. ``half``
    stores the weights as float16 (half the size; they load into the float32 model as usual)."""
    from .checkpoint import read_checkpoint, save_checkpoint
    if weights not in ("ema", "live"):
        raise ValueError(f"weights must be 'ema' or 'live', got {weights!r}")
    ck = read_checkpoint(run_checkpoint)
    src = {"G_A2B_ema": "G_A2B_ema" if weights == "ema" else "G_A2B",
           "G_B2A_ema": "G_B2A_ema" if weights == "ema" else "G_B2A"}
    def store(t):
        t = t.contiguous().clone()
        return t.half() if half and t.is_floating_point() else t

    keep: dict = {k: {n: store(t) for n, t in ck[v].items()} for k, v in src.items()}
    keep.update(config=ck["config"], iter=ck.get("iter"), demo={
        "what": "demo model trained on procedural anime faces and augmented scikit-image face photos; "
                "not the authors' selfie2anime model",
        "weights": (f"EMA generators at step {ck.get('iter')}" if weights == "ema" else
                    f"live (non-EMA) generators at step {ck.get('iter')}, stored under the EMA keys"),
        "stored_dtype": "float16" if half else "float32",
        "train_config": (ck.get("train") or {}).get("config"), "note": note})
    return save_checkpoint(keep, out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.demo_data", description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="output folder (or, with --ship, the demo model file)")
    p.add_argument("--ship", type=Path, metavar="CKPT",
                   help="instead: write the shipped demo model (two generators + config) from a run checkpoint")
    p.add_argument("--ship-weights", choices=["ema", "live"], default="ema",
                   help="with --ship: the EMA generators (default) or the live ones")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--n-anime", type=int, default=2000)
    p.add_argument("--n-astronaut", type=int, default=400)
    p.add_argument("--n-camera", type=int, default=0, help="augmented copies of the cameraman (a profile view: off by default)")
    p.add_argument("--lfw-copies", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.ship is not None:
        path = ship_demo_model(a.ship, a.out, a.ship_weights)
        print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")
        return 0
    recipe = make_demo_data(a.out, a.size, a.n_anime, a.n_astronaut, a.n_camera, a.lfw_copies, a.seed)
    print(json.dumps(recipe["counts"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
