#!/usr/bin/python3
"""Writes the WebP fixtures of source/sourcetest/testdata.

Go has a WebP decoder (golang.org/x/image/webp) but no encoder, so the
fixtures that sourcetest.WriteImageFolder copies into its folders are made
once with PIL (Debian: python3-pil) and committed. Each NAME.webp comes with
NAME.rgb: the RGB pixels (HWC, alpha dropped) it was encoded from, which
the tests compare exactly for lossless files and with a tolerance for lossy
ones. The pixels are smooth gradients so lossy coding stays close.

Run: /usr/bin/python3 scripts/source/make_webp.py
"""
import os
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "source", "sourcetest", "testdata")


def pattern(w, h, alpha):
    px = []
    for y in range(h):
        for x in range(w):
            r = (x * 255) // max(1, w - 1)
            g = (y * 255) // max(1, h - 1)
            b = ((x + y) * 127) // max(1, w + h - 2) + 64
            if alpha:
                px.append((r, g, b, 64 + ((x * 7 + y * 13) % 192)))
            else:
                px.append((r, g, b))
    img = Image.new("RGBA" if alpha else "RGB", (w, h))
    img.putdata(px)
    return img


def write(name, img, **kw):
    img.save(os.path.join(OUT, name + ".webp"), "WEBP", **kw)
    with open(os.path.join(OUT, name + ".rgb"), "wb") as f:
        f.write(img.convert("RGB").tobytes())


os.makedirs(OUT, exist_ok=True)
write("lossless", pattern(7, 5, False), lossless=True)
write("lossy", pattern(24, 16, False), quality=95)
# Lossless with alpha keeps every colour exactly while alpha stays above 0;
# Go decodes it as NRGBA.
write("alpha_lossless", pattern(6, 6, True), lossless=True, exact=True)
# Lossy with alpha decodes as NYCbCrA in Go.
write("alpha_lossy", pattern(16, 16, True), quality=95)

# What libwebp (through PIL) decodes the lossy files to: Go's decoding must
# come within rounding of it.
for name in ("lossy", "alpha_lossy"):
    with Image.open(os.path.join(OUT, name + ".webp")) as im, open(os.path.join(OUT, name + ".libwebp.rgb"), "wb") as f:
        f.write(im.convert("RGB").tobytes())
