"""PyTorch oracle for the Go engine (run with Debian's /usr/bin/python3).

  oracle.py run --weights W --arch A --out-dim D --input X --lrs a,b,c --out R
      [--metric euclidean|cosine] [--trainable PREFIX] [--float32] [--masks M]
    Loads W (a safetensors state dict, e.g. a Go checkpoint) into the PyTorch
    model with load_state_dict(strict=True) (keys under "optimizer." are
    dropped first), then on the NHWC batch X["x"] (2N views, rows i and i+N
    positive):
      * eval-mode forward:            z_eval, h_eval
      * train-mode forward/backward:  loss0, z, h, grad.<param>,
                                      bn1.<buffer> (BN buffers after that forward)
      * three SGD steps (momentum 0.9, weight decay 5e-4, gradients clamped to
        +-4 first) at the learning rates a, b, c, each on a fresh forward of X:
        losses, after3.<key> (full state dict), momentum3.<param>
    Only parameters whose names start with PREFIX are trained (default: all);
    BatchNorm stays in training mode, as in t-SimCNE's stage 2. Computation is
    in float64 unless --float32; results are written as F32. With --masks,
    ReLUs replay the engine's masks (see run()); relu_margin,
    mask_disagreements and mask_disagreement_max_abs describe them.

  oracle.py init --arch A --out-dim D --seed S --out W
    Writes a PyTorch-initialised state dict (torchvision's init) for Go to load.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402

from tsimcne_torch import (TSimCNE, cauchy_loss, cosine_loss, load_safetensors,  # noqa: E402
                           save_safetensors, state_dict_numpy)


def f32(t):
    return t.detach().cpu().numpy().astype(np.float32)


def load_model(weights, arch, out_dim, dtype):
    sd, _ = load_safetensors(weights)
    sd = {k: torch.from_numpy(v) for k, v in sd.items() if not k.startswith("optimizer.")}
    model = TSimCNE(arch, out_dim)
    model.load_state_dict(sd, strict=True)
    return model.to(dtype)


def run(a):
    dtype = torch.float32 if a.float32 else torch.float64
    torch.set_num_threads(2)
    model = load_model(a.weights, a.arch, a.out_dim, dtype)
    inp, _ = load_safetensors(a.input)
    x = torch.from_numpy(inp["x"]).permute(0, 3, 1, 2).contiguous().to(dtype)
    lossf = cauchy_loss if a.metric == "euclidean" else cosine_loss
    out = {}
    model.eval()
    with torch.no_grad():
        z, h = model(x)
    out["z_eval"], out["h_eval"] = f32(z), f32(h)

    model.train()
    params = []
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(a.trainable))
        if p.requires_grad:
            params.append((name, p))
    opt = torch.optim.SGD([p for _, p in params], lr=0.0, momentum=0.9, weight_decay=5e-4)
    lrs = [float(v) for v in a.lrs.split(",")]
    losses = []
    # ReLU replay. A ReLU input within float32 rounding of zero may be
    # masked differently by a float32 engine and this float64 oracle, and one
    # such element changes gradients by ~1e-3 relative -- more than the
    # tolerance -- although both are right. With --masks (the engine's ReLU
    # masks, one per ReLU call of each step, NHWC), every ReLU applies the
    # engine's mask instead of its own decision; disagreements with the
    # float64 decision are counted and their largest |input| reported, so the
    # caller can check that they are all at rounding level.
    masks = load_safetensors(a.masks)[0] if a.masks else None
    calls = [0]
    stash = []
    stats = {"disagree": 0, "disagree_max": 0.0, "margin": float("inf")}
    cur_step = [0]

    def pre_hook(_mod, inp):
        stash.append(inp[0].clone())

    def post_hook(_mod, _inp, _out):
        pre = stash.pop()
        k = calls[0]
        calls[0] += 1
        if cur_step[0] == 0:
            stats["margin"] = min(stats["margin"], pre.detach().abs().min().item())
        if masks is None:
            return torch.relu(pre)
        m = torch.from_numpy(masks["mask%d.%d" % (cur_step[0], k)].astype(np.bool_))
        if m.dim() == 4:
            m = m.permute(0, 3, 1, 2)
        own = pre.detach() > 0
        diff = own != m
        n = int(diff.sum())
        if n:
            stats["disagree"] += n
            stats["disagree_max"] = max(stats["disagree_max"], pre.detach()[diff].abs().max().item())
        return pre * m.to(pre.dtype)

    for mod in model.modules():
        if isinstance(mod, torch.nn.ReLU):
            mod.register_forward_pre_hook(pre_hook)
            mod.register_forward_hook(post_hook)
    for step, lr in enumerate(lrs):
        cur_step[0] = step
        calls[0] = 0
        opt.zero_grad(set_to_none=True)
        z, h = model(x)
        loss = lossf(z)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            out["loss0"] = np.array([loss.item()], dtype=np.float64)
            out["z"], out["h"] = f32(z), f32(h)
            for name, p in params:
                out["grad." + name] = f32(p.grad)
            for k, v in model.state_dict().items():
                if "running" in k or "num_batches" in k:
                    out["bn1." + k] = v.numpy().copy() if v.dtype == torch.int64 else f32(v)
        for _, p in params:
            p.grad.clamp_(-4, 4)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
    out["losses"] = np.array(losses, dtype=np.float64)
    out["relu_margin"] = np.array([stats["margin"]])
    if masks is not None:
        out["mask_disagreements"] = np.array([float(stats["disagree"])])
        out["mask_disagreement_max_abs"] = np.array([stats["disagree_max"]])
    for k, v in model.state_dict().items():
        out["after3." + k] = v.numpy().copy() if v.dtype == torch.int64 else f32(v)
    for name, p in params:
        out["momentum3." + name] = f32(opt.state[p]["momentum_buffer"])
    save_safetensors(a.out, out, {"torch": torch.__version__, "dtype": str(dtype)})


def init(a):
    torch.manual_seed(a.seed)
    model = TSimCNE(a.arch, a.out_dim)
    sd = state_dict_numpy(model)
    save_safetensors(a.out, sd, {"source": "pytorch init, seed %d" % a.seed})


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--weights", required=True)
    r.add_argument("--arch", required=True)
    r.add_argument("--out-dim", type=int, default=128)
    r.add_argument("--input", required=True)
    r.add_argument("--lrs", default="0.01,0.02,0.03")
    r.add_argument("--out", required=True)
    r.add_argument("--metric", default="euclidean", choices=["euclidean", "cosine"])
    r.add_argument("--trainable", default="")
    r.add_argument("--float32", action="store_true")
    r.add_argument("--masks", default="")
    i = sub.add_parser("init")
    i.add_argument("--arch", required=True)
    i.add_argument("--out-dim", type=int, default=128)
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--out", required=True)
    a = ap.parse_args()
    {"run": run, "init": init}[a.cmd](a)


if __name__ == "__main__":
    main()
