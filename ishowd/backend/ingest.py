"""Reading the backend logs exactly once, whatever happens to the files.

Each configured log has a position row per file it follows: the file now at
the path (``current``) and, after a rename rotation, the renamed file the
backend may still be writing (``retired``). A file is known by its device,
inode *and* a fingerprint of its first bytes (an inode number comes back
after a delete; a truncated file keeps its inode). The records a batch of
bytes produced, the counters it moved and the position after it are
committed in one transaction, so a ``kill -9`` anywhere leaves either the
batch or nothing.

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

import glob
import hashlib
import logging
import os
import stat
import time
from dataclasses import dataclass, fields
from operator import itemgetter
from typing import Optional

from ..metrics import Sample, labels_key, parse_labels_key
from ..store import sql
from ..specs.backend import HTTP_REQUESTS, LOG_ERRORS, LOG_LINES, STARTS, TTS_RTF
from . import logformat as lf, scanworker
from .scanworker import COLUMN

_SAMPLE_OF_ROW = itemgetter(*(COLUMN[c] for c in ("ts", "rtf", "engine", "voice", "source")))

log = logging.getLogger("ishowd.ingest")

FP_BYTES = 4096              # the fingerprint covers this many first bytes (fewer while the file is shorter)
EMIT_EVERY = 60.0            # counters are written as samples at least this often
MAX_CANDIDATES = 2000        # rotated-copy candidates looked at per search
WINDOW = 1 << 16             # where a parallel batch is cut: after the last newline in its last 64 KiB
JOIN_BYTES = 8 << 20         # scanned batches committed in one transaction, at most

@dataclass
class Position:
    log: str
    role: str
    path: str
    dev: int
    inode: int
    fingerprint: str
    fp_len: int
    offset: int = 0
    skip_line: int = 0
    first_pending: int = 0
    size: int = 0
    changed: float = 0.0

    def row(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def fingerprint(f, length: int = FP_BYTES) -> tuple[str, int]:
    f.seek(0)
    data = f.read(length)
    return hashlib.sha1(data).hexdigest(), len(data)


def _same_start(f, pos: Position) -> bool:
    return fingerprint(f, pos.fp_len) == (pos.fingerprint, pos.fp_len)


class Ingestor:
    def __init__(self, config, store):
        rtf = config.rtf
        self.logs = list(rtf.logs)
        self.batch = int(rtf.batch_bytes)
        self.ignore = lf.compile_ignore(rtf.ignore_errors)
        self.rotated = list(rtf.rotated)
        self.follow = float(rtf.follow_rotated)
        self.store = store
        self.buf = bytearray(self.batch + 1)
        self.buf[0] = 0x0A          # the scanner wants the byte before the data to be a newline
        self._emitted_at = 0.0
        self._moved = True
        self._warned: set = set()
        self._label_cache: dict = {}
        self.ignore_patterns = tuple(rtf.ignore_errors)
        self.workers = catchup_workers(rtf.catchup_workers)
        self.parallel_from = int(rtf.catchup_from)

    # --- the task ------------------------------------------------------------------

    def run(self, now: Optional[float] = None) -> None:
        for path in self.logs:
            try:
                self.ingest(path)
            except OSError as exc:
                self._warn(path, f"cannot read {path}: {exc.strerror or exc}")
        self.emit_counters(time.time() if now is None else now)

    def _warn(self, path: str, what: str) -> None:
        if (path, what) not in self._warned:
            self._warned.add((path, what))
            log.warning("%s", what)

    # --- positions -----------------------------------------------------------------

    def load(self, path: str) -> dict[str, Position]:
        with self.store.transaction() as conn:
            rows = conn.execute(sql.LOG_POSITIONS_OF, {"log": path}).fetchall()
        return {r[1]: Position(*r) for r in rows}

    def _fresh(self, path: str, f, st) -> Position:
        fp, n = fingerprint(f)
        return Position(path, "current", path, st.st_dev, st.st_ino, fp, n, size=st.st_size, changed=time.time())

    # --- one log ---------------------------------------------------------------------

    def ingest(self, path: str) -> None:
        pos = self.load(path)
        cur, ret = pos.get("current"), pos.get("retired")
        if ret is not None:
            self._follow_retired(ret)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            if cur is not None:
                found = self._locate(cur, exclude=path)
                if found is not None:      # renamed away and not (yet) re-created
                    self._retire(cur, found)
            else:
                self._warn(path, f"{path}: no such file (yet); it is read from its start once it appears")
            return
        with f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                self._warn(path, f"{path}: not a regular file, not read")
                return
            if cur is None:
                cur = self._fresh(path, f, st)
                cur.first_pending = 0
            elif (st.st_dev, st.st_ino) == (cur.dev, cur.inode):
                if st.st_size < cur.offset or not _same_start(f, cur):
                    self._count("ingest", "truncations")
                    self._read_copy(cur)
                    cur = self._fresh(path, f, st)
            else:
                found = self._locate(cur, exclude=path)
                if found is not None:
                    self._retire(cur, found)
                else:
                    self._count("ingest", "replaced")
                cur = self._fresh(path, f, st)
            self._read(f, cur, final=False)

    def _count(self, name: str, label: str, n: int = 1) -> None:
        with self.store.transaction() as conn:
            conn.execute(sql.LOG_COUNTER_ADD, {"name": name, "label": label, "value": n})
        self._moved = True

    # --- finding rotated files -----------------------------------------------------------

    def _candidates(self, log_path: str, exclude: str):
        base = os.path.dirname(os.path.abspath(log_path))
        seen, n = set(), 0
        for pattern in self.rotated:
            for p in glob.iglob(os.path.join(glob.escape(base), pattern)):
                if p in seen or os.path.abspath(p) == os.path.abspath(exclude):
                    continue
                seen.add(p)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                yield p, st
                n += 1
                if n >= MAX_CANDIDATES:
                    return

    def _locate(self, pos: Position, exclude: str) -> Optional[str]:
        """Where the file ``pos`` follows is now: same device and inode and first bytes, else a copy."""
        copies = []
        for p, st in self._candidates(pos.log, exclude):
            same_inode = (st.st_dev, st.st_ino) == (pos.dev, pos.inode)
            if not same_inode and st.st_size < pos.offset:
                continue
            try:
                with open(p, "rb") as f:
                    if not _same_start(f, pos):
                        continue
            except OSError:
                continue
            if same_inode:
                return p
            copies.append((st.st_mtime, p))
        return max(copies)[1] if copies else None

    def _read_copy(self, pos: Position) -> None:
        """The file was truncated: read what it held past our position from a rotated copy, if any."""
        best = None
        for p, st in self._candidates(pos.log, exclude=pos.path):
            if (st.st_dev, st.st_ino) == (pos.dev, pos.inode) or st.st_size < pos.offset:
                continue
            try:
                with open(p, "rb") as f:
                    if _same_start(f, pos) and (best is None or st.st_mtime > best[0]):
                        best = (st.st_mtime, p)
            except OSError:
                continue
        if best is None:
            return
        with open(best[1], "rb") as f:
            log.info("%s was truncated; reading its last lines from the copy %s", pos.log, best[1])
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
        path = None
        try:
            st = os.stat(ret.path)
            if (st.st_dev, st.st_ino) == (ret.dev, ret.inode):
                path = ret.path
        except OSError:
            pass
        if path is None:
            path = self._locate(ret, exclude=ret.log)
        done = True
        if path is not None:
            ret.path = path
            with open(path, "rb") as f:
                if _same_start(f, ret):
                    size = os.fstat(f.fileno()).st_size
                    idle = size == ret.size and time.time() - ret.changed >= self.follow
                    final = finish or idle
                    self._read(f, ret, final=final)
                    done = final
        if done:
            with self.store.transaction() as conn:
                conn.execute(sql.LOG_POSITION_DELETE, {"log": ret.log, "role": "retired"})

    # --- reading -------------------------------------------------------------------------

    def _read(self, f, pos: Position, *, final: bool) -> None:
        """Read ``f`` from ``pos.offset`` in batches, committing each with the position after it."""
        buf, view = self.buf, memoryview(self.buf)
        identity = (pos.role, pos.path, pos.dev, pos.inode)
        stored = self._stored(pos)
        try:
            while True:
                size = os.fstat(f.fileno()).st_size
                # still the file we follow? (a truncation between two batches stops us; the next run sees it)
                head = _prefix(f, max(pos.fp_len, min(FP_BYTES, size)))
                if hashlib.sha1(head[:pos.fp_len]).hexdigest() != pos.fingerprint:
                    return
                if not final and self.workers and size - pos.offset >= self.parallel_from \
                        and stored == identity and (hashlib.sha1(head).hexdigest(), len(head)) == \
                        (pos.fingerprint, pos.fp_len):
                    self._read_parallel(f, pos, size)   # then a serial batch: it may cross a cut
                f.seek(pos.offset)
                n = f.readinto(view[1:1 + self.batch]) or 0
                last = n < self.batch
                res = lf.scan_buffer(buf, 1, 1 + n, final=final and last, skip_line=bool(pos.skip_line),
                                     ignore=self.ignore)
                moved = res.consumed > 0
                new_fp = (hashlib.sha1(head).hexdigest(), len(head))
                if moved or new_fp != (pos.fingerprint, pos.fp_len) or stored != identity:
                    pos.fingerprint, pos.fp_len = new_fp
                    pos.size = size
                    if moved:
                        pos.changed = time.time()
                    self._commit(pos, scanworker.pack(res, pos.log))
                    stored = identity
                if last or not moved:
                    return
        finally:
            view.release()

    def _read_parallel(self, f, pos: Position, limit: int) -> bool:
        """A long backlog: worker processes scan batches, this process commits them in order.

        The committing is exactly the serial reader's: one transaction per batch,
        in file order, the position with the records. A batch whose last event
        needs bytes of the next one (a preview's newline across the cut) ends the
        parallel run; the serial reader takes over from there. Returns whether
        anything was committed.
        """
        import multiprocessing
        from collections import deque
        from concurrent.futures import ProcessPoolExecutor

        started_at = pos.offset
        ex = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=scanworker.init, initargs=(os.getpid(),))
        try:
            queue: deque = deque()
            off, skip = pos.offset, bool(pos.skip_line)
            # The workers open the very file this process has open (even if renamed meanwhile).
            source = f"/proc/{os.getpid()}/fd/{f.fileno()}"
            if not os.path.exists(source):
                source = pos.path
            while True:
                while len(queue) < 2 * self.workers and off < limit:
                    n = min(self.batch, limit - off)
                    if n == self.batch:            # cut after the last newline of the batch
                        f.seek(off + n - WINDOW)
                        nl = f.read(WINDOW).rfind(b"\n")
                        if nl < 0:
                            break                  # an overlong line: the serial reader's business
                        n = n - WINDOW + nl + 1
                    fut = ex.submit(scanworker.scan_chunk, source, off, n, skip, self.ignore_patterns, pos.log)
                    queue.append((off, n, fut))
                    off, skip = off + n, False
                if not queue:
                    break
                at, n, fut = queue.popleft()
                batch = fut.result()
                if at != pos.offset or hashlib.sha1(_prefix(f, pos.fp_len)).hexdigest() != pos.fingerprint:
                    break
                # A batch already scanned behind it joins the same transaction: fewer commits and merges
                # of rollup chunks, which is what this process spends its time on.
                while batch.consumed == n and queue and queue[0][2].done() and n + queue[0][1] <= JOIN_BYTES:
                    _at, more, fut = queue.popleft()
                    batch = scanworker.join(batch, fut.result())
                    n += more
                pos.size = limit
                pos.changed = time.time()
                self._commit(pos, batch)
                if batch.consumed != n:
                    break
        except Exception as exc:  # a worker that died: the serial reader goes on
            log.warning("parallel catch-up stopped (%s); reading on serially", exc)
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
        return pos.offset > started_at

    def _stored(self, pos: Position):
        with self.store.transaction() as conn:
            row = conn.execute(sql.LOG_POSITION_STORED, {"log": pos.log, "role": pos.role}).fetchone()
        return None if row is None or row[4] != pos.offset else tuple(row[:4])

    def _commit(self, pos: Position, batch: scanworker.Batch) -> None:
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
                cur = conn.executemany(sql.RTF_INSERT, rows)
                dup = len(rows) - cur.rowcount
                if dup:
                    counters.append({"name": "ingest", "label": "duplicates", "value": dup})
                self._write_samples(conn, batch)
            if counters:
                conn.executemany(sql.LOG_COUNTER_ADD, counters)
            conn.execute(sql.LOG_POSITION_SAVE, pos.row())
        if counters:
            self._moved = True

    def _labels(self, engine: str, voice: str, source: str) -> tuple[str, dict]:
        key = (engine, voice, source)
        got = self._label_cache.get(key)
        if got is None:
            labels = {"engine": engine, "voice": voice, "source": source}
            got = self._label_cache[key] = (labels_key(labels), labels)
        return got

    def _write_samples(self, conn, batch: scanworker.Batch) -> None:
        """The ``tts_rtf`` sample of each synthesis in the batch, by age.

        Live ones (this hour and the last) go to the store's head like any tick's.
        A backlog is folded in directly, so no later tick has hours of it to seal:
        within the minute rollups' retention as sealed chunks and rollups, older
        than that into the hourly rollups only (its raw and per-minute data would
        be pruned at once; the per-request values stay in ``rtf_records``).
        """
        now = time.time()
        cutoff_us = (int(now) // 3600 - 1) * 3600 * 1_000_000
        sealed_from_us = (now - self.store.minute_retention) * 1e6
        recent = []
        sealed: dict[str, dict[int, float]] = {}
        hours: dict[tuple[str, int], list] = {}
        rows = batch.rows
        if batch.newest_us < sealed_from_us:      # all of it old: the batch's own hourly aggregates
            for (engine, voice, source, hour), agg in batch.hours.items():
                hours[self._labels(engine, voice, source)[0], hour] = agg
            rows = ()
        keys = {}
        for ts_us, v, engine, voice, source in map(_SAMPLE_OF_ROW, rows):
            if v is None:
                continue
            if ts_us >= cutoff_us:
                # a line stamped in the future (a clock set wrong) is sampled now: the store's head
                # must not run ahead of the ticks; the record keeps the line's own time
                recent.append(Sample(TTS_RTF, v, self._labels(engine, voice, source)[1], ts=min(ts_us / 1e6, now)))
                continue
            key = keys.get((engine, voice, source))
            if key is None:
                key = keys[engine, voice, source] = self._labels(engine, voice, source)[0]
            if ts_us >= sealed_from_us:
                sealed.setdefault(key, {}).setdefault(ts_us // 1_000_000, v)
                continue
            hk = (key, ts_us // 3_600_000_000 * 3600)
            agg = hours.get(hk)
            if agg is None:
                hours[hk] = [1, v, v, v]
            else:
                scanworker.add(agg, 1, v, v, v)
        if recent:
            self.store.write_in(conn, now, recent)
        for key, by_ts in sealed.items():
            ts_list = sorted(by_ts)
            self.store.seal_in(conn, TTS_RTF.name, parse_labels_key(key), ts_list, [by_ts[t] for t in ts_list])
        by_series: dict[str, dict[int, list]] = {}
        for (key, hour), agg in hours.items():
            by_series.setdefault(key, {})[hour] = agg
        for key, aggs in by_series.items():
            self.store.fold_hours(conn, TTS_RTF.name, parse_labels_key(key), aggs)

    # --- counters as metrics -------------------------------------------------------------------

    def counters(self) -> dict[tuple[str, str], int]:
        with self.store.transaction() as conn:
            return {(n, l): v for n, l, v in conn.execute(sql.LOG_COUNTERS_ALL)}

    def emit_counters(self, now: float) -> None:
        if not self._moved and now - self._emitted_at < EMIT_EVERY:
            return
        c = self.counters()
        if not c:
            return          # no log read yet (none on this host?): the counters are absent, not zero
        samples = [Sample(LOG_ERRORS, c.get(("errors", lv), 0), {"level": lv}) for lv in ("warn", "error", "other")]
        samples += [Sample(LOG_LINES, c.get(("lines", k), 0), {"kind": k}) for k in ("synthesis", "noise", "malformed")]
        samples += [Sample(HTTP_REQUESTS, v, {"status": label}) for (n, label), v in sorted(c.items()) if n == "http"]
        samples.append(Sample(STARTS, c.get(("starts", ""), 0)))
        self.store.write(now, samples)
        self._emitted_at, self._moved = now, False


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


def _prefix(f, n: int) -> bytes:
    f.seek(0)
    return f.read(n)
