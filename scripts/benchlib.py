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


def interleaved_times(fns, repeats, warmup=2):
    """Median wall times of several functions called in turn, round after round, so
    that slow phases of a shared machine affect them alike: a list of seconds."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
    return [float(np.median(ts)) for ts in times]
