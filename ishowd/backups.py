"""Backups of the deployment's optimisation files: create, list, verify, restore, prune.

A backup is a folder ``<dir>/<id>/``, the id being its UTC time as ``YYYYMMDD-HHMMSS``
(UTC: ids sort as the backups were made, with no hour repeated when the clocks go back),
holding a copy of each listed file at its path relative to ``[deployment] root`` with
its mode and mtime, and ``MANIFEST.sha256`` in the format ``sha256sum -c`` checks.

A backup is written to ``<dir>/.partial-<id>-<pid>`` and renamed to its id only once every
copy hashed the same as what was read, so a folder named by an id is always whole; a
partial folder a killed run left is removed by the next run. Only those two kinds of
names are ever removed from ``dir``: whatever else lives there is not ours.

A backup folder is data, not code: restore and verify refuse a manifest line naming an
absolute path, ``..``, a control character, an escaped name or a file not in
``[jobs.backup] files``, never follow a symlink inside the folder, and never write
through a symlink that leaves the deployment root.

Who writes (the job, a restore) holds an exclusive ``flock`` on ``dir`` itself, so a partial
folder found under the lock belongs to a run that died (the kernel drops the lock with it).

hashlib and shutil are imported where they are used: the job module, which every ``ishowctl``
start reads, imports this one only to run.
"""
from __future__ import annotations

import errno
import os
import re
import stat
from datetime import datetime, timezone
from typing import Callable, NamedTuple, Optional

MANIFEST = "MANIFEST.sha256"
ID_FORMAT = "%Y%m%d-%H%M%S"
PARTIAL_PREFIX = ".partial-"
RESTORE_SUFFIX = ".restore-"      # .<name>.restore-<8 hex>: a restore's temporary file beside <name>
CHUNK = 1 << 20
# A manifest lists a handful of files: one much larger than this is not one we wrote.
MANIFEST_MAX_BYTES = 1 << 20

_ID = re.compile(r"^[0-9]{8}-[0-9]{6}$")
_PARTIAL = re.compile(r"^\.partial-[0-9]{8}-[0-9]{6}-[0-9]+$")
_LINE = re.compile(r"^([0-9a-f]{64}) ([ *])(.*)$")


class BackupError(Exception):
    """A backup or restore that could not be done; the message is one line for the operator."""
    exit_code = 1


class NoSuchBackup(BackupError):
    exit_code = 2


class Busy(BackupError):
    """Another backup or restore holds the backup folder."""


class Refused(BackupError):
    """A restore refused before anything was written; ``problems`` says why, one per line."""

    def __init__(self, message: str, problems: list):
        super().__init__(message)
        self.problems = problems


class Settings(NamedTuple):
    root: str
    dir: str
    files: tuple
    keep: float             # seconds a backup is kept...
    keep_newest: int        # ...unless it is one of the newest this many

    @classmethod
    def of(cls, config) -> "Settings":
        section = config.sections["jobs.backup"]
        root = config.sections["deployment"]["root"]
        return cls(root, section["dir"] or os.path.join(root, "backups"), tuple(section["files"]),
                   section["keep"], section["keep_newest"])


class Entry(NamedTuple):
    path: str
    sha: str


class Backup(NamedTuple):
    id: str
    created: float          # epoch seconds
    files: int
    bytes: int


class Problem(NamedTuple):
    kind: str               # missing | changed | extra | refused
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {shown(self.path)}" + (f": {self.detail}" if self.detail else "")


class Verification(NamedTuple):
    id: str
    entries: list
    problems: list
    bytes: int


class Change(NamedTuple):
    path: str
    action: str             # create | replace | unchanged
    target: str             # where it goes (symlinks inside the root resolved)
    old_size: Optional[int]
    old_sha: Optional[str]
    new_size: int
    new_sha: str


class Plan(NamedTuple):
    id: str
    changes: list


class Created(NamedTuple):
    id: Optional[str]               # None: nothing written
    unchanged_since: Optional[str]  # the newest backup, when the files equal it
    files: dict                     # path -> (sha, size), what was (or would have been) backed up
    missing: list                   # listed files that do not exist
    refused: list                   # listed files that could not be backed up, with why
    cleaned: list                   # partial folders of killed runs removed


def shown(name: str) -> str:
    """A name from a backup folder as a message shows it: control characters escaped."""
    return name if name.isprintable() else ascii(name)[1:-1]


def backup_id(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).strftime(ID_FORMAT)


def id_time(name: str) -> Optional[float]:
    """The time a backup id stands for, or None when ``name`` is not an id."""
    if not _ID.match(name):
        return None
    try:
        return datetime.strptime(name, ID_FORMAT).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def _sha_of_fd(fd: int, copy_to: Optional[int] = None) -> tuple:
    """(sha256 hex, size) of what is read from ``fd``, a block at a time (a file of any size costs
    one block of memory); ``copy_to``: written there as it is read."""
    import hashlib
    digest, size = hashlib.sha256(), 0
    while True:
        block = os.read(fd, CHUNK)
        if not block:
            return digest.hexdigest(), size
        digest.update(block)
        size += len(block)
        if copy_to is not None:
            view = memoryview(block)
            while view:
                view = view[os.write(copy_to, view):]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_regular(path: str, *, dir_fd: Optional[int] = None, follow: bool = True) -> int:
    """Open a regular file to read; a FIFO or device is refused without blocking on it."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags, dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return fd


def _open_beneath(base: str, rel: str) -> int:
    """Open ``base/rel`` to read without following a symlink anywhere on the way (in a backup
    folder a link could point at any file on the machine), nor a '..' out of it."""
    parts = rel.split("/")
    if "\0" in rel or any(p in ("", ".", "..") for p in parts):     # "" first: an absolute path
        raise OSError(errno.EPERM, "not a plain path inside the backup (never followed)")
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in parts[:-1]:
            step = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = step
        return _open_regular(parts[-1], dir_fd=fd, follow=False)
    finally:
        os.close(fd)


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symlink, not a file (never followed)"
    if exc.errno == errno.ENOTDIR:
        return "a part of its path is not a folder"
    return exc.strerror or str(exc)


def _is_dir(path: str) -> bool:
    """A folder itself, not a symlink to one (nor gone since it was listed)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _inside(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/") + "/")


def parse_manifest(raw: bytes, allowed: Optional[frozenset]) -> tuple:
    """(entries, problems) of a manifest's bytes; ``allowed``: the names it may list (None: any)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [], [Problem("refused", MANIFEST, "not UTF-8 text")]
    entries, problems, seen = [], [], set()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        where = f"{MANIFEST} line {number}"
        m = _LINE.match(line)
        if not m:
            why = ("an escaped name (a backslash or newline in it)" if line.startswith("\\")
                   else "not '<sha256>  <path>'")
            problems.append(Problem("refused", where, why))
            continue
        sha, rel = m.group(1), m.group(3)
        problem = None
        # The names [jobs.backup] files may hold were checked at load (relative, no '..', no
        # control character): a name that is not one of them, whatever it points at, is refused.
        if allowed is not None and rel not in allowed:
            problem = "not one of [jobs.backup] files (never followed)"
        elif rel in seen:
            problem = "listed twice"
        if problem:
            problems.append(Problem("refused", where, f"{shown(rel)}: {problem}"))
            continue
        seen.add(rel)
        entries.append(Entry(rel, sha))
    if not entries and not problems:
        problems.append(Problem("refused", MANIFEST, "lists no file"))
    return entries, problems


def _remove_killed_restores(target: str) -> None:
    """Remove the temporary files a killed restore left beside ``target`` (only under the lock:
    no live restore has one)."""
    parent, name = os.path.split(target)
    left = re.compile(re.escape(f".{name}{RESTORE_SUFFIX}") + "[0-9a-f]{8}$")
    try:
        names = os.listdir(parent)
    except FileNotFoundError:
        return
    for other in names:
        if left.match(other) and stat.S_ISREG(os.lstat(os.path.join(parent, other)).st_mode):
            os.unlink(os.path.join(parent, other))


def _own_like(top: str, owner: os.stat_result) -> None:
    """When root writes a backup (``sudo ishowctl backups restore`` backing up first), hand it
    to the owner of the backup folder: the daemon's user must still read and prune it."""
    if os.geteuid() != 0:
        return
    os.lchown(top, owner.st_uid, owner.st_gid)
    for here, dirs, files in os.walk(top):
        for name in dirs + files:
            os.lchown(os.path.join(here, name), owner.st_uid, owner.st_gid)


class BackupDir:
    """The backups of one deployment, in ``settings.dir``."""

    def __init__(self, settings: Settings):
        self.s = settings
        self._lock_fd: Optional[int] = None

    # --- reading -------------------------------------------------------------------------

    def ids(self) -> list:
        """The ids of the backups in ``dir``, newest first (only real folders named by an id)."""
        try:
            names = os.listdir(self.s.dir)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise BackupError(f"cannot read the backup folder {self.s.dir}: {exc.strerror}") from None
        return sorted((n for n in names if id_time(n) is not None and _is_dir(os.path.join(self.s.dir, n))),
                      reverse=True)

    def folder(self, backup: str) -> str:
        """The folder of backup ``backup``; ``NoSuchBackup`` when there is none by that id."""
        path = os.path.join(self.s.dir, backup) if id_time(backup) is not None else None
        if path is None or backup not in self.ids():
            raise NoSuchBackup(f"no backup {shown(backup)} in {self.s.dir}; `ishowctl backups list` shows them")
        return path

    def _manifest(self, backup: str, allowed: Optional[frozenset]) -> tuple:
        try:
            fd = _open_beneath(self.folder(backup), MANIFEST)
        except OSError as exc:
            return [], [Problem("missing" if exc.errno == errno.ENOENT else "refused", MANIFEST,
                                "" if exc.errno == errno.ENOENT else _why(exc))]
        try:
            raw = os.read(fd, MANIFEST_MAX_BYTES + 1)
        finally:
            os.close(fd)
        if len(raw) > MANIFEST_MAX_BYTES:
            return [], [Problem("refused", MANIFEST, f"larger than {MANIFEST_MAX_BYTES} bytes")]
        return parse_manifest(raw, allowed)

    def list(self) -> list:
        """Every backup, newest first, with the files its manifest lists and their bytes."""
        out = []
        for backup in self.ids():
            entries, _ = self._manifest(backup, None)
            size = 0
            for e in entries:
                try:    # never a size from outside the folder, whatever the manifest names
                    fd = _open_beneath(os.path.join(self.s.dir, backup), e.path)
                except OSError:
                    continue
                size += os.fstat(fd).st_size
                os.close(fd)
            out.append(Backup(backup, id_time(backup), len(entries), size))
        return out

    def verify(self, backup: str) -> Verification:
        """Every file of ``backup`` against its manifest: what is missing, changed or extra."""
        folder = self.folder(backup)
        entries, problems = self._manifest(backup, frozenset(self.s.files))
        total = 0
        expected = {MANIFEST}
        for e in entries:
            parts = e.path.split("/")
            expected.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
            try:
                fd = _open_beneath(folder, e.path)
            except OSError as exc:
                problems.append(Problem("missing", e.path, "") if exc.errno == errno.ENOENT
                                else Problem("refused", e.path, _why(exc)))
                continue
            try:
                sha, size = _sha_of_fd(fd)
            finally:
                os.close(fd)
            total += size
            if sha != e.sha:
                problems.append(Problem("changed", e.path, f"sha256 {sha[:12]}, the manifest says {e.sha[:12]}"))
        for here, dirs, files in os.walk(folder):
            for name in dirs + files:
                rel = os.path.relpath(os.path.join(here, name), folder)
                if rel not in expected:
                    problems.append(Problem("extra", rel, "not in the manifest"))
            dirs[:] = [d for d in dirs if os.path.relpath(os.path.join(here, d), folder) in expected]
        return Verification(backup, entries, problems, total)

    # --- writing (under the lock) ----------------------------------------------------------

    def lock(self) -> "BackupDir":
        """Take the folder for a backup or restore (``Busy`` when another holds it); a context manager."""
        import fcntl
        try:
            os.makedirs(self.s.dir, mode=0o700, exist_ok=True)
            fd = os.open(self.s.dir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise BackupError(f"cannot use the backup folder {self.s.dir} ([jobs.backup] dir): "
                              f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(f"another backup or restore is running in {self.s.dir}; try again when it ends") from None
        self._lock_fd = fd
        return self

    def __enter__(self) -> "BackupDir":
        if self._lock_fd is None:
            self.lock()
        return self

    def __exit__(self, *exc) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)     # closing drops the flock
            self._lock_fd = None

    def clean_partial(self) -> list:
        """Remove the partial folders of runs that died (only under the lock: no live run has one)."""
        assert self._lock_fd is not None, "clean_partial() needs the lock"
        import shutil
        removed = []
        for name in sorted(os.listdir(self.s.dir)):
            path = os.path.join(self.s.dir, name)
            if _PARTIAL.match(name) and _is_dir(path):
                shutil.rmtree(path)
                removed.append(name)
        return removed

    def prune(self, now: float) -> list:
        """Remove backups older than ``keep``, never the newest ``keep_newest``; the ids removed."""
        assert self._lock_fd is not None, "prune() needs the lock"
        import shutil
        removed = []
        for backup in self.ids()[self.s.keep_newest:]:
            if now - id_time(backup) > self.s.keep:
                # renamed out of the ids first: a removal that fails halfway leaves a partial
                # folder (removed by the next run), never a half backup that lists as one
                doomed = os.path.join(self.s.dir, f"{PARTIAL_PREFIX}{backup}-{os.getpid()}")
                try:
                    os.rename(os.path.join(self.s.dir, backup), doomed)
                    shutil.rmtree(doomed)
                except OSError as exc:
                    raise BackupError(f"could not remove the old backup {backup} from {self.s.dir}: "
                                      f"{exc.strerror or exc}") from None
                removed.append(backup)
        return removed

    def _source(self, rel: str) -> str:
        """The real path of a listed file; ``BackupError`` when a symlink takes it out of the root."""
        root = os.path.realpath(self.s.root)
        real = os.path.realpath(os.path.join(root, rel))
        if not _inside(real, root):
            raise BackupError(f"leads out of {self.s.root} through a symlink (to {real})")
        return real

    def _current(self, files, check: Callable[[], None]) -> tuple:
        """({path: (sha, size)}, missing, refused) of the listed files as they are now."""
        found, missing, refused = {}, [], []
        for rel in files:
            check()
            try:
                fd = _open_regular(self._source(rel))
            except BackupError as exc:
                refused.append(f"{rel} ({exc})")
                continue
            except FileNotFoundError:
                missing.append(rel)
                continue
            except OSError as exc:
                refused.append(f"{rel} ({_why(exc)})")
                continue
            try:
                found[rel] = _sha_of_fd(fd)
            except OSError as exc:
                refused.append(f"{rel} ({_why(exc)})")
            finally:
                os.close(fd)
        return found, missing, refused

    def _next_id(self, now: float) -> str:
        # The newest backup must sort last (the unchanged check, pruning and a restore's undo go by
        # id): after a clock stepped back, or a second backup within a second, take the next second.
        ids = self.ids()
        ts = int(now)
        if ids and ts <= id_time(ids[0]):
            ts = int(id_time(ids[0])) + 1
        return backup_id(ts)

    def create(self, now: float, *, only=None, force: bool = False, check: Callable[[], None] = lambda: None,
               progress: Callable[[str], None] = lambda text: None) -> Created:
        """Back up the listed files (``only``: these of them); unless ``force``, nothing is written when
        they equal the newest backup. ``BackupError`` when the backup could not be written (nothing
        of it is left behind)."""
        assert self._lock_fd is not None, "create() needs the lock"
        cleaned = self.clean_partial()
        files = list(self.s.files if only is None else only)
        found, missing, refused = self._current(files, check)
        if not found:
            return Created(None, None, found, missing, refused, cleaned)
        if not force:
            newest = self.ids()[:1]
            if newest:
                proof = self.verify(newest[0])
                if not proof.problems and {e.path: e.sha for e in proof.entries} == \
                        {rel: sha for rel, (sha, _) in found.items()}:
                    return Created(None, newest[0], found, missing, refused, cleaned)
        import shutil
        backup = self._next_id(now)
        partial = os.path.join(self.s.dir, f"{PARTIAL_PREFIX}{backup}-{os.getpid()}")
        try:
            os.mkdir(partial, 0o700)
            try:
                copied = {}
                for rel in sorted(found):
                    check()
                    copied[rel] = self._copy_in(rel, partial)
                    progress(f"copied {rel}")
                with open(os.path.join(partial, MANIFEST), "w", encoding="utf-8") as f:
                    f.writelines(f"{sha}  {rel}\n" for rel, (sha, _) in sorted(copied.items()))
                    f.flush()
                    os.fsync(f.fileno())
                _own_like(partial, os.stat(self.s.dir))
                for here, _, _ in sorted(os.walk(partial), reverse=True):   # deepest first
                    _fsync_dir(here)
                progress(f"{len(copied)} files copied and verified; renaming {os.path.basename(partial)} "
                         f"to {backup}")
                os.rename(partial, os.path.join(self.s.dir, backup))
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise BackupError(f"cannot write the backup in {self.s.dir}: {exc.strerror or exc}{where}; "
                              "nothing of it was kept") from None
        _fsync_dir(self.s.dir)
        return Created(backup, None, copied, missing, refused, cleaned)

    def _copy_in(self, rel: str, partial: str) -> tuple:
        """Copy one listed file into the partial folder with its mode and mtime; (sha, size) of
        what was read, which the copy, read back, must equal."""
        try:
            src = _open_regular(self._source(rel))
        except OSError as exc:
            raise BackupError(f"{rel} could not be read: {_why(exc)}") from None
        dest = os.path.join(partial, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)   # inside the 0700 partial folder
        try:
            before = os.fstat(src)
            out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                sha, size = _sha_of_fd(src, copy_to=out)
                after = os.fstat(src)
                if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                    raise BackupError(f"{rel} changed while it was copied; run the backup again")
                os.fchmod(out, stat.S_IMODE(before.st_mode))
                os.utime(out, ns=(before.st_atime_ns, before.st_mtime_ns))
                os.fsync(out)
            finally:
                os.close(out)
        finally:
            os.close(src)
        back = _open_regular(dest, follow=False)
        try:
            if _sha_of_fd(back) != (sha, size):
                raise BackupError(f"the copy of {rel} does not read back as written (the disk under "
                                  f"{self.s.dir} may be failing)")
        finally:
            os.close(back)
        return sha, size

    # --- restoring -------------------------------------------------------------------------

    def plan(self, backup: str) -> Plan:
        """What restoring ``backup`` changes; ``Refused`` when it fails verification or a file
        could not be put back safely."""
        proof = self.verify(backup)
        if proof.problems:
            raise Refused(f"backup {backup} fails verification; nothing was restored", proof.problems)
        root = os.path.realpath(self.s.root)
        if not os.path.isdir(root):
            raise Refused(f"[deployment] root {self.s.root} is not a folder; nothing was restored", [])
        folder = self.folder(backup)
        changes, problems = [], []
        for e in proof.entries:
            fd = _open_beneath(folder, e.path)
            try:
                new_size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            try:
                target = self._source(e.path)
            except BackupError as exc:
                problems.append(Problem("refused", e.path, str(exc)))
                continue
            try:
                st = os.stat(target)
            except FileNotFoundError:
                changes.append(Change(e.path, "create", target, None, None, new_size, e.sha))
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append(Problem("refused", e.path, f"{target} is not a regular file: move it away first"))
                continue
            fd = _open_regular(target)
            try:
                old_sha, old_size = _sha_of_fd(fd)
            finally:
                os.close(fd)
            action = "unchanged" if old_sha == e.sha else "replace"
            changes.append(Change(e.path, action, target, old_size, old_sha, new_size, e.sha))
        if problems:
            raise Refused(f"backup {backup} cannot be restored safely; nothing was restored", problems)
        return Plan(backup, changes)

    def restore(self, plan: Plan, now: float) -> tuple:
        """Carry out ``plan``: first back up what it replaces (a backup of its own), then write each
        file atomically. (undo id or None, paths written)."""
        assert self._lock_fd is not None, "restore() needs the lock"
        replaced = [c.path for c in plan.changes if c.action == "replace"]
        undo = None
        if replaced:
            made = self.create(now, only=replaced, force=True)
            if made.id is None or made.missing or made.refused:
                raise BackupError("the current files could not be backed up first ("
                                  + "; ".join(made.missing + made.refused) + "); nothing was restored")
            undo = made.id
        folder = self.folder(plan.id)
        written = []
        for c in plan.changes:
            if c.action == "unchanged":
                continue
            try:
                _remove_killed_restores(c.target)
                self._put_back(folder, c)
            except OSError as exc:
                done = f"; already restored: {', '.join(written)}" if written else ""
                again = f"; `ishowctl backups restore {undo}` puts back what was there" if undo else ""
                raise BackupError(f"{c.path} could not be restored: {exc.strerror or exc}{done}{again}") from None
            written.append(c.path)
        return undo, written

    def _put_back(self, folder: str, c: Change) -> None:
        parent = os.path.dirname(c.target)
        os.makedirs(parent, exist_ok=True)
        # the folders made just now, or swapped in since the plan, must still be inside the root
        if not _inside(os.path.join(os.path.realpath(parent), "x"), os.path.realpath(self.s.root)):
            raise OSError(errno.EXDEV, f"{parent} now leads out of {self.s.root}")
        src = _open_beneath(folder, c.path)
        dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
        name = os.path.basename(c.target)
        temp = f".{name}{RESTORE_SUFFIX}{os.urandom(4).hex()}"
        try:
            st = os.fstat(src)
            try:
                owner = os.stat(name, dir_fd=dfd)
            except FileNotFoundError:
                owner = os.fstat(dfd)
            out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd)
            try:
                try:
                    if _sha_of_fd(src, copy_to=out)[0] != c.new_sha:
                        raise OSError(errno.EIO, "its copy in the backup changed since it was verified")
                    # the mode less setuid, setgid and sticky: a backup folder is data, and never
                    # makes a restored file run as its owner
                    if os.geteuid() == 0:     # the service's user keeps its file when root restores
                        os.fchown(out, owner.st_uid, owner.st_gid)
                    os.fchmod(out, stat.S_IMODE(st.st_mode) & 0o777)
                    os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
                    os.fsync(out)
                finally:
                    os.close(out)
                os.rename(temp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                try:
                    os.unlink(temp, dir_fd=dfd)
                except FileNotFoundError:
                    pass
                raise
            os.fsync(dfd)
        finally:
            os.close(dfd)
            os.close(src)
