"""The timing preamble shared by the GPU check's PyTorch peers (norm_peer.py, patchify_peer.py): their common
options (--reps, --device, --batch), the device with its synchronisation, and the median time of a call. The peers
import it by name: Python puts a script's own folder (bench/torch) first on sys.path, so they are run as before,
`python3 bench/torch/<peer>.py ...` from any folder.
"""
import argparse
import statistics
import time

import torch


def median_ms(fn, reps, sync):
    """Median wall time in ms of `reps` calls of fn() after one warm-up call, each followed by sync() (a GPU launch
    returns before its work is done)."""
    fn()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def peer_arguments():
    """An argument parser with the options every peer takes: --reps (20), --device (cuda), --batch (128)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=128)
    return ap


def device_and_sync(name):
    """The torch.device `name` and the function that waits for its queued work (nothing to wait for off a GPU)."""
    dev = torch.device(name)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    return dev, sync
