"""BLAS threading for the rating engine's small dense linear algebra.

The fits solve M x M systems with M in the hundreds. At that size OpenBLAS's worker threads cost
more than they save, and on a shared 2-core machine they spin against other processes: measured
with M = 200, fit + sandwich took 0.29 s with two BLAS threads and 0.018 s with one, the
1,000-replicate bootstrap 3.4 s vs 0.9 s (benchmarks/README.md). threadpoolctl (a well-kept
library, used by scikit-learn) sets the limit for the duration of a call only.
"""

from __future__ import annotations

from contextlib import nullcontext

from threadpoolctl import threadpool_limits

# above this many models a multi-threaded factorisation starts to pay for itself
SINGLE_THREAD_MAX_MODELS = 600


def blas_threads_for(n_models: int):
    """Context manager: one BLAS thread for small problems, the library default for large ones."""
    if n_models <= SINGLE_THREAD_MAX_MODELS:
        return threadpool_limits(limits=1, user_api="blas")
    return nullcontext()
