"""Writes the engine's committed test fixtures (run from the repository root
with Debian's /usr/bin/python3; needs python3-torch and python3-torchvision):

  engine/testdata/micro_weights.safetensors   PyTorch-initialised weights of
      resnet_w8_b1111_h64 with a 16-D head (torch.manual_seed(0))
  engine/testdata/micro_input.safetensors     8 views (4 images x 2) of 32x32x3
  engine/testdata/micro_expected.safetensors  oracle.py results on them (float64
      PyTorch, stored as F32): eval and train outputs, every gradient, BN
      buffers after one step, the state after three SGD steps at the learning
      rates LRTable(20 epochs, 10 warm-up, base 0.5)[1:4]
  engine/testdata/losses.safetensors          both losses and their gradients
  engine/testdata/sgd.safetensors             three clamped SGD steps

The full-width resnet18_simclr is compared live by the Go tests (its weights
alone are 45 MB, too big for git).
"""
import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402

import oracle  # noqa: E402
from tsimcne_torch import cauchy_loss, cosine_loss, save_safetensors  # noqa: E402

OUT = "engine/testdata"
ARCH, OUT_DIM = "resnet_w8_b1111_h64", 16


def lr_table(n, w, base):
    t = list(np.linspace(0, base, w)) if w > 0 else []
    d = n + 1 - w
    t += [base * 0.5 * (1 + math.cos(math.pi * k / d)) for k in range(d)]
    return t


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    oracle.init(argparse.Namespace(arch=ARCH, out_dim=OUT_DIM, seed=0, out=OUT + "/micro_weights.safetensors"))
    x = rng.random((8, 32, 32, 3), dtype=np.float64).astype(np.float32)
    save_safetensors(OUT + "/micro_input.safetensors", {"x": x})
    lrs = lr_table(20, 10, 0.5)[1:4]
    oracle.run(argparse.Namespace(
        weights=OUT + "/micro_weights.safetensors", arch=ARCH, out_dim=OUT_DIM,
        input=OUT + "/micro_input.safetensors", lrs=",".join(repr(v) for v in lrs),
        out=OUT + "/micro_expected.safetensors", metric="euclidean", trainable="", float32=False, masks=""))

    # Losses on random embeddings, float64.
    out = {}
    for name, n, d, scale in (("a", 6, 2, 1.0), ("b", 16, 5, 3.0), ("c", 64, 128, 0.1)):
        z = torch.from_numpy(rng.normal(size=(n, d)) * scale).requires_grad_()
        out["z_" + name] = z.detach().numpy().astype(np.float32)
        z64 = torch.from_numpy(out["z_" + name].astype(np.float64))
        for metric, f in (("cauchy", cauchy_loss), ("cosine", cosine_loss)):
            zz = z64.clone().requires_grad_()
            loss = f(zz)
            loss.backward()
            out["%s_%s_loss" % (metric, name)] = np.array([loss.item()])
            out["%s_%s_grad" % (metric, name)] = zz.grad.numpy()
    save_safetensors(OUT + "/losses.safetensors", out)

    # SGD: gradients beyond +-4 exercise the clamp.
    p0 = rng.normal(size=(50,))
    grads = [rng.normal(size=(50,)) * 5 for _ in range(3)]
    lrs = [0.1, 0.05, 0.2]
    p = torch.tensor(p0.astype(np.float32), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4)
    out = {"p0": p0.astype(np.float32), "lrs": np.array(lrs)}
    for i, g in enumerate(grads):
        out["g%d" % i] = g.astype(np.float32)
        p.grad = torch.tensor(out["g%d" % i], dtype=torch.float64).clamp(-4, 4)
        opt.param_groups[0]["lr"] = lrs[i]
        opt.step()
        out["p%d" % (i + 1)] = p.detach().numpy().copy()
        out["m%d" % (i + 1)] = opt.state[p]["momentum_buffer"].numpy().copy()
    save_safetensors(OUT + "/sgd.safetensors", out)


if __name__ == "__main__":
    main()
