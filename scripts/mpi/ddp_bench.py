"""PyTorch DistributedDataParallel (gloo) twin of scripts/mpi/benchstep: t-SimCNE
training steps on random data, global batch split over the ranks, for
docs/BENCHMARKS.md. Each rank computes the Cauchy InfoNCE of its own views
(DDP's usual use: no gathered negatives) with per-rank BatchNorm (DDP's
default); DDP all-reduces the gradients in buckets overlapped with backward.

The per-step communication time is estimated as the step time minus the
step time under model.no_sync() (no gradient all-reduce).

Run with Debian's python:
  /usr/bin/python3 scripts/mpi/ddp_bench.py [world=2] [global_batch=256] [steps=20] [threads=1] [arch=resnet_tiny] [size=16]
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "engine"))
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from tsimcne_torch import TSimCNE  # noqa: E402
from bench_torch import cauchy_loss_fast  # noqa: E402


def worker(rank, world, batch, steps, threads, arch, size):
    torch.set_num_threads(threads)
    if world > 1:
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29533", rank=rank, world_size=world)
    torch.manual_seed(1)
    model = TSimCNE(arch)
    model.train()
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    b = batch // world
    g = torch.Generator().manual_seed(rank)
    x = torch.rand(2 * b, 3, size, size, generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        z, _ = net(x)
        loss = cauchy_loss_fast(z)
        loss.backward()
        for p in net.parameters():
            p.grad.clamp_(-4, 4)
        opt.step()

    def timed(n, nosync):
        if world > 1:
            dist.barrier()
        t0 = time.perf_counter()
        for _ in range(n):
            if nosync:
                with net.no_sync():
                    step()
            else:
                step()
        if world > 1:
            dist.barrier()
        return (time.perf_counter() - t0) / n

    step()
    step()
    dt = timed(steps, False)
    dt_nosync = timed(steps, True) if world > 1 else dt
    if rank == 0:
        print("torch %s %dx%d: %d rank(s) x %d thread(s) (%s), global batch %d: %.4f s/step, %.0f images/s, "
              "communication ~%.1f ms/step (step minus no_sync step %.4f s) (torch %s)" % (
                  arch, size, size, world, threads, "DDP gloo" if world > 1 else "no DDP", batch, dt, batch / dt,
                  (dt - dt_nosync) * 1000, dt_nosync, torch.__version__), flush=True)
    if world > 1:
        dist.destroy_process_group()


def main():
    a = sys.argv[1:]
    world = int(a[0]) if len(a) > 0 else 2
    batch = int(a[1]) if len(a) > 1 else 256
    steps = int(a[2]) if len(a) > 2 else 20
    threads = int(a[3]) if len(a) > 3 else 1
    arch = a[4] if len(a) > 4 else "resnet_tiny"
    size = int(a[5]) if len(a) > 5 else 16
    if world == 1:
        worker(0, 1, batch, steps, threads, arch, size)
        return
    mp.spawn(worker, args=(world, batch, steps, threads, arch, size), nprocs=world, join=True)


if __name__ == "__main__":
    main()
