"""rotate-logs (weekly): the backend's and frontend's logs into dated archives, losing and doubling no line.

The backend keeps ``logs/backend.log`` open with O_APPEND and writes while this
runs, so the file cannot be renamed (it would go on writing into the archive),
and logrotate's copytruncate loses what is written between its copy and its
truncate. Instead, on ext4 and XFS:

1. the tailer catches up (under the log lock, so it does not read meanwhile):
   every complete line up to ``end`` is ingested;
2. the intent is recorded in the store (``store_meta`` "rotation"), then the
   bytes ``[0, end)`` are appended to the archive and synced, and the intent
   marked "archived";
3. ``fallocate(FALLOC_FL_COLLAPSE_RANGE)`` cuts the block-aligned ``[0, cut)``
   off the front of the live file, atomically with respect to the backend's
   appends (``cut`` is ``end`` rounded down to the file system's block);
4. what is left of the archived lines at the front (less than a block, the
   line that straddled the cut included) is overwritten with spaces and one
   newline: a write at the start never races an append at the end, and the
   parser reads a blank line as noise;
5. the tailer's position moves back by ``cut`` and takes the file's new
   fingerprint, in the same transaction that drops the intent and records
   the cut in the run's result.

A ``kill -9`` between any two steps is repaired by ``recover`` (run by this
job and by the log task at start) from the intent and what the file's first
bytes show: before the cut the partial archive is trimmed back; after it the
remaining steps are finished. Where the file system cannot collapse (tmpfs,
overlayfs, NFS) the file is copied until it stops growing, then truncated:
a line written in that instant is lost, and the run's detail says the
window existed.
"""
from __future__ import annotations

import errno
import os
import time
from typing import Optional

from ..config import Key
from . import DAY, WEEK, Job, JobContext, Outcome, job_keys, register

KEYS = job_keys("rotate-logs", "0 4 * * 1", "30m", {
    "files": Key("strlist", ["logs/backend.log", "logs/frontend.log"],
                 "the logs rotated, relative to [deployment] root"),
    "archive": Key("str", "logs/archive", "where archives go, relative to [deployment] root: "
                   "<archive>/YYYYMM/<name>_YYYYMMDD.log"),
    "keep": Key("duration", "90d", "archives older than this are deleted", min=DAY, max=3650 * DAY),
    "compress_after": Key("duration", "7d", "archives older than this are gzipped (0s: never)",
                          min=0, max=3650 * DAY),
})

FALLOC_FL_COLLAPSE_RANGE = 0x08
HEAD = 64                 # bytes of the file kept in the intent to tell, after a crash, how far it got
COPY_CHUNK = 8 << 20
INTENT = "rotation"


def _fallocate_collapse(fd: int, length: int) -> None:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong)
    if libc.fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _blank(n: int) -> bytes:
    return b"" if n <= 0 else b" " * (n - 1) + b"\n"


def _pread(fd: int, n: int, at: int) -> bytes:
    return os.pread(fd, n, at) if n > 0 else b""


def _copy(src: int, out: int, start: int, end: int) -> None:
    """Append ``src``'s bytes [start, end) to the end of ``out`` and sync it: the archive must be on
    disk before the cut (streamed, in the kernel where it can; copy_file_range refuses an O_APPEND
    target, so ``out`` is written at its size). A thread syncing while the copy went on, to overlap
    the two, made it three times slower: the copy and the writeback took turns on the file."""
    _copy_range(src, out, start, end)
    os.fsync(out)


def _copy_range(src: int, out: int, start: int, end: int) -> None:
    pos, at = start, os.fstat(out).st_size
    while pos < end:
        size = min(COPY_CHUNK, end - pos)
        try:
            n = os.copy_file_range(src, out, size, pos, at)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            n = os.pwrite(out, os.pread(src, size, pos), at)
        if n == 0:
            raise OSError(errno.EIO, f"the log ended at {pos} while copying up to {end}")
        pos, at = pos + n, at + n


def _open_archive(path: str) -> int:
    new = not os.path.exists(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o640)
    if new:  # the new name must survive a crash as well as the bytes
        dfd = os.open(os.path.dirname(path), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return fd


def _last_line_end(fd: int, size: int) -> int:
    """Just after the last newline in the first ``size`` bytes (0 if none)."""
    pos = size
    while pos > 0:
        start = max(0, pos - 65536)
        chunk = os.pread(fd, pos - start, start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


def _leading_blank(fd: int) -> int:
    """The length of a blank line a previous rotation left at the file's start (0: none)."""
    head = os.pread(fd, 65536, 0)
    nl = head.find(b"\n")
    return nl + 1 if nl > 0 and head[:nl].strip(b" ") == b"" else 0


def archive_name(archive_dir: str, live: str, when: float) -> str:
    t = time.localtime(when)
    name = os.path.splitext(os.path.basename(live))[0]
    return os.path.join(archive_dir, time.strftime("%Y%m", t), f"{name}_{time.strftime('%Y%m%d', t)}.log")


# --- the tailer's side ------------------------------------------------------------------------


def _ingested_log(config, live: str) -> Optional[str]:
    """The ``[rtf] logs`` entry that is this file, if the tailer reads it."""
    real = os.path.realpath(live)
    for path in config.rtf.logs:
        if os.path.realpath(path) == real:
            return path
    return None


def _position(conn, log_path: str, st: os.stat_result):
    from ..store import sql
    for row in conn.execute(sql.LOG_POSITIONS_OF, {"log": log_path}).fetchall():
        if row[1] == "current" and row[3] == st.st_dev and row[4] == st.st_ino:
            return row
    return None


def _shift_position(conn, intent: dict, fd: int) -> None:
    """The tailer's position, as it was when the intent was written, moved back by the cut."""
    import hashlib
    if not intent.get("log"):
        return
    from ..backend.follow import FP_BYTES
    from ..store import sql
    st = os.fstat(fd)
    row = _position(conn, intent["log"], st)
    if row is None or row[5] != intent["fingerprint"]:
        return  # it moved on already (this very transaction ran before a crash), or another file is followed
    head = os.pread(fd, FP_BYTES, 0)
    conn.execute(sql.LOG_POSITION_SHIFT, {
        "log": intent["log"], "role": "current", "offset": max(0, row[7] - intent["cut"]),
        "fingerprint": hashlib.sha1(head).hexdigest(), "fp_len": len(head), "size": st.st_size})


# --- one rotation, step by step (``recover`` resumes it from any step) ----------------------


class Rotation:
    """One live file into its archive. Each method is one step; the intent in the store says
    which have been done."""

    def __init__(self, store, config, live: str, archive: str):
        self.store, self.config, self.live, self.archive = store, config, live, archive
        self.intent: dict = {}

    def _save_intent(self, conn) -> None:
        import json
        from ..store import sql
        conn.execute(sql.META_PUT, {"key": INTENT, "value": json.dumps(self.intent)})

    def prepare(self, fd: int, end: int, position_fp: Optional[str], log_path: Optional[str],
                collapse: bool) -> None:
        """Step 1: record what is about to be done."""
        import hashlib
        st = os.fstat(fd)
        blank = _leading_blank(fd)
        bs = os.fstatvfs(fd).f_bsize
        cut = (end // bs) * bs if collapse else 0
        if cut >= st.st_size:      # a collapse may not reach the end of the file
            cut -= bs
        os.makedirs(os.path.dirname(self.archive), exist_ok=True)
        archived = os.path.getsize(self.archive) if os.path.exists(self.archive) else 0
        self.intent = {"state": "copying", "live": self.live, "archive": self.archive, "archive_size": archived,
                       "start": blank, "end": end, "cut": max(cut, 0), "dev": st.st_dev, "ino": st.st_ino,
                       "head": os.pread(fd, HEAD, 0).hex(),
                       "rest": hashlib.sha1(_pread(fd, end - max(cut, 0), max(cut, 0))).hexdigest(),
                       "log": log_path, "fingerprint": position_fp}
        with self.store.transaction() as conn:
            self._save_intent(conn)

    def copy(self, fd: int) -> None:
        """Step 2: the archived lines into the archive, synced."""
        out = _open_archive(self.archive)
        try:
            _copy(fd, out, self.intent["start"], self.intent["end"])
        finally:
            os.close(out)
        self.intent["state"] = "archived"
        with self.store.transaction() as conn:
            self._save_intent(conn)

    def collapse(self, fd: int) -> None:
        """Step 3: the block-aligned front off the live file."""
        if self.intent["cut"] > 0:
            _fallocate_collapse(fd, self.intent["cut"])

    def blank(self, fd: int) -> None:
        """Step 4: what is left of the archived lines at the front, blanked."""
        n = self.intent["end"] - self.intent["cut"]
        if n > 0:
            os.pwrite(fd, _blank(n), 0)
        os.fdatasync(fd)

    def commit(self, fd: int, run_id: Optional[int] = None, progress: Optional[dict] = None) -> None:
        """Step 5: the tailer's position moves with the cut, the intent goes, the run notes the cut."""
        import json
        from ..store import sql
        with self.store.transaction() as conn:
            _shift_position(conn, self.intent, fd)
            conn.execute(sql.META_DELETE, {"key": INTENT})
            if run_id and progress is not None:
                conn.execute(sql.JOB_RUN_PROGRESS, {"id": run_id, "result": json.dumps(progress)})


def recover(store, config) -> Optional[str]:
    """Finish or undo a rotation a crash interrupted; returns what was done (None: nothing to do)."""
    import hashlib
    import json
    from ..store import sql
    with store.transaction() as conn:
        row = conn.execute(sql.META_GET, {"key": INTENT}).fetchone()
    if row is None:
        return None
    intent = json.loads(row[0])
    rot = Rotation(store, config, intent["live"], intent["archive"])
    rot.intent = intent
    try:
        fd = os.open(intent["live"], os.O_RDWR)
    except OSError:
        fd = None
    try:
        if intent["state"] == "copying" or fd is None or \
                (os.fstat(fd).st_dev, os.fstat(fd).st_ino) != (intent["dev"], intent["ino"]):
            return _undo(store, intent, "the archive was not complete" if intent["state"] == "copying"
                         else "the log was replaced meanwhile")
        cut, n = intent["cut"], intent["end"] - intent["cut"]
        head = _pread(fd, len(bytes.fromhex(intent["head"])), 0)
        if cut > 0 and head == bytes.fromhex(intent["head"]):
            return _undo(store, intent, "the cut had not been made")  # the live file still holds it all
        rest = _pread(fd, n, 0)
        if rest == _blank(n):
            done = "finished its last step"
        elif hashlib.sha1(rest).hexdigest() == intent["rest"]:
            rot.blank(fd)
            done = "blanked the archived lines and finished"
        else:  # neither: the file was truncated or rewritten since; the archive holds the lines
            with store.transaction() as conn:
                conn.execute(sql.META_DELETE, {"key": INTENT})
            return f"{intent['live']}: changed since an interrupted rotation; its archive is kept as it is"
        rot.commit(fd)
        return f"{intent['live']}: an interrupted rotation {done}"
    finally:
        if fd is not None:
            os.close(fd)


def _undo(store, intent: dict, why: str) -> str:
    from ..store import sql
    if os.path.exists(intent["archive"]) and os.path.getsize(intent["archive"]) > intent["archive_size"]:
        with open(intent["archive"], "r+b") as f:
            f.truncate(intent["archive_size"])
            os.fsync(f.fileno())
    with store.transaction() as conn:
        conn.execute(sql.META_DELETE, {"key": INTENT})
    return f"{intent['live']}: an interrupted rotation was undone ({why}); the next one starts over"


# --- the job -------------------------------------------------------------------------------------


@register
class RotateLogs(Job):
    name = "rotate-logs"
    period = WEEK
    touches = frozenset({"backend-log"})

    def _root(self) -> str:
        return self.config.deployment.root

    def setup(self) -> Optional[str]:
        if not os.path.isdir(os.path.join(self._root(), "logs")):
            return f"no {os.path.join(self._root(), 'logs')} ([deployment] root)"
        return None

    def run(self, ctx: JobContext) -> Outcome:
        if ctx.store is None:
            return Outcome("failed", "rotating needs the store (the tailer's positions move with the cut)")
        recovered = recover(ctx.store, self.config)
        if recovered:
            ctx.progress(recovered)
        s = self.settings
        archive_dir = os.path.join(self._root(), s.archive)
        done, notes, result = [], [recovered] if recovered else [], {"files": {}}
        for rel in s.files:
            ctx.check()
            live = os.path.join(self._root(), rel)
            if not os.path.exists(live):
                notes.append(f"{rel}: absent")
                continue
            got = self.rotate(ctx, live, archive_name(archive_dir, live, ctx.now), result)
            result["files"][rel] = got
            done.append(f"{rel}: {_size(got['bytes'])} into {os.path.relpath(got['archive'], self._root())}"
                        + ("" if got["how"] == "collapse" else " (copied then truncated: a line written in "
                           "that instant may be lost; this file system cannot cut a file's start)"))
        pruned, compressed = self.tidy(ctx, archive_dir)
        result.update(pruned=pruned, compressed=compressed)
        if pruned or compressed:
            notes.append(f"{len(pruned)} old archives deleted, {len(compressed)} compressed")
        return Outcome("ok", "; ".join(done + notes) or "nothing to rotate", result)

    def rotate(self, ctx: JobContext, live: str, archive: str, result: dict) -> dict:
        from ..backend.ingest import LOG_LOCK, Ingestor

        store = ctx.store
        log_path = _ingested_log(self.config, live)
        fd = os.open(live, os.O_RDWR)   # not O_APPEND: the blanking writes at the start
        try:
            with LOG_LOCK:              # the tailer reads nothing until the position has moved
                if log_path is not None:
                    ctx.progress(f"{os.path.basename(live)}: catching the tailer up before the cut")
                    Ingestor(self.config, store).ingest(log_path)
                st = os.fstat(fd)
                position_fp = None
                if log_path is not None:
                    with store.transaction() as conn:
                        row = _position(conn, log_path, st)
                    if row is None:
                        raise OSError(errno.EIO, f"{live}: the tailer has no position for it after catching up")
                    end, position_fp = row[7], row[5]
                else:
                    end = _last_line_end(fd, st.st_size)
                rot = Rotation(store, self.config, live, archive)
                rot.prepare(fd, end, position_fp, log_path, collapse=True)
                ctx.progress(f"{os.path.basename(live)}: {_size(end - rot.intent['start'])} into {archive}")
                rot.copy(fd)
                how = "collapse"
                try:
                    rot.collapse(fd)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                        raise
                    how = "copy-truncate"
                if how == "collapse":
                    rot.blank(fd)
                    rot.commit(fd, ctx.run_id, dict(result, current=live))
                    cut = rot.intent["cut"]
                else:
                    cut = self._copy_truncate(ctx, rot, fd, log_path)
            return {"archive": archive, "bytes": end - rot.intent["start"], "cut": cut, "how": how}
        finally:
            os.close(fd)

    def _copy_truncate(self, ctx, rot: Rotation, fd: int, log_path: Optional[str]) -> int:
        """Where the start of a file cannot be cut: copy until it stops growing, then truncate."""
        import hashlib
        from ..backend.ingest import Ingestor
        from ..store import sql
        copied = rot.intent["end"]
        out = _open_archive(rot.archive)
        try:
            while True:
                size = _last_line_end(fd, os.fstat(fd).st_size)
                if size <= copied:
                    break
                _copy(fd, out, copied, size)
                copied = size
            if log_path is not None:        # the lines copied last, ingested before they go
                Ingestor(self.config, ctx.store).ingest(log_path)
            os.ftruncate(fd, 0)
        finally:
            os.close(out)
        with ctx.store.transaction() as conn:
            if log_path is not None:
                conn.execute(sql.LOG_POSITION_SHIFT, {"log": log_path, "role": "current", "offset": 0,
                                                      "fingerprint": hashlib.sha1(b"").hexdigest(), "fp_len": 0,
                                                      "size": 0})
            conn.execute(sql.META_DELETE, {"key": INTENT})
        return copied

    def tidy(self, ctx: JobContext, archive_dir: str) -> tuple[list, list]:
        """Archives past ``keep`` deleted; past ``compress_after``, gzipped (streamed)."""
        import gzip
        import re
        import shutil
        s = self.settings
        pruned, compressed = [], []
        if not os.path.isdir(archive_dir):
            return pruned, compressed
        name_re = re.compile(r"^[\w.-]+_(\d{8})\.log(\.gz)?$")
        for month in sorted(os.listdir(archive_dir)):
            folder = os.path.join(archive_dir, month)
            if not (re.fullmatch(r"\d{6}", month) and os.path.isdir(folder)):
                continue
            for name in sorted(os.listdir(folder)):
                m = name_re.match(name)
                if not m:
                    continue       # not ours: never touched
                path = os.path.join(folder, name)
                age = ctx.now - time.mktime(time.strptime(m.group(1), "%Y%m%d"))
                if age > s.keep + DAY:
                    os.unlink(path)
                    pruned.append(os.path.relpath(path, archive_dir))
                elif s.compress_after and age > s.compress_after + DAY and not m.group(2):
                    ctx.check()
                    tmp = path + ".gz.partial"
                    with open(path, "rb") as src, gzip.open(tmp, "wb") as dst:
                        shutil.copyfileobj(src, dst, COPY_CHUNK)
                    with open(tmp, "rb") as f:
                        os.fsync(f.fileno())
                    os.replace(tmp, path + ".gz")
                    os.unlink(path)
                    compressed.append(os.path.relpath(path, archive_dir))
            if not os.listdir(folder):
                os.rmdir(folder)
        return pruned, compressed


def _size(n: int) -> str:
    from ..units import humanize
    return humanize(float(n), "bytes")
