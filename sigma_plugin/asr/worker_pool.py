"""An ordered parallel map whose every way out shuts its worker processes down.

``multiprocessing.Pool.terminate()`` can block when it is called while results are still in
transit, and a pool worker that dies leaves its task pending forever. Here the work goes through
``concurrent.futures.ProcessPoolExecutor`` (a dead worker raises BrokenProcessPool instead of
hanging) with a bounded number of tasks in flight; stopping early (an error in the consumer, the
generator closed) cancels what has not started and waits only for the few running tasks.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, Optional


def ordered_map(fn: Callable, items: Iterable, nj: int, initializer: Optional[Callable] = None,
                in_flight: int = 0) -> Iterator:
    """fn(item) for every item, in order, computed by nj processes; at most ``in_flight``
    (default 4 * nj) tasks submitted ahead of the consumer. fn should return its errors as
    values: an exception raised by fn is re-raised here after the pool has shut down."""
    in_flight = in_flight or 4 * nj
    pending: deque = deque()
    pool = ProcessPoolExecutor(max_workers=nj, initializer=initializer)
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
