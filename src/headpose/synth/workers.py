"""Run a function over tasks in this process or in a pool of worker processes, as ``synth mesh`` and
``synth render`` do: fork where the platform has it (workers inherit the loaded modules), results as they
finish."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterable, Iterator


def imap_workers(fn: Callable, tasks: Iterable, workers: int, initializer: Callable | None = None,
                 initargs: tuple = (), chunksize: int = 1) -> Iterator:
    """``fn`` over ``tasks``: in this process when ``workers`` is 1 (``initializer`` run here first), else in a
    pool of ``workers`` processes, yielding results in completion order; the pool is closed and joined when the
    iteration ends or is abandoned."""
    if workers == 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, tasks)
        return
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    pool = ctx.Pool(workers, initializer=initializer, initargs=initargs)
    try:
        yield from pool.imap_unordered(fn, tasks, chunksize=chunksize)
    finally:
        pool.close()
        pool.join()
