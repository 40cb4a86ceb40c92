"""Catching up on a long backlog: worker processes scan batches, the daemon commits them in order.

A log the daemon has not read for a while (it was stopped for days, or sees
an old log for the first time) can hold gigabytes, and scanning, not
committing, is most of one core's time (docs/performance.md). From
``[rtf] catchup_from`` bytes behind, the ingestor hands the backlog to
``read_parallel``: it cuts it into ``[rtf] batch_bytes`` batches, each
ending after a newline, has ``catchup_workers`` processes scan them
(``scanworker.scan_chunk``) and commits the results in file order through
the ingestor's ``commit``, so the committing is exactly the serial
reader's: records, counters and the position after them in one transaction.

Whatever is unusual ends the parallel run, and the serial reader goes on
from the last committed position: a batch whose last event needs bytes past
its cut (a preview's newline), a line longer than the cut window, the file's
first bytes changing under it, a worker that died.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Callable, Optional, Sequence

from . import scanworker
from .follow import Position, prefix

log = logging.getLogger("ishowd.ingest")   # the ingestor's warnings, under its name

WINDOW = 1 << 16             # where a parallel batch is cut: after the last newline in its last 64 KiB
JOIN_BYTES = 8 << 20         # scanned batches committed in one transaction, at most


def catchup_workers(setting: int) -> int:
    """``[rtf] catchup_workers``: -1 is automatic (half the usable cores, at least 2 and at most 4;
    none on a single core), 0 is none."""
    if setting >= 0:
        return setting
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(4, max(2, cores // 2))


def read_parallel(f, pos: Position, limit: int, *, workers: int, batch_bytes: int, ignore: Sequence[str],
                  commit: Callable[[Position, scanworker.Batch], None],
                  bench: Optional[dict] = None) -> bool:
    """Scan ``f`` from ``pos.offset`` up to ``limit`` in ``workers`` processes; ``commit(pos, batch)`` each
    batch in file order (``pos`` set to the batch's size and time; ``commit`` moves its offset).

    ``ignore``: the ``[rtf] ignore_errors`` patterns, as text (each worker compiles them once);
    ``bench``: the benchmark's texts (``logformat.benchmark_texts``).
    Returns whether anything was committed; the caller reads on serially from ``pos`` in any case.
    """
    # imported here: a daemon that never catches up never loads them
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    started_at = pos.offset
    ignore = tuple(ignore)                      # hashable: each worker keeps its compiled patterns by it
    ex = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=scanworker.init, initargs=(os.getpid(),))
    try:
        queue: deque = deque()
        off, skip = pos.offset, bool(pos.skip_line)
        # The workers open the very file this process has open (even if renamed meanwhile).
        source = f"/proc/{os.getpid()}/fd/{f.fileno()}"
        if not os.path.exists(source):
            source = pos.path
        while True:
            while len(queue) < 2 * workers and off < limit:
                n = min(batch_bytes, limit - off)
                if n == batch_bytes:            # cut after the last newline of the batch
                    f.seek(off + n - WINDOW)
                    nl = f.read(WINDOW).rfind(b"\n")
                    if nl < 0:
                        break                   # an overlong line: the serial reader's business
                    n = n - WINDOW + nl + 1
                fut = ex.submit(scanworker.scan_chunk, source, off, n, skip, ignore, pos.log, bench)
                queue.append((off, n, fut))
                off, skip = off + n, False
            if not queue:
                break
            at, n, fut = queue.popleft()
            batch = fut.result()
            if at != pos.offset or hashlib.sha1(prefix(f, pos.fp_len)).hexdigest() != pos.fingerprint:
                break
            # A batch already scanned behind it joins the same transaction: fewer commits and merges
            # of rollup chunks, which is what this process spends its time on.
            while batch.consumed == n and queue and queue[0][2].done() and n + queue[0][1] <= JOIN_BYTES:
                _at, more, fut = queue.popleft()
                batch = scanworker.join(batch, fut.result())
                n += more
            pos.size = limit
            pos.changed = time.time()
            commit(pos, batch)
            if batch.consumed != n:
                break
    except Exception as exc:  # a worker that died: the serial reader goes on
        log.warning("parallel catch-up stopped (%s); reading on serially", exc)
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
    return pos.offset > started_at
