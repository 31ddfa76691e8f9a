"""Peak memory and time of one MSPN training step: batch 4 at 228x304, 90 iterations (84 + 6).

Full backpropagation through every iteration (no truncation). With ``--backend fast`` (torch)
every iteration is checkpointed (MSPN.set_grad_checkpointing) and the guidance window term
per window row; ``--backend native_grad`` (C forward and backward) keeps only each
iteration's small inputs and needs no checkpointing. Reports peak resident memory
(ru_maxrss) and wall time.

    python benchmarks/bench_train_memory.py [--backend fast|native_grad] [--batch 4]
        [--height 228] [--width 304] [--iterations 84 6]
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import torch

from sdr_core.guidance import GuidanceNet
from sdr_core.losses import l1_l2_loss
from sdr_core.mspn import MSPN, MSPNConfig
from sdr_core.train import SDRModel


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--height", type=int, default=228)
    parser.add_argument("--width", type=int, default=304)
    parser.add_argument("--iterations", type=int, nargs=2, default=(84, 6))
    parser.add_argument("--no-checkpointing", action="store_true")
    parser.add_argument("--backend", choices=["fast", "native_grad"], default="fast")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = SDRModel(GuidanceNet(), MSPN(MSPNConfig(backend=args.backend)))
    checkpointing = args.backend == "fast" and not args.no_checkpointing
    model.mspn.set_grad_checkpointing(checkpointing)
    b, h, w = args.batch, args.height, args.width
    image = torch.rand(b, 3, h, w)
    gt = 1 + 4 * torch.rand(b, 1, h, w)
    sparse = torch.where(torch.rand(b, 1, h, w) < 2 / (h * w), gt, torch.zeros_like(gt))
    sparse[:, :, h // 2, w // 2] = gt[:, :, h // 2, w // 2]  # at least one point per sample
    init = gt * 0.9
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    start = time.perf_counter()
    loss = l1_l2_loss(model(image, sparse, init, tuple(args.iterations)), gt)
    forward_s = time.perf_counter() - start
    loss.backward()
    total_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"| batch {b} | {h}x{w} | iterations {args.iterations[0]}+{args.iterations[1]} "
        f"| {args.backend} | checkpointing {checkpointing} | peak RSS {peak:.2f} GiB "
        f"(before step {base:.2f} GiB) | forward {forward_s:.0f} s | forward+backward "
        f"{total_s:.0f} s | {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads |"
    )


if __name__ == "__main__":
    main()
