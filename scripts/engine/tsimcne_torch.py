"""The engine's model in PyTorch, for the oracle and the benchmark.

The backbone mirrors torchvision's resnet18 with the SimCLR/CIFAR changes
(conv1 3x3 stride 1, no max-pool, no fc), with configurable widths and block
counts so the engine's smaller variants have PyTorch twins; parameter names
are exactly torchvision's, under `backbone.`, and the head is
nn.Sequential(Linear, ReLU, Linear) under `head.`.
Also: a minimal safetensors reader/writer (numpy only; Debian ships no
safetensors package) and the two losses.
"""
import json
import re
import struct

import numpy as np
import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock

NAMED = {
    "resnet18_simclr": ((64, 128, 256, 512), (2, 2, 2, 2), 1024),
    "resnet10_simclr": ((64, 128, 256, 512), (1, 1, 1, 1), 1024),
    "resnet_small": ((32, 64, 128, 256), (1, 1, 1, 1), 1024),
    "resnet_tiny": ((16, 32, 64, 128), (1, 1, 1, 1), 1024),
}


def parse_arch(name):
    if name in NAMED:
        return NAMED[name]
    m = re.fullmatch(r"resnet_w(\d+)_b([1-9])([1-9])([1-9])([1-9])(?:_h(\d+))?", name)
    if not m:
        raise ValueError("unknown arch " + name)
    w = int(m.group(1))
    return (w, 2 * w, 4 * w, 8 * w), tuple(int(m.group(i)) for i in range(2, 6)), int(m.group(6) or 1024)


class Backbone(nn.Module):
    def __init__(self, widths, blocks):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        inp = widths[0]
        for s in range(4):
            layers = []
            for i in range(blocks[s]):
                stride = 2 if (s > 0 and i == 0) else 1
                ds = None
                if stride != 1 or inp != widths[s]:
                    ds = nn.Sequential(nn.Conv2d(inp, widths[s], 1, stride, bias=False), nn.BatchNorm2d(widths[s]))
                layers.append(BasicBlock(inp, widths[s], stride, ds))
                inp = widths[s]
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*layers))
        for m in self.modules():  # torchvision's ResNet init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


class TSimCNE(nn.Module):
    def __init__(self, arch="resnet18_simclr", out_dim=128):
        super().__init__()
        widths, blocks, hidden = parse_arch(arch)
        self.backbone = Backbone(widths, blocks)
        self.head = nn.Sequential(nn.Linear(widths[3], hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))

    def forward(self, x):
        h = self.backbone(x)
        return self.head(h), h


def cauchy_loss(z):
    n = z.shape[0]
    half = n // 2
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    q = 1.0 / (1.0 + d2)
    eye = torch.eye(n, dtype=torch.bool)
    q = q.masked_fill(eye, 0.0)
    idx = torch.arange(n)
    pos = q[idx, (idx + half) % n]
    return (-torch.log(pos) + torch.log(q.sum(1))).mean()


def cosine_loss(z, tau=0.5):
    n = z.shape[0]
    half = n // 2
    zn = nn.functional.normalize(z, dim=1, eps=1e-12)
    logits = zn @ zn.T / tau
    logits = logits.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
    idx = torch.arange(n)
    return nn.functional.cross_entropy(logits, (idx + half) % n)


_DT = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8}
_NAME = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64",
         np.dtype(np.uint8): "U8"}


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (hl,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hl])
    meta = header.pop("__metadata__", {})
    base = 8 + hl
    out = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(raw[base + a:base + b], dtype=_DT[v["dtype"]]).reshape(v["shape"]).copy()
    return out, meta


def save_safetensors(path, tensors, meta=None):
    header = {}
    off = 0
    blobs = []
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        b = a.tobytes()
        header[k] = {"dtype": _NAME[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    if meta:
        header["__metadata__"] = meta
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def state_dict_numpy(model):
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
