"""BLAS threading for the rating engine's dense linear algebra.

The fits solve M x M systems with M in the tens to thousands. On this kind of machine (2 cores,
shared with the web processes and the worker) OpenBLAS's worker threads cost more than they
save: measured with M = 200, fit + sandwich took 0.29 s with two BLAS threads and 0.018 s with
one, the 1,000-replicate bootstrap 3.4 s vs 0.9 s; with M = 1000, fit + sandwich 2.3 s vs 0.75 s
(benchmarks/README.md). threadpoolctl (a well-kept library, used by scikit-learn) sets the limit
for the duration of a call only, so other code keeps its own setting.
"""

from __future__ import annotations

import functools

from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    """The process's loaded BLAS libraries, found once: threadpool_limits() looks them up again on
    every call (~15 ms of file system calls), which the worker, fitting 22 views per refit, felt.
    numpy's BLAS is loaded with numpy, before any fit."""
    return ThreadpoolController()


def blas_threads_for(n_models: int):
    """Context manager: one BLAS thread while fitting (see the module docstring for why)."""
    del n_models  # kept so a size-dependent policy can return without touching callers
    return _controller().limit(limits=1, user_api="blas")
