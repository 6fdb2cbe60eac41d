#!/usr/bin/python3
"""torchvision peer of the loader-vs-torchvision comparison (bench/Slak.Bench/Data/LoaderVsTorchvision.cs): a
DataLoader over torchvision's ImageFolder(root/train) doing the full training transform -- RandomResizedCrop(size,
bicubic) + RandomHorizontalFlip + RandAugment(2, 9) + ToTensor + Normalize(ImageNet) + RandomErasing(0.25) -- with
--workers worker processes, batch --batch-size. Prints one line:  <images> <seconds> <images_per_second>
after one warm-up pass over --warmup batches. Run with Debian's /usr/bin/python3 (python3-torchvision).
"""
import argparse
import os
import time

import torch
from torchvision import datasets, transforms
from torchvision.transforms import InterpolationMode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(1)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(a.size, interpolation=InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip(),
        transforms.RandAugment(num_ops=2, magnitude=9, interpolation=InterpolationMode.BICUBIC),
        transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        transforms.RandomErasing(p=0.25, value="random"),
    ])
    data = datasets.ImageFolder(os.path.join(a.root, "train"), transform=tf)
    loader = torch.utils.data.DataLoader(data, batch_size=a.batch_size, shuffle=True, num_workers=a.workers,
                                         drop_last=True, persistent_workers=a.workers > 0)
    it = iter(loader)
    for _ in range(a.warmup):
        next(it)
    seen = 0
    t0 = time.perf_counter()
    while seen < a.images:
        try:
            x, _ = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        seen += x.shape[0]
    dt = time.perf_counter() - t0
    print(f"{seen} {dt:.3f} {seen / dt:.1f}")


if __name__ == "__main__":
    main()
