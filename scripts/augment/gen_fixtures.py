#!/usr/bin/python3
"""Generate augment/testdata/fixtures.json: torchvision reference outputs of the
t-SimCNE view augmentation for fixed parameters, compared by augment's Go tests.

Run with Debian's interpreter (python3-torch, python3-torchvision 0.14, python3-pil):

    /usr/bin/python3 scripts/augment/gen_fixtures.py

Everything is deterministic (fixed numpy/torch seeds), so re-running reproduces
the file byte for byte with the same torchvision version.
"""
import base64
import json
import math
import os
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "augment", "testdata", "fixtures.json")


def make_image(h, w, c, seed):
    """Smooth colourful pattern plus noise: exercises every hue sector."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for k in range(c):
        v = 127.5 + 90 * np.sin(x / (3.0 + k) + y / (5.0 + 2 * k) + k) + rng.normal(0, 25, (h, w))
        chans.append(v)
    img = np.clip(np.stack(chans, -1), 0, 255).round().astype(np.uint8)
    img[0, :3] = 255  # saturated and flat pixels, for the clamps and eqc branch
    img[1, :3] = 0
    return img


def to_tensor(img):  # HWC uint8 -> CHW float32 in [0,1], 1-channel replicated to 3
    t = torch.from_numpy(img.copy()).permute(2, 0, 1).float() / 255.0
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1).contiguous()
    return t


def hwc(t):  # CHW float -> base64 of the HWC float32 little-endian bytes
    a = t.permute(1, 2, 0).contiguous().reshape(-1).numpy().astype("<f4")
    return base64.b64encode(a.tobytes()).decode()


def geometry(t, p, size, antialias):
    out = F.resized_crop(t, p["top"], p["left"], p["h"], p["w"], size,
                         interpolation=InterpolationMode.BILINEAR, antialias=antialias)
    if p["flip"]:
        out = F.hflip(out)
    return out


def geometry_pil(img, p, size):
    mode = "L" if img.shape[2] == 1 else "RGB"
    pil = Image.fromarray(img[:, :, 0] if mode == "L" else img, mode)
    out = F.resized_crop(pil, p["top"], p["left"], p["h"], p["w"], size,
                         interpolation=InterpolationMode.BILINEAR)
    if p["flip"]:
        out = F.hflip(out)
    a = np.asarray(out)
    if a.ndim == 2:
        a = a[:, :, None]
    return to_tensor(a)


def color(t, p):
    if p["jitter"]:
        for op in p["order"]:
            if op == 0 and p["b"] != 1:
                t = F.adjust_brightness(t, p["b"])
            elif op == 1 and p["c"] != 1:
                t = F.adjust_contrast(t, p["c"])
            elif op == 2 and p["s"] != 1:
                t = F.adjust_saturation(t, p["s"])
            elif op == 3 and p["hue"] != 0:
                t = F.adjust_hue(t, p["hue"])
    if p["gray"]:
        t = F.rgb_to_grayscale(t, num_output_channels=3)
    return t


def f32(x):  # the float32 value the Go side stores, as a Python float
    return float(np.float32(x))


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    images = {
        "rgb23x31": make_image(23, 31, 3, 10),
        "gray28": make_image(28, 28, 1, 11),
        "rgb96x80": make_image(96, 80, 3, 12),
        "rgb32": make_image(32, 32, 3, 13),
    }
    cases = []

    # 1. Geometry: crop + resize + flip, up- and downscaling, non-square.
    geo = [
        ("rgb23x31", dict(top=2, left=5, h=17, w=22, flip=False), [32, 32]),
        ("rgb23x31", dict(top=0, left=0, h=23, w=31, flip=True), [16, 24]),
        ("rgb23x31", dict(top=10, left=3, h=9, w=7, flip=True), [20, 12]),
        ("gray28", dict(top=4, left=1, h=20, w=25, flip=True), [32, 32]),
        ("rgb96x80", dict(top=7, left=9, h=80, w=64, flip=False), [24, 24]),
        ("rgb96x80", dict(top=0, left=3, h=96, w=75, flip=True), [17, 33]),
        ("rgb32", dict(top=3, left=4, h=21, w=25, flip=True), [32, 32]),
        ("rgb32", dict(top=0, left=0, h=32, w=32, flip=False), [32, 32]),
    ]
    for name, p, size in geo:
        t = to_tensor(images[name])
        for aa in (False, True):
            cases.append(dict(kind="geometry", image=name, params=p, size=size,
                              antialias=aa, path="tensor", expect=hwc(geometry(t, p, size, aa))))
        cases.append(dict(kind="geometry", image=name, params=p, size=size,
                          antialias=True, path="pil", expect=hwc(geometry_pil(images[name], p, size))))

    # 2. Each colour operation alone, on the full image as float (identity geometry).
    single = [
        dict(jitter=True, order=[0, 1, 2, 3], b=f32(1.37), c=1.0, s=1.0, hue=0.0, gray=False),
        dict(jitter=True, order=[0, 1, 2, 3], b=f32(0.61), c=1.0, s=1.0, hue=0.0, gray=False),
        dict(jitter=True, order=[0, 1, 2, 3], b=1.0, c=f32(1.33), s=1.0, hue=0.0, gray=False),
        dict(jitter=True, order=[0, 1, 2, 3], b=1.0, c=f32(0.64), s=1.0, hue=0.0, gray=False),
        dict(jitter=True, order=[0, 1, 2, 3], b=1.0, c=1.0, s=f32(1.39), hue=0.0, gray=False),
        dict(jitter=True, order=[0, 1, 2, 3], b=1.0, c=1.0, s=f32(0.62), hue=0.0, gray=False),
        dict(jitter=True, order=[0, 1, 2, 3], b=1.0, c=1.0, s=1.0, hue=f32(0.083), gray=False),
        dict(jitter=True, order=[0, 1, 2, 3], b=1.0, c=1.0, s=1.0, hue=f32(-0.097), gray=False),
        dict(jitter=False, order=[0, 1, 2, 3], b=1.0, c=1.0, s=1.0, hue=0.0, gray=True),
    ]
    for name in ("rgb23x31", "rgb32", "gray28"):
        t = to_tensor(images[name])
        h, w = images[name].shape[:2]
        for p in single:
            q = dict(p, top=0, left=0, h=h, w=w, flip=False)
            cases.append(dict(kind="color", image=name, params=q, size=[h, w], antialias=False,
                              path="tensor", expect=hwc(color(t, q))))

    # 3. The whole view: random parameters drawn here, applied by torchvision.
    for k in range(24):
        name = ["rgb23x31", "rgb32", "gray28", "rgb96x80"][k % 4]
        img = images[name]
        H, W = img.shape[:2]
        t = to_tensor(img)
        i, j, h, w = T.RandomResizedCrop.get_params(t, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3))
        size = [[32, 32], [32, 32], [32, 32], [24, 20]][k % 4]
        p = dict(top=i, left=j, h=h, w=w, flip=bool(rng.random() < 0.5),
                 jitter=bool(rng.random() < 0.8), order=[int(v) for v in rng.permutation(4)],
                 b=f32(rng.uniform(0.6, 1.4)), c=f32(rng.uniform(0.6, 1.4)),
                 s=f32(rng.uniform(0.6, 1.4)), hue=f32(rng.uniform(-0.1, 0.1)),
                 gray=bool(rng.random() < 0.2))
        out = color(geometry(t, p, size, True), p)
        cases.append(dict(kind="full", image=name, params=p, size=size, antialias=True,
                          path="tensor", expect=hwc(out)))

    # 4. Rotation of the whole image (RandomRotation before the crop), bilinear, zero fill.
    for name, angle in (("rgb23x31", 30.0), ("rgb32", -75.5), ("gray28", 12.25), ("rgb96x80", 180.0)):
        t = to_tensor(images[name])
        h, w = images[name].shape[:2]
        out = F.rotate(t, angle, interpolation=InterpolationMode.BILINEAR)
        p = dict(top=0, left=0, h=h, w=w, flip=False, angle=angle)
        cases.append(dict(kind="rotate", image=name, params=p, size=[h, w], antialias=False,
                          path="tensor", expect=hwc(out)))

    # 5. Crop sampler distribution: torchvision's get_params on square and non-square images.
    dist = {}
    for H, W in ((32, 32), (24, 40), (300, 100)):
        t = torch.zeros(1, H, W)
        n = 20000
        area, logr, top, left = [], [], [], []
        for _ in range(n):
            i, j, h, w = T.RandomResizedCrop.get_params(t, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3))
            area.append(h * w / (H * W))
            logr.append(math.log(w / h))
            top.append(i / max(1, H - h) if H > h else 0.5)
            left.append(j / max(1, W - w) if W > w else 0.5)
        qs = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
        dist[f"{H}x{W}"] = dict(H=H, W=W, n=n,
                                area_q=np.quantile(area, qs).tolist(), logr_q=np.quantile(logr, qs).tolist(),
                                area_mean=float(np.mean(area)), logr_mean=float(np.mean(logr)),
                                top_mean=float(np.mean(top)), left_mean=float(np.mean(left)),
                                full=float(np.mean([a == 1.0 for a in area])), q=qs)

    doc = dict(torch=torch.__version__, torchvision=torchvision.__version__,
               images={k: dict(h=v.shape[0], w=v.shape[1], c=v.shape[2], pix=base64.b64encode(v.tobytes()).decode())
                       for k, v in images.items()},
               cases=cases, crop_distribution=dist)
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"wrote {OUT}: {len(cases)} cases, torchvision {torchvision.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
