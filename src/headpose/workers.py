"""Worker processes for the batch jobs (``prepare``, ``synth mesh``, ``synth render``): one function that runs a
function over tasks in a pool and ends promptly when the workers cannot start or die.

* An initializer that raises in a worker (model files missing, ...) does not kill that worker (a dead worker
  would be replaced and fail again, forever, with ``multiprocessing.Pool``): the error is kept, the worker
  answers its first task with it, and the caller gets one :class:`~headpose.errors.HeadposeError` naming the
  cause (the CLI prints one line, exit 2) while the pool is shut down.
* A worker that dies (killed, out of memory, a crash in native code) breaks the pool: :class:`WorkersDied`
  (a ``HeadposeError``), which a caller may catch to finish the rest in its own process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from headpose.errors import HeadposeError


class WorkersDied(HeadposeError):
    """A worker process ended without answering (killed, crashed, could not import its job)."""


class _StartFailed:
    """What a worker whose initializer raised answers every task with."""

    def __init__(self, message: str):
        self.message = message


_START_ERROR: str | None = None  # in a worker: why its initializer failed


def _describe(e: BaseException) -> str:
    return str(e) if isinstance(e, HeadposeError) else f"{type(e).__name__}: {e}"


def _start(initializer: Callable | None, initargs: tuple) -> None:
    global _START_ERROR
    _START_ERROR = None
    if initializer is None:
        return
    try:
        initializer(*initargs)
    except BaseException as e:  # noqa: BLE001 - reported to the parent by the first task, see the module docstring
        _START_ERROR = _describe(e)


def _run_chunk(fn: Callable, chunk: list) -> list | _StartFailed:
    if _START_ERROR is not None:
        return _StartFailed(_START_ERROR)
    return [fn(t) for t in chunk]


def spawn_context():
    """The context the pools use: spawn, so workers start clean, with none of the caller's threads (OpenCV,
    LiteRT, TensorFlow pools) — a forked worker can inherit one of their locks held and hang on it (seen: a
    render worker forked from a process that had run OpenCV blocked for ever in ``cv2.setNumThreads``). None
    if spawn cannot re-import the caller's main module (a script read from stdin): the work then runs in this
    process."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if getattr(main, "__spec__", None) is None and path is not None and not os.path.isfile(path):
        return None
    return mp.get_context("spawn")


def imap_workers(fn: Callable, tasks: Iterable, workers: int, initializer: Callable | None = None,
                 initargs: tuple = (), chunksize: int = 1, ordered: bool = False, context=None) -> Iterator:
    """``fn`` over ``tasks``: in this process when ``workers`` is 1 or no context can start workers
    (``initializer`` run here first), else in a pool of ``workers`` processes (``context``: a multiprocessing
    context, default :func:`spawn_context`; ``fn``, ``initializer`` and the tasks must pickle), ``chunksize``
    tasks per message, yielding results in completion order (``ordered``: in task order).

    Raises :class:`~headpose.errors.HeadposeError` when a worker's initializer fails and :class:`WorkersDied`
    when a worker dies; an exception raised by ``fn`` reaches the caller as it is. The pool is shut down
    (pending tasks cancelled) when the iteration ends, fails or is abandoned.
    """
    context = context or (spawn_context() if workers > 1 else None)
    if workers <= 1 or context is None:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, tasks)
        return
    tasks = list(tasks)
    chunksize = max(1, int(chunksize))
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start,
                               initargs=(initializer, initargs))
    try:
        futures = [pool.submit(_run_chunk, fn, tasks[i : i + chunksize]) for i in range(0, len(tasks), chunksize)]
        for fut in futures if ordered else as_completed(futures):
            try:
                out = fut.result()
            except BrokenProcessPool:
                raise WorkersDied("a worker process died without answering (killed, out of memory, a crash, or a "
                                  "script without `if __name__ == \"__main__\":` that spawned workers re-ran); "
                                  "--workers 1 runs the work in this process") from None
            if isinstance(out, _StartFailed):
                raise HeadposeError(f"worker process could not start: {out.message}")
            yield from out
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
