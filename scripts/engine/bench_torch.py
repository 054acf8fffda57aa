"""PyTorch twin of BenchmarkTrainStep: one t-SimCNE training step (both views
in one forward pass, Cauchy InfoNCE, backward, clamp to ±4, SGD momentum 0.9
wd 5e-4) on 2 threads. Prints images/s (every view counts) and peak RSS.

Run with Debian's python: /usr/bin/python3 scripts/engine/bench_torch.py 64 [steps] [arch] [side]
Each batch size should run in its own process so peak RSS is its own.
"""
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

from tsimcne_torch import TSimCNE  # noqa: E402


def cauchy_loss_fast(z):
    """The Cauchy InfoNCE with squared distances from one matrix product, the
    fastest form in PyTorch (the oracle's cauchy_loss materialises all
    pairwise differences for accuracy; that would handicap PyTorch here)."""
    n = z.shape[0]
    sq = (z * z).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2 * (z @ z.T)).clamp_min(0)
    q = (1.0 / (1.0 + d2)).masked_fill(torch.eye(n, dtype=torch.bool), 0.0)
    idx = torch.arange(n)
    pos = q[idx, (idx + n // 2) % n]
    return (-torch.log(pos) + torch.log(q.sum(1))).mean()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    arch = sys.argv[3] if len(sys.argv) > 3 else "resnet18_simclr"
    torch.set_num_threads(2)
    torch.manual_seed(1)
    model = TSimCNE(arch)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    side = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    x = torch.rand(2 * n, 3, side, side)

    def step():
        opt.zero_grad(set_to_none=True)
        z, _ = model(x)
        loss = cauchy_loss_fast(z)
        loss.backward()
        for p in model.parameters():
            p.grad.clamp_(-4, 4)
        opt.step()
        return loss.item()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t0) / steps
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("torch %s 2x%d: %.3f s/step, %.2f images/s, peak %.0f MB (torch %s, %d threads)" % (
        arch, n, dt, 2 * n / dt, peak, torch.__version__, torch.get_num_threads()))


if __name__ == "__main__":
    main()
