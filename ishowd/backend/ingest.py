"""Reading the backend logs exactly once, whatever happens to the files.

Each configured log has a position row per file it follows: the file now at
the path (``current``) and, after a rename rotation, the renamed file the
backend may still be writing (``retired``). A file is known by its device,
inode *and* a fingerprint of its first bytes; ``follow.py`` holds that
identity and the search for rotated copies, ``catchup.py`` the worker
processes that scan a long backlog. The records a batch of bytes produced,
the counters it moved and the position after it are committed here, in one
transaction, so a ``kill -9`` anywhere leaves either the batch or nothing;
the records' ``tts_rtf`` samples go with them (``Store.write_past`` picks
each one's storage tier by its age).

Events and what is done:

* append: read from the position.
* a last line with no newline yet: not consumed until it ends.
* truncation (``: >`` at every backend start, or copy-then-truncate):
  the file is shorter than the position, or its first bytes changed (it
  was truncated and grew past the old position while nobody looked).
  Before starting over at 0, the lines written after the position and
  before the truncation are looked for in a rotated copy (``[rtf]
  rotated`` globs): a file that starts with the same fingerprint and is at
  least as long as the position; its rest is read.
* rename rotation: another file is at the path; the old one is looked for
  by device and inode (and fingerprint) next to it and followed as
  ``retired`` until it has not grown for ``[rtf] follow_rotated``; the new
  file is read from 0.
* deleted and re-created: another inode (or the same inode with other first
  bytes): the new file is read from 0; what the deleted file held and was
  not read is gone.

Catching up on a long backlog reads ``[rtf] batch_bytes`` per transaction
and takes the writer lock only to commit, so sampling ticks go on.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import stat
import threading
import time
from bisect import bisect_left
from operator import itemgetter
from typing import Optional

from ..metrics import Sample
from ..store import sql
from ..specs.backend import COMPILE_FALLBACKS, HTTP_REQUESTS, LOG_ERRORS, LOG_LINES, STARTS, TTS_RTF
from . import catchup, follow, logformat as lf, scanworker
from .catchup import catchup_workers  # noqa: F401  (``from ishowd.backend.ingest import catchup_workers``)
from .follow import FP_BYTES, Position
from .scanworker import COLUMN

# A record's tts_rtf sample as Store.write_past takes it: (ts_us, value, *label values). A batch's
# hourly aggregates are keyed (engine, voice, source, hour): the metric's labels must be in that order.
assert TTS_RTF.labels == ("engine", "voice", "source")
_SAMPLE_OF_ROW = itemgetter(*(COLUMN[c] for c in ("ts", "rtf") + TTS_RTF.labels))

_BOUNDS = TTS_RTF.buckets + (math.inf,)
_SERIES_OF_ROW = itemgetter(*(COLUMN[c] for c in TTS_RTF.labels))
_RTF = COLUMN["rtf"]


def _histogram_rows(rows) -> list[tuple]:
    """The observations of ``rows`` per series and bucket, as ``sql.RTF_HISTOGRAM_ADD`` rows."""
    found: dict = {}
    for row in rows:
        v = row[_RTF]
        if v is None:           # empty audio: no RTF to observe
            continue
        key = _SERIES_OF_ROW(row) + (_BOUNDS[bisect_left(_BOUNDS, v)],)
        agg = found.get(key)
        if agg is None:
            found[key] = [1, v]
        else:
            agg[0] += 1
            agg[1] += v
    return [key + (n, total) for key, (n, total) in found.items()]


log = logging.getLogger("ishowd.ingest")

EMIT_EVERY = 60.0            # counters are written as samples at least this often

# Held while a log is read and while the rotation job cuts one (jobs/rotate_logs.py): a read
# that began before a cut must not commit a position that counts the bytes cut.
LOG_LOCK = threading.RLock()


def benchmark_texts(config) -> list[str]:
    """The texts the benchmark job sends: its records are ``source=benchmark``, kept out of production."""
    section = config.sections.get("jobs.benchmark")
    return [section["text"]] if section is not None and section.get("text") else []


def _stat_signature(path: str):
    """What a read of ``path`` depends on that the file system says: None for no file. A rewrite to
    the same size within the clock's granularity goes unseen until the file next grows, and is then
    read as the truncation it was."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return object()     # equal to nothing: read (and fail, saying why) each time
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


# A log grown by at most this much since its last read is read in the main loop's thread (a few lines
# of a live stream: a millisecond or two); more, or anything but growth, goes to the task pool.
QUICK_BYTES = 64 << 10


def _line_buffer(size: int) -> bytearray:
    """Room for ``size`` bytes after a newline: the scanner wants the byte before the data to be one."""
    buf = bytearray(size + 1)
    buf[0] = 0x0A
    return buf


class Ingestor:
    def __init__(self, config, store):
        rtf = config.rtf
        self.logs = list(rtf.logs)
        self.deployment_root = config.deployment.root
        self.batch = int(rtf.batch_bytes)
        self.ignore = lf.compile_ignore(rtf.ignore_errors)
        self.rotated = list(rtf.rotated)
        self.follow_rotated = float(rtf.follow_rotated)
        self.store = store
        # A live log grows by a few KiB between reads: this buffer serves those (a quick run's
        # growth and the room kept for more). A backlog gets one of up to batch_bytes (4 MiB by
        # default) for that read only: held for good, it was the largest part of the daemon's memory.
        self.buf = _line_buffer(2 * QUICK_BYTES)
        self._emitted_at = 0.0
        self._moved = True
        self._warned: set = set()
        # path -> its stat before the last read that left nothing to do: while it stays so, the
        # log is not looked at again (no transaction every few seconds for a log nobody writes)
        self._settled: dict[str, Optional[tuple]] = {}
        self.ignore_patterns = tuple(rtf.ignore_errors)
        self.workers = catchup_workers(rtf.catchup_workers)
        self.parallel_from = int(rtf.catchup_from)
        self.bench = lf.benchmark_texts(benchmark_texts(config))

    # --- the task ------------------------------------------------------------------

    def quick(self) -> bool:
        """Whether ``run`` would be short: every log unchanged since a read that left nothing to do,
        or only grown, by at most ``QUICK_BYTES``, in the same file."""
        if not LOG_LOCK.acquire(blocking=False):
            return False            # a rotation is under way: the run waits for it in the pool, not the tick
        LOG_LOCK.release()
        for path in self.logs:
            before = self._settled.get(path, False)
            if before is False:
                return False        # not read yet, or its last read left something (a renamed file)
            seen = _stat_signature(path)
            if seen == before:
                continue
            if not (isinstance(before, tuple) and isinstance(seen, tuple) and before[:2] == seen[:2]
                    and 0 <= seen[2] - before[2] <= QUICK_BYTES):
                return False
        return True

    def run(self, now: Optional[float] = None) -> None:
        for path in self.logs:
            # taken before the read: bytes appended while it reads change it, so they are not skipped
            seen = _stat_signature(path)
            if path in self._settled and self._settled[path] == seen:
                continue
            self._settled.pop(path, None)
            try:
                with LOG_LOCK:
                    settled = self.ingest(path)
            except OSError as exc:
                self._warn(path, f"cannot read {path}: {exc.strerror or exc}")
            else:
                if settled:
                    self._settled[path] = seen
        self.emit_counters(time.time() if now is None else now)

    def _warn(self, path: str, what: str, level: int = logging.WARNING) -> None:
        if (path, what) not in self._warned:
            self._warned.add((path, what))
            log.log(level, "%s", what)

    def _tell(self, path: str, what: str) -> None:
        self._warn(path, what, logging.INFO)

    # --- positions -----------------------------------------------------------------

    def load(self, path: str) -> dict[str, Position]:
        with self.store.transaction() as conn:
            rows = conn.execute(sql.LOG_POSITIONS_OF, {"log": path}).fetchall()
        return {r[1]: Position(*r) for r in rows}

    # --- one log: the events -----------------------------------------------------------

    def ingest(self, path: str) -> bool:
        """Read what is new in ``path``. True when a second read would find nothing to do until the
        file itself changes: no renamed file is followed, and none is being looked for."""
        pos = self.load(path)
        cur, ret = pos.get("current"), pos.get("retired")
        if ret is not None:
            self._follow_retired(ret)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            if cur is not None:
                found = follow.locate(cur, self.rotated, exclude=path)
                if found is not None:      # renamed away and not (yet) re-created
                    self._retire(cur, found)
                return False
            if os.path.isdir(self.deployment_root):
                self._warn(path, f"{path}: no such file (yet); it is read from its start once it appears")
            else:   # a plain machine: no deployment here, nothing is missing
                self._tell(path, f"{path}: no such file and no deployment at [deployment] root "
                           f"({self.deployment_root}): nothing to read until one appears")
            return ret is None
        retiring = False
        with f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                self._warn(path, f"{path}: not a regular file, not read")
                return ret is None
            if cur is None:
                cur = follow.fresh(path, f, st)
                cur.first_pending = 0
            elif follow.same_inode(st, cur):
                if follow.truncated(f, st, cur):
                    self._count("ingest", "truncations")
                    self._read_copy(cur)
                    cur = follow.fresh(path, f, st)
            else:
                found = follow.locate(cur, self.rotated, exclude=path)
                if found is not None:
                    self._retire(cur, found)
                    retiring = True
                else:
                    self._count("ingest", "replaced")
                cur = follow.fresh(path, f, st)
            self._read(f, cur, final=False)
        return ret is None and not retiring

    def _count(self, name: str, label: str, n: int = 1) -> None:
        with self.store.transaction() as conn:
            conn.execute(sql.LOG_COUNTER_ADD, {"name": name, "label": label, "value": n})
        self._moved = True

    def _read_copy(self, pos: Position) -> None:
        """The file was truncated: read what it held past our position from a rotated copy, if any."""
        copy = follow.find_copy(pos, self.rotated)
        if copy is None:
            return
        with open(copy, "rb") as f:
            log.info("%s was truncated; reading its last lines from the copy %s", pos.log, copy)
            self._count("ingest", "copies")
            self._read(f, pos, final=True)

    def _retire(self, cur: Position, found: str) -> None:
        """``cur`` was renamed to ``found``: follow it as the retired file (finishing any earlier one)."""
        old = self.load(cur.log).get("retired")
        if old is not None:
            self._follow_retired(old, finish=True)
        cur.role, cur.path = "retired", found
        with self.store.transaction() as conn:
            conn.execute(sql.LOG_POSITIONS_DELETE, {"log": cur.log})
            conn.execute(sql.LOG_POSITION_SAVE, cur.row())
            conn.execute(sql.LOG_COUNTER_ADD, {"name": "ingest", "label": "renames", "value": 1})
        self._moved = True
        log.info("%s was renamed to %s; following both", cur.log, found)
        self._follow_retired(cur)

    def _follow_retired(self, ret: Position, finish: bool = False) -> None:
        """Read on in the renamed file ``ret``. It is followed no more once it is gone or starts
        otherwise, or once it has been idle for ``[rtf] follow_rotated`` (or ``finish``: a newer
        rename replaces it), its last line read then, newline or not."""
        path = follow.find_retired(ret, self.rotated)
        done = True
        if path is not None:
            ret.path = path
            with open(path, "rb") as f:
                if follow.same_start(f, ret):
                    size = os.fstat(f.fileno()).st_size
                    idle = size == ret.size and time.time() - ret.changed >= self.follow_rotated
                    final = finish or idle
                    self._read(f, ret, final=final)
                    done = final
        if done:
            with self.store.transaction() as conn:
                conn.execute(sql.LOG_POSITION_DELETE, {"log": ret.log, "role": "retired"})

    # --- reading and committing ------------------------------------------------------------

    def _read(self, f, pos: Position, *, final: bool) -> None:
        """Read ``f`` from ``pos.offset`` in batches, committing each with the position after it."""
        buf = self.buf
        identity = (pos.role, pos.path, pos.dev, pos.inode)
        stored = self._stored(pos)
        while True:
            size = os.fstat(f.fileno()).st_size
            # still the file we follow? (a truncation between two batches stops us; the next run sees it)
            head = follow.prefix(f, max(pos.fp_len, min(FP_BYTES, size)))
            if hashlib.sha1(head[:pos.fp_len]).hexdigest() != pos.fingerprint:
                return
            new_fp = (hashlib.sha1(head).hexdigest(), len(head))   # the fingerprint as the file now is
            if not final and self.workers and size - pos.offset >= self.parallel_from \
                    and stored == identity and new_fp == (pos.fingerprint, pos.fp_len):
                # then a serial batch: it may cross a cut
                catchup.read_parallel(f, pos, size, workers=self.workers, batch_bytes=self.batch,
                                      ignore=self.ignore_patterns, commit=self._commit, bench=self.bench)
            # what is there now, and room for a live log's growth since the fstat; at most a batch
            cap = min(self.batch, max(0, size - pos.offset) + QUICK_BYTES)
            if len(buf) <= cap:
                buf = _line_buffer(cap)
            f.seek(pos.offset)
            with memoryview(buf) as view:
                n = f.readinto(view[1:1 + cap]) or 0
            last = n < cap
            res = lf.scan_buffer(buf, 1, 1 + n, final=final and last, skip_line=bool(pos.skip_line),
                                 ignore=self.ignore, bench=self.bench)
            moved = res.consumed > 0
            if moved or new_fp != (pos.fingerprint, pos.fp_len) or stored != identity:
                pos.fingerprint, pos.fp_len = new_fp
                pos.size = size
                if moved:
                    pos.changed = time.time()
                self._commit(pos, scanworker.pack(res, pos.log))
                stored = identity
            if last or not moved:
                return

    def _stored(self, pos: Position):
        with self.store.transaction() as conn:
            row = conn.execute(sql.LOG_POSITION_STORED, {"log": pos.log, "role": pos.role}).fetchone()
        return None if row is None or row[4] != pos.offset else tuple(row[:4])

    def _commit(self, pos: Position, batch: scanworker.Batch) -> None:
        """One transaction: the batch's records, their ``tts_rtf`` samples, its counters and the
        position after it."""
        rows = batch.rows
        if rows:
            if pos.first_pending:       # the start came at the end of the last batch
                rows[0] = scanworker.after_start(rows[0])
            pos.first_pending = int(batch.start_last)
        else:
            pos.first_pending = int(pos.first_pending or batch.start_last)
        counters = [{"name": k, "label": label, "value": n} for (k, label), n in batch.counts.items()]
        pos.offset += batch.consumed
        pos.skip_line = int(batch.skip_line)
        with self.store.transaction() as conn:
            if rows:
                # the histogram counts only the rows inserted: with a duplicate among them, the
                # batch is inserted again row by row to learn which
                conn.execute("SAVEPOINT records")
                inserted = rows
                if conn.executemany(sql.RTF_INSERT, rows).rowcount != len(rows):
                    conn.execute("ROLLBACK TO records")
                    inserted = [row for row in rows if conn.execute(sql.RTF_INSERT, row).rowcount]
                conn.execute("RELEASE records")
                conn.executemany(sql.RTF_HISTOGRAM_ADD, _histogram_rows(inserted))
                dup = len(rows) - len(inserted)
                if dup:
                    counters.append({"name": "ingest", "label": "duplicates", "value": dup})
                # the store puts each sample in the tier its age belongs to (a backlog's old ones
                # only in the hourly rollups); the per-request values stay in rtf_records
                self.store.write_past(conn, TTS_RTF, map(_SAMPLE_OF_ROW, rows), hours=batch.hours,
                                      newest_us=batch.newest_us)
            if counters:
                conn.executemany(sql.LOG_COUNTER_ADD, counters)
            conn.execute(sql.LOG_POSITION_SAVE, pos.row())
        if counters:
            self._moved = True

    # --- counters as metrics -------------------------------------------------------------------

    def counters(self) -> dict[tuple[str, str], int]:
        with self.store.transaction() as conn:
            return {(n, l): v for n, l, v in conn.execute(sql.LOG_COUNTERS_ALL)}

    def emit_counters(self, now: float) -> None:
        if not self._moved and now - self._emitted_at < EMIT_EVERY:
            return
        c = self.counters()
        if not c:           # no log read yet (none on this host?): the counters are absent, not zero
            self._emitted_at, self._moved = now, False    # asked again when one moves, or in a minute
            return
        samples = [Sample(LOG_ERRORS, c.get(("errors", lv), 0), {"level": lv}) for lv in ("warn", "error", "other")]
        samples += [Sample(LOG_LINES, c.get(("lines", k), 0), {"kind": k}) for k in ("synthesis", "noise", "malformed")]
        samples += [Sample(HTTP_REQUESTS, v, {"status": label}) for (n, label), v in sorted(c.items()) if n == "http"]
        samples.append(Sample(STARTS, c.get(("starts", ""), 0)))
        samples.append(Sample(COMPILE_FALLBACKS, c.get(("compile", "fallback"), 0)))
        self.store.write(now, samples)
        self._emitted_at, self._moved = now, False
