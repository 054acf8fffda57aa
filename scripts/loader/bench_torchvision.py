#!/usr/bin/python3
"""Baseline for the loader benchmarks: torchvision's DataLoader producing the
same two t-SimCNE views per image as loader.BenchmarkTwoView*.

Run with Debian's interpreter (python3-torch, python3-torchvision, python3-pil):

    /usr/bin/python3 scripts/loader/bench_torchvision.py                    # 32x32 raw, 32x32 views
    /usr/bin/python3 scripts/loader/bench_torchvision.py --size 96          # 96x96 raw, 96x96 views
    /usr/bin/python3 scripts/loader/bench_torchvision.py --jpeg 256 --out 64

The transform is the reference package's (tsimcne 0.3): RandomResizedCrop
(scale 0.2-1), RandomHorizontalFlip, RandomApply(ColorJitter(0.4, 0.4, 0.4,
0.1), p=0.8), RandomGrayscale(0.2), ToTensor, applied twice to a PIL image
(the reference's path; --path tensor uses uint8 tensors instead). Images are
synthetic, like the Go benchmark's (smooth pattern plus noise). Prints
images/s (source images; each gives two views) over --batches batches after
--warmup batches.
"""
import argparse
import io
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image


def synth(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(h)[:, None, None]
    x = np.arange(w)[None, :, None]
    k = np.arange(3)[None, None, :]
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        v = 127.5 + 60 * np.sin((x + i) / (3 + k)) + 60 * np.sin(y / (5 + 2 * k) + i % 7) + rng.integers(-16, 16, (h, w, 3))
        out[i] = np.clip(v, 0, 255).astype(np.uint8)
    return out


class TwoViews(torch.utils.data.Dataset):
    def __init__(self, images, encoded, out, path):
        self.images, self.encoded, self.path = images, encoded, path
        ops = [T.RandomResizedCrop(out, scale=(0.2, 1.0)), T.RandomHorizontalFlip(),
               T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(p=0.2)]
        if path == "pil":
            self.t = T.Compose(ops + [T.ToTensor()])
        else:
            self.t = T.Compose([T.ConvertImageDtype(torch.float32)] + ops)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        if self.encoded:
            img = Image.open(io.BytesIO(self.images[i])).convert("RGB")  # decoded once, two views
            if self.path == "tensor":
                img = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
        elif self.path == "pil":
            img = Image.fromarray(self.images[i])
        else:
            img = torch.from_numpy(self.images[i]).permute(2, 0, 1)
        return (self.t(img), self.t(img)), i % 10


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=32, help="stored image size (raw)")
    ap.add_argument("--jpeg", type=int, default=0, help="store JPEG images of this size instead of raw")
    ap.add_argument("--out", type=int, default=0, help="view size (default: the stored size)")
    ap.add_argument("--n", type=int, default=10240)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--path", choices=["pil", "tensor"], default="pil")
    a = ap.parse_args()
    torch.set_num_threads(1)
    size = a.jpeg or a.size
    out = a.out or size
    imgs = synth(a.n, size, size)
    if a.jpeg:
        enc = []
        for im in imgs:
            b = io.BytesIO()
            Image.fromarray(im).save(b, format="JPEG", quality=90)
            enc.append(b.getvalue())
        imgs = enc
    ds = TwoViews(imgs, bool(a.jpeg), out, a.path)
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                                     drop_last=False, persistent_workers=a.workers > 0)
    done, n, t0 = 0, 0, None
    while done < a.warmup + a.batches:
        for (v1, v2), y in dl:
            done += 1
            if done == a.warmup:
                t0 = time.perf_counter()
            elif done > a.warmup:
                n += len(y)
            if done >= a.warmup + a.batches:
                break
    dt = time.perf_counter() - t0
    kind = f"jpeg{a.jpeg}" if a.jpeg else f"raw{a.size}"
    print(f"torchvision {kind} -> {out}x{out} views, batch {a.batch}, {a.workers} workers, {a.path} path: "
          f"{n / dt:.0f} images/s ({n} images in {dt:.2f} s)")


if __name__ == "__main__":
    main()
