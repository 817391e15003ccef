"""Helpers shared by the scripts/bench_*.py benchmarks."""

import time

import numpy as np


def median_time(fn, repeats, warmup=2):
    """Median wall time of fn() in seconds over `repeats` calls, after `warmup` calls
    (tracing and compilation happen there)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
