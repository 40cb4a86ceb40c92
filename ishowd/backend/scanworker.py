"""A scanned batch as the store takes it, and what a catch-up worker process runs.

``pack`` turns the events of a scan into ``rtf_records`` rows, ready for
``executemany``: the serial reader and the workers both commit a ``Batch``,
and a worker sends one back as plain tuples (cheap to pickle, nothing left for
the committing process to build). Kept apart from ``ingest`` so that a worker,
started fresh (``spawn``), imports only this, ``logformat`` and the SQL
strings: the pool is up in well under 0.1 s.
"""
from __future__ import annotations

import os
from operator import itemgetter
from typing import NamedTuple, Optional

from ..store import sql
from ..store.rollup import add
from . import logformat as lf

# A synthesis as a row of ``rtf_records``, in ``sql.RTF_INSERT``'s parameter order.
_COLUMN_OF = {"ts": "ts_us", "source": "source", "voice": "voice", "elapsed_ms": "elapsed_ms",
              "audio_seconds": "audio_seconds", "rtf": "rtf", "engine": "engine"}
assert sql.RTF_INSERT_PARAMS[-2:] == ("first_after_start", "log")
_ROW = itemgetter(*(lf.Synthesis._fields.index(_COLUMN_OF[c]) for c in sql.RTF_INSERT_PARAMS[:-2]))
FIRST = sql.RTF_INSERT_PARAMS.index("first_after_start")
COLUMN = {c: i for i, c in enumerate(sql.RTF_INSERT_PARAMS)}


class Batch(NamedTuple):
    consumed: int         # bytes decided (see lf.ScanResult)
    skip_line: bool
    counts: dict          # (kind, label) -> n
    rows: list            # rtf_records rows; first_after_start: a backend start came since the previous one
    start_last: bool      # a backend start follows the last row (or there is none and a start came)
    hours: dict           # (engine, voice, source, hour) -> [count, min, max, sum] of the rows' RTFs
    newest_us: int        # the newest row with an RTF (0: none); a backlog older than the minute
                          # rollups' retention goes into the store as ``hours`` alone


def pack(res: lf.ScanResult, log: str) -> Batch:
    rows = []
    started = False
    after = ((0, log), (1, log))
    hours: dict = {}
    newest = 0
    for ev in res.events:
        if type(ev) is lf.Start:
            started = True
            continue
        rows.append(_ROW(ev) + after[started])
        started = False
        v = ev.rtf
        if v is not None:
            _pos, ts_us, source, engine, voice = ev[:5]
            if ts_us > newest:
                newest = ts_us
            hk = (engine, voice, source, ts_us // 3_600_000_000 * 3600)
            agg = hours.get(hk)
            if agg is None:
                hours[hk] = [1, v, v, v]
            else:
                add(agg, 1, v, v, v)
    return Batch(res.consumed, res.skip_line, res.counts, rows, started, hours, newest)


def after_start(row: tuple) -> tuple:
    """The row, flagged as the first request after a backend start."""
    return row[:FIRST] + (1,) + row[FIRST + 1:]


def join(a: Batch, b: Batch) -> Batch:
    """Two consecutive batches as one (``a`` was consumed whole)."""
    rows = a.rows + b.rows
    if a.start_last and b.rows:
        rows[len(a.rows)] = after_start(b.rows[0])
    counts = dict(a.counts)
    for k, n in b.counts.items():
        counts[k] = counts.get(k, 0) + n
    hours = {k: list(agg) for k, agg in a.hours.items()}
    for k, agg in b.hours.items():
        if k in hours:
            add(hours[k], *agg)
        else:
            hours[k] = list(agg)
    return Batch(a.consumed + b.consumed, b.skip_line, counts, rows,
                 b.start_last if b.rows else a.start_last or b.start_last, hours, max(a.newest_us, b.newest_us))


# --- the worker process --------------------------------------------------------------

_compiled: dict = {}
_buf = bytearray()


def init(parent: int) -> None:
    """A catch-up worker dies with the daemon (``kill -9`` included), never lingers."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the worker still exits when its pipe to the daemon closes
        pass
    if os.getppid() != parent:
        os._exit(0)


def scan_chunk(path: str, offset: int, length: int, skip_line: bool, ignore: tuple, log: str,
               bench: Optional[dict] = None) -> Batch:
    """Scan ``length`` bytes of ``path`` from ``offset`` (which is a line start) of the log ``log``
    (``bench``: the benchmark's texts, as ``logformat.benchmark_texts`` gives them)."""
    global _buf
    pats = _compiled.get(ignore)
    if pats is None:
        pats = _compiled[ignore] = lf.compile_ignore(ignore)
    if len(_buf) < length + 1:
        _buf = bytearray(length + 1)    # one buffer per worker, reused: no fresh pages per batch
        _buf[0] = 0x0A                  # the scanner wants the byte before the data to be a newline
    with open(path, "rb") as f:
        f.seek(offset)
        n = f.readinto(memoryview(_buf)[1:1 + length]) or 0
    return pack(lf.scan_buffer(_buf, 1, 1 + n, final=False, skip_line=skip_line, ignore=pats, bench=bench), log)
