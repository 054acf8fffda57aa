#!/usr/bin/python3
"""Writes source/testdata/resize_*: a source PNG and what PIL's
Image.resize(..., BILINEAR) (what torchvision's Resize uses) makes of it,
so that the tests can check that pack --resize matches PIL within rounding.

Run: /usr/bin/python3 scripts/source/make_resize_ref.py
"""
import os
import random
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "source", "testdata")
os.makedirs(OUT, exist_ok=True)
rng = random.Random(1)
w, h = 29, 21
px = []
for y in range(h):
    for x in range(w):
        px.append(((x * 9 + rng.randrange(24)) % 256, (y * 12 + rng.randrange(24)) % 256, (x * y + rng.randrange(40)) % 256))
src = Image.new("RGB", (w, h))
src.putdata(px)
src.save(os.path.join(OUT, "resize_src.png"))
for rw, rh in ((8, 6), (13, 29), (64, 48)):
    with open(os.path.join(OUT, "resize_%dx%d.rgb" % (rw, rh)), "wb") as f:
        f.write(src.resize((rw, rh), Image.BILINEAR).tobytes())
