"""PyTorch (eager, CUDA, TF32 matmuls and convolutions) twin of the Go
BenchmarkTrainStep in engine/cuda: one t-SimCNE training step of
resnet18_simclr (CIFAR stem: 3x3 conv, no max-pool) + MLP head (512-1024-128)
on 2xN views of 32x32 (both views in one forward pass, Cauchy InfoNCE,
backward, clamp to +-4, SGD momentum 0.9 wd 5e-4). Self-contained (no
torchvision). Prints one line per batch size:

  TORCH n=256 images_per_s=... s_per_step=... (torch X, device)

Usage: python3 scripts/gpu/bench_torch.py [N ...] [--steps S]
"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class Net(nn.Module):
    def __init__(self, widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2), hidden=1024, out=128):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, c = [], widths[0]
        for i, (w, b) in enumerate(zip(widths, blocks)):
            for j in range(b):
                layers.append(Block(c, w, 2 if i > 0 and j == 0 else 1))
                c = w
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(c, hidden), nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        h = self.layers(x).mean((2, 3))
        return self.head(h)


def cauchy_loss(z):
    n = z.shape[0]
    sq = (z * z).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2 * (z @ z.T)).clamp_min(0)
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    q = (1.0 / (1.0 + d2)).masked_fill(eye, 0.0)
    idx = torch.arange(n, device=z.device)
    pos = q[idx, (idx + n // 2) % n]
    return (-torch.log(pos) + torch.log(q.sum(1))).mean()


def bench(n, steps, dev):
    torch.manual_seed(1)
    model = Net().to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(2 * n, 3, 32, 32, device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = cauchy_loss(model(x))
        loss.backward()
        for p in model.parameters():
            p.grad.clamp_(-4, 4)
        opt.step()
        return loss

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.item()
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / steps
    print("TORCH n=%d images_per_s=%.0f s_per_step=%.4f (torch %s, %s)" % (
        n, 2 * n / dt, dt, torch.__version__, torch.cuda.get_device_name(0)), flush=True)


def main():
    args = sys.argv[1:]
    steps = 10
    if "--steps" in args:
        i = args.index("--steps")
        steps = int(args[i + 1])
        del args[i:i + 2]
    sizes = [int(a) for a in args] or [256, 512]
    if not torch.cuda.is_available():
        print("TORCH unavailable: torch.cuda.is_available() is False", flush=True)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    for n in sizes:
        bench(n, steps, torch.device("cuda"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
