"""The ``backup`` job and ``ishowctl backups``: real files in a fake deployment tree, the real
``sha256sum -c``, the installed ``ishowctl``, hand-made malicious backup folders, kill -9."""
from __future__ import annotations

import fcntl
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ishowd import catalog
from ishowd.jobs import JobContext
from ishowd.process import Cancel

from conftest import entry_point, run, write_config
from mounts import fill, mount_tmpfs

DAY = 86400
T0 = 1_767_225_600          # 2026-01-01 00:00:00 UTC
FILES = {   # path -> (content, mode)
    "third_party/F5-TTS/src/f5_tts/api.py": (b"import torch\n# api: fp16 everywhere\n" * 40, 0o644),
    "third_party/F5-TTS/src/f5_tts/infer/utils_infer.py": (b"def infer(steps=8):\n    pass\n" * 30, 0o600),
    "crates/tts-engine/src/lib.rs": (b"pub fn synth() {}\n" * 50, 0o755),
    "config/ishowtts.toml": (b'[f5]\nnfe_steps = 8\nvocoder = "vocos"\n', 0o640),
}


def id_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y%m%d-%H%M%S")


def snapshot(top: Path) -> dict:
    """Every entry under ``top``: a file's bytes, mode and mtime; a link's target; a folder's mode."""
    out = {}
    for here, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(here) / name
            st = path.lstat()
            rel = str(path.relative_to(top))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", st.st_mode)
            else:
                out[rel] = (path.read_bytes(), st.st_mode, st.st_mtime_ns)
    return out


class Deployment:
    """A fake iShowTTS checkout with the four files, and a config pointing at it."""

    def __init__(self, tmp_path: Path, **backup_keys):
        self.tmp = tmp_path
        self.root = tmp_path / "ishowtts"
        self.dir = Path(backup_keys.get("dir") or self.root / "backups")
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        for i, (rel, (content, mode)) in enumerate(FILES.items()):
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            path.chmod(mode)
            # mtimes with nanoseconds, long before the backups: they must come back exactly
            os.utime(path, ns=((T0 - 40 * DAY) * 10**9, (T0 - 30 * DAY + i) * 10**9 + 123_456_789))
        self.cfg = write_config(tmp_path, deployment={"root": str(self.root)},
                                **({"jobs.backup": backup_keys} if backup_keys else {}))

    def config(self):
        return catalog.loads_config(self.cfg.read_text(), str(self.cfg))

    def job(self, now: float = T0, progress=None):
        config = self.config()
        job = catalog.jobs()["backup"](config)
        return job.run(JobContext(config, timeout=60, cancel=Cancel(), now=now, progress=progress))

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return run(entry_point("ishowctl"), "--config", str(self.cfg), "backups", *args)

    def listed(self) -> list:
        proc = self.ctl("list", "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def originals(self) -> dict:
        return {rel: snapshot(self.root)[rel] for rel in FILES}


@pytest.fixture
def dep(tmp_path, clean_env) -> Deployment:
    return Deployment(tmp_path)


def sha256sum_check(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sha256sum", "-c", "MANIFEST.sha256"], cwd=folder, capture_output=True, text=True,
                          timeout=60)


# --- making backups -----------------------------------------------------------------------------

def test_a_backup_copies_each_file_with_its_mode_and_mtime_and_sha256sum_checks_the_manifest(dep):
    before = dep.originals()
    outcome = dep.job(T0)
    backup = id_of(T0)
    assert outcome.status == "ok", outcome
    assert backup in outcome.detail and "4 files" in outcome.detail and "verified" in outcome.detail
    folder = dep.dir / backup
    for rel in FILES:
        copy = folder / rel
        st = copy.lstat()
        assert (copy.read_bytes(), st.st_mode, st.st_mtime_ns) == before[rel], rel
    check = sha256sum_check(folder)
    assert check.returncode == 0, check.stdout + check.stderr
    assert sorted(check.stdout.splitlines()) == sorted(f"{rel}: OK" for rel in FILES)
    assert sorted(p.name for p in dep.dir.iterdir()) == [backup]          # no partial folder left
    assert dep.listed() == [{"id": backup, "created": "2026-01-01T00:00:00+00:00", "files": 4,
                             "bytes": sum(len(c) for c, _ in FILES.values())}]
    table = dep.ctl("list")
    assert table.returncode == 0 and backup in table.stdout and "files" in table.stdout


def test_an_unchanged_run_writes_nothing_and_a_change_makes_a_new_backup(dep):
    first = dep.job(T0)
    assert first.status == "ok"
    before = snapshot(dep.dir)
    again = dep.job(T0 + DAY)
    assert again.status == "ok", again
    assert again.detail == f"unchanged since {id_of(T0)}"
    assert snapshot(dep.dir) == before
    (dep.root / "config/ishowtts.toml").write_bytes(b"[f5]\nnfe_steps = 16\n")
    # the same second again (a clock stepped back would do it): the new backup still sorts last
    changed = dep.job(T0)
    assert changed.status == "ok" and id_of(T0 + 1) in changed.detail, changed
    assert [b["id"] for b in dep.listed()] == [id_of(T0 + 1), id_of(T0)]


def test_a_missing_file_fails_the_run_by_name_and_the_others_are_still_backed_up(dep):
    (dep.root / "crates/tts-engine/src/lib.rs").unlink()
    outcome = dep.job(T0)
    assert outcome.status == "failed" and "missing: crates/tts-engine/src/lib.rs" in outcome.detail, outcome
    folder = dep.dir / id_of(T0)
    check = sha256sum_check(folder)
    assert check.returncode == 0 and len(check.stdout.splitlines()) == 3, check.stdout
    assert dep.job(T0 + DAY).status == "failed"          # still missing: unchanged is no excuse


def test_no_deployment_root_is_skipped_naming_the_key_and_path(tmp_path, clean_env):
    cfg = write_config(tmp_path, deployment={"root": str(tmp_path / "nowhere")})
    config = catalog.loads_config(cfg.read_text(), str(cfg))
    outcome = catalog.jobs()["backup"](config).run(JobContext(config, timeout=60, cancel=Cancel(), now=T0))
    assert outcome.status == "skipped" and "[deployment] root" in outcome.detail
    assert str(tmp_path / "nowhere") in outcome.detail
    assert not (tmp_path / "nowhere").exists()


def test_a_backup_held_by_another_run_is_skipped(dep):
    dep.dir.mkdir()
    fd = os.open(dep.dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)       # as a restore in another process holds it
        outcome = dep.job(T0)
        assert outcome.status == "skipped" and "another backup or restore" in outcome.detail
    finally:
        os.close(fd)
    assert list(dep.dir.iterdir()) == []


def test_prune_keeps_the_newest_three_whatever_their_age_and_never_touches_foreign_entries(dep):
    dep.dir.mkdir()
    foreign = dep.dir / "notes"
    foreign.mkdir()
    (foreign / "why.txt").write_text("kept by hand\n")
    (dep.dir / "20200101-000000").write_text("a file named like an id\n")
    (dep.dir / "20190101-000000.bak").mkdir()
    (dep.dir / ".partial-by-hand").mkdir()
    (dep.outside / "old").mkdir()
    (dep.outside / "old" / "keep.txt").write_text("outside\n")
    (dep.dir / "20180101-000000").symlink_to(dep.outside / "old")
    untouched = snapshot(dep.dir)
    untouched_outside = snapshot(dep.outside)
    config = dep.root / "config/ishowtts.toml"
    days = [0, 40, 80, 120, 160]
    for day in days:
        config.write_text(f"[f5]\nnfe_steps = {day}\n")
        assert dep.job(T0 + day * DAY).status == "ok"
    # at day 160 with 90 days kept: day 0 and day 40 go, day 80 stays young enough
    assert [b["id"] for b in dep.listed()] == [id_of(T0 + d * DAY) for d in (160, 120, 80)]
    # far later, every backup is old: the newest three stay whatever their age
    late = dep.job(T0 + 400 * DAY)
    assert late.status == "ok" and late.detail.startswith(f"unchanged since {id_of(T0 + 160 * DAY)}")
    assert [b["id"] for b in dep.listed()] == [id_of(T0 + d * DAY) for d in (160, 120, 80)]
    now = snapshot(dep.dir)
    assert {k: v for k, v in now.items() if k in untouched} == untouched
    assert snapshot(dep.outside) == untouched_outside


def test_an_old_backup_that_cannot_be_removed_fails_the_run_and_never_lists_half_removed(dep):
    """A removal that stops halfway (here an immutable file, as a disk error would) leaves a
    partial folder the next run removes, not a backup that would fail verification."""
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("chattr +i needs root")
    config = dep.root / "config/ishowtts.toml"
    for day in (0, 1, 2, 3):
        config.write_text(f"day {day}\n")
        assert dep.job(T0 + day * DAY).status == "ok"
    stuck = dep.dir / id_of(T0) / "config/ishowtts.toml"
    if subprocess.run(["chattr", "+i", str(stuck)], capture_output=True).returncode != 0:
        pytest.skip("this file system has no immutable flag")
    try:
        outcome = dep.job(T0 + 100 * DAY)
        assert outcome.status == "failed" and f"could not remove the old backup {id_of(T0)}" in outcome.detail
        assert [b["id"] for b in dep.listed()] == [id_of(T0 + d * DAY) for d in (3, 2, 1)]
    finally:
        for left in dep.dir.glob("*/config/ishowtts.toml"):      # wherever it is now (* takes .partial-)
            subprocess.run(["chattr", "-i", str(left)], check=True)
    assert "removed 1 partial folders" in dep.job(T0 + 100 * DAY).detail
    assert not list(dep.dir.glob(".partial-*"))


def test_how_long_and_how_many_are_kept_are_settings(tmp_path, clean_env):
    dep = Deployment(tmp_path, keep="10d", keep_newest=1)
    config = dep.root / "config/ishowtts.toml"
    for day in (0, 5, 30):
        config.write_text(f"day {day}\n")
        assert dep.job(T0 + day * DAY).status == "ok"
    assert [b["id"] for b in dep.listed()] == [id_of(T0 + 30 * DAY)]


# --- a run that dies, a disk that fails ----------------------------------------------------------

KILLED_RUN = """
import sys
from ishowd import catalog
from ishowd.jobs import JobContext
from ishowd.process import Cancel
config = catalog.load_config(sys.argv[1])
def progress(text):
    if "renaming" in text:          # every copy made and verified, the rename not yet done
        print("READY", text, flush=True)
        sys.stdin.read()            # held here until killed
job = catalog.jobs()["backup"](config)
job.run(JobContext(config, timeout=60, cancel=Cancel(), now=float(sys.argv[2]), progress=progress))
print("FINISHED", flush=True)
"""


def read_line(proc: subprocess.Popen, deadline: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    while not buf.endswith(b"\n"):
        if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
            pytest.fail(f"no line from the backup process in time (so far {buf!r})")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
    return buf.decode()


def test_a_backup_killed_before_its_rename_leaves_no_backup_and_the_next_run_cleans_up(dep):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(dep.cfg), str(T0)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = read_line(proc, time.monotonic() + 60)
        if not line.startswith("READY"):
            proc.kill()
            pytest.fail(f"the backup process said {line!r}: {proc.stderr.read().decode()}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = [p.name for p in dep.dir.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".partial-{id_of(T0)}-"), left
    assert (dep.dir / left[0] / "MANIFEST.sha256").exists()       # killed after the copies, before the rename
    assert dep.listed() == []
    (dep.dir / f".partial-{id_of(T0 - DAY)}-999999").mkdir()       # another run's, long dead
    (dep.dir / f".partial-{id_of(T0 - DAY)}-999999" / "junk").write_bytes(b"half")
    (dep.dir / ".partial-notes").mkdir()                             # not a name we make
    outcome = dep.job(T0 + 60)
    assert outcome.status == "ok" and "removed 2 partial folders" in outcome.detail, outcome
    assert sorted(p.name for p in dep.dir.iterdir()) == [".partial-notes", id_of(T0 + 60)]
    assert [b["id"] for b in dep.listed()] == [id_of(T0 + 60)]


def test_a_run_stopped_midway_removes_its_partial_folder(dep):
    from ishowd.jobs import Stopped
    cancel = Cancel()
    config = dep.config()

    def progress(text):
        if text.startswith("copied"):      # as the daemon stopping, or the timeout, would
            cancel.set()
    with pytest.raises(Stopped):
        catalog.jobs()["backup"](config).run(JobContext(config, timeout=60, cancel=cancel, now=T0,
                                                        progress=progress))
    assert list(dep.dir.iterdir()) == []
    assert dep.job(T0 + 1).status == "ok"


@pytest.fixture
def small_dir(tmp_path):
    where = tmp_path / "small"
    yield where
    if os.path.ismount(where):
        subprocess.run(["umount", str(where)], check=True)


def test_a_full_disk_fails_the_run_with_the_cause_and_leaves_nothing_half_written(tmp_path, clean_env, small_dir):
    mount_tmpfs(small_dir, "size=256k")
    fill(small_dir)
    dep = Deployment(tmp_path, dir=str(small_dir))
    outcome = dep.job(T0)
    assert outcome.status == "failed" and "No space left on device" in outcome.detail, outcome
    assert "nothing of it was kept" in outcome.detail
    assert sorted(p.name for p in small_dir.iterdir()) == ["filler"]
    assert dep.listed() == []


def test_a_read_only_backup_folder_fails_the_run_with_the_cause(tmp_path, clean_env, small_dir):
    mount_tmpfs(small_dir, "size=1m,ro")
    dep = Deployment(tmp_path, dir=str(small_dir))
    outcome = dep.job(T0)
    assert outcome.status == "failed" and "Read-only file system" in outcome.detail, outcome
    assert list(small_dir.iterdir()) == []


def test_a_large_file_is_hashed_and_copied_a_block_at_a_time(tmp_path, clean_env):
    """Peak memory of a process backing up a 192 MiB file stays far below the file's size."""
    dep = Deployment(tmp_path, files=["data/big.bin"])
    big = dep.root / "data" / "big.bin"
    big.parent.mkdir()
    with open(big, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(192):
            f.write(block)
    # VmHWM, the peak of this process image alone (ru_maxrss would carry pytest's over the exec)
    code = ("import sys\nfrom ishowd import catalog\nfrom ishowd.jobs import JobContext\n"
            "from ishowd.process import Cancel\nconfig = catalog.load_config(sys.argv[1])\n"
            "out = catalog.jobs()['backup'](config).run(JobContext(config, timeout=120, cancel=Cancel()))\n"
            "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
            "print(out.status, peak)\n")
    proc = run(sys.executable, "-c", code, str(dep.cfg), timeout=300)
    status, peak_kib = proc.stdout.split()
    assert status == "ok", proc.stdout + proc.stderr
    assert int(peak_kib) < 96 * 1024, f"peak RSS {peak_kib} KiB for a 192 MiB file"
    folder = dep.dir / dep.listed()[0]["id"]
    assert sha256sum_check(folder).returncode == 0


# --- verify ----------------------------------------------------------------------------------------

def test_verify_passes_a_whole_backup_and_names_what_is_changed_missing_or_extra(dep):
    assert dep.job(T0).status == "ok"
    backup = id_of(T0)
    good = dep.ctl("verify", backup)
    assert good.returncode == 0 and "4 files" in good.stdout, good.stdout + good.stderr
    folder = dep.dir / backup
    (folder / "config/ishowtts.toml").write_bytes(b"[f5]\nnfe_steps = 32\n")
    (folder / "crates/tts-engine/src/lib.rs").unlink()
    (folder / "third_party/notes.txt").write_text("dropped in by hand\n")
    bad = dep.ctl("verify", backup)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = bad.stdout.splitlines()
    assert any(line.startswith("changed: config/ishowtts.toml") for line in lines), lines
    assert "missing: crates/tts-engine/src/lib.rs" in lines, lines
    assert any(line.startswith("extra: third_party/notes.txt") for line in lines), lines
    assert len(lines) == 3, lines
    # sha256sum sees the same backup as broken
    assert sha256sum_check(folder).returncode != 0


def test_an_unknown_id_is_a_usage_error_naming_the_folder(dep):
    assert dep.job(T0).status == "ok"
    for command in (["verify"], ["restore"], ["restore", "--dry-run"]):
        for backup in ("20990101-000000", "../../etc", "latest"):
            proc = dep.ctl(*command, backup)
            assert proc.returncode == 2, (command, backup, proc.stderr)
            assert f"no backup {backup} in {dep.dir}; `ishowctl backups list` shows them" in proc.stderr
            assert "Traceback" not in proc.stderr


def test_a_bad_backup_setting_is_a_config_error(tmp_path, clean_env):
    for keys, named in (({"files": ["../etc/shadow"]}, "[jobs.backup] files"),
                        ({"files": ["/etc/shadow"]}, "[jobs.backup] files"),
                        ({"files": ["config/a.toml", "config/a.toml"]}, "[jobs.backup] files"),
                        ({"dir": "backups"}, "[jobs.backup] dir"),
                        ({"keep_newest": 0}, "[jobs.backup] keep_newest")):
        dep_dir = tmp_path / str(len(list(tmp_path.iterdir())))
        dep_dir.mkdir()
        dep = Deployment(dep_dir, **keys)
        proc = dep.ctl("list")
        assert proc.returncode == 78 and named in proc.stderr, (keys, proc.stderr)


# --- restore ---------------------------------------------------------------------------------------

def test_a_dry_run_shows_each_change_and_changes_nothing(dep):
    assert dep.job(T0).status == "ok"
    (dep.root / "config/ishowtts.toml").write_bytes(b"[f5]\nnfe_steps = 32\n")
    (dep.root / "crates/tts-engine/src/lib.rs").unlink()
    before = snapshot(dep.tmp)
    proc = dep.ctl("restore", id_of(T0), "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    config_len = len(FILES["config/ishowtts.toml"][0])
    assert f"would replace  config/ishowtts.toml ({len(b'[f5]' + bytes(16))} B" in out, out
    assert f"-> {config_len} B" in out, out
    assert "would create   crates/tts-engine/src/lib.rs" in out, out
    assert "unchanged      third_party/F5-TTS/src/f5_tts/api.py" in out, out
    assert "nothing changed" in out
    assert snapshot(dep.tmp) == before


def test_a_restore_backs_up_what_it_replaces_then_puts_back_identical_files_and_can_be_undone(dep):
    originals = dep.originals()
    assert dep.job(T0).status == "ok"
    config, api = dep.root / "config/ishowtts.toml", dep.root / "third_party/F5-TTS/src/f5_tts/api.py"
    config.write_bytes(b"[f5]\nnfe_steps = 32\n")
    config.chmod(0o666)
    api.write_bytes(b"# rewritten\n")
    shutil.rmtree(dep.root / "crates")               # created again, folders and all
    edited = {rel: snapshot(dep.root)[rel] for rel in ("config/ishowtts.toml",
                                                          "third_party/F5-TTS/src/f5_tts/api.py")}
    proc = dep.ctl("restore", id_of(T0))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = [b["id"] for b in dep.listed()]
    assert len(ids) == 2 and ids[1] == id_of(T0)
    undo = ids[0]
    assert f"`ishowctl backups restore {undo}` undoes this restore" in proc.stdout, proc.stdout
    assert "restored 3 files" in proc.stdout
    assert dep.originals() == originals                     # bytes, modes and mtimes to the nanosecond
    leftovers = [p for p in dep.root.rglob(".*restore-*")]
    assert leftovers == []
    # the undo backup holds the two replaced files as they were, and sha256sum agrees
    folder = dep.dir / undo
    assert sha256sum_check(folder).returncode == 0
    assert sorted(sha256sum_check(folder).stdout.splitlines()) == [
        "config/ishowtts.toml: OK", "third_party/F5-TTS/src/f5_tts/api.py: OK"]
    back = dep.ctl("restore", undo)
    assert back.returncode == 0, back.stdout + back.stderr
    assert {rel: snapshot(dep.root)[rel] for rel in edited} == edited


def test_a_restore_by_root_keeps_each_files_owner_and_hands_its_backup_to_the_folders_owner(dep):
    """``sudo ishowctl backups restore``: the service's user must still read its files, and the
    daemon's user must still read and prune the backup the restore made first."""
    if os.geteuid() != 0:
        pytest.skip("changing owners needs root")
    dep.dir.mkdir()
    os.chown(dep.dir, 4321, 4321)                       # the daemon's user owns the backups
    config = dep.root / "config/ishowtts.toml"
    os.chown(config, 1234, 1234)                        # the service's user owns its files
    os.chown(dep.root / "crates/tts-engine/src", 2345, 2345)
    assert dep.job(T0).status == "ok"
    config.write_text("edited\n")
    (dep.root / "crates/tts-engine/src/lib.rs").unlink()
    proc = dep.ctl("restore", id_of(T0))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (config.stat().st_uid, config.stat().st_gid) == (1234, 1234)
    created = (dep.root / "crates/tts-engine/src/lib.rs").stat()
    assert (created.st_uid, created.st_gid) == (2345, 2345)      # a new file: its folder's owner
    for backup in dep.dir.iterdir():
        for path in [backup, *backup.rglob("*")]:
            assert (path.lstat().st_uid, path.lstat().st_gid) == (4321, 4321), path


def test_a_restore_of_a_backup_that_fails_verification_is_refused_and_changes_nothing(dep):
    assert dep.job(T0).status == "ok"
    (dep.dir / id_of(T0) / "config/ishowtts.toml").write_bytes(b"tampered\n")
    (dep.root / "config/ishowtts.toml").write_bytes(b"current\n")
    before = snapshot(dep.tmp)
    proc = dep.ctl("restore", id_of(T0))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "fails verification" in proc.stderr and "changed: config/ishowtts.toml" in proc.stderr
    assert snapshot(dep.tmp) == before


def sha(data: bytes) -> str:
    import hashlib
    return hashlib.sha256(data).hexdigest()


EVIL = b"evil = true\n"


def add_line(folder: Path, line: bytes) -> None:
    with open(folder / "MANIFEST.sha256", "ab") as f:
        f.write(line)


def dotdot(dep, folder):
    (folder.parent / "outside").mkdir(exist_ok=True)              # where ../ reads from in the folder
    (folder.parent / "outside" / "victim.txt").write_bytes(EVIL)
    add_line(folder, f"{sha(EVIL)}  ../outside/victim.txt\n".encode())
    return dep.tmp / "outside" / "victim.txt"


def absolute(dep, folder):
    victim = dep.outside / "victim.txt"
    (folder / str(victim).lstrip("/")).parent.mkdir(parents=True)
    (folder / str(victim).lstrip("/")).write_bytes(EVIL)
    add_line(folder, f"{sha(EVIL)}  {victim}\n".encode())
    return victim


def symlink_out_of_the_root(dep, folder):
    """The backup is genuine; the deployment's config folder now leads outside the root."""
    victim_dir = dep.outside / "config"
    victim_dir.mkdir()
    (victim_dir / "ishowtts.toml").write_bytes(b"outside = true\n")
    shutil.rmtree(dep.root / "config")
    (dep.root / "config").symlink_to(victim_dir)
    return victim_dir / "ishowtts.toml"


def symlink_in_the_backup(dep, folder):
    """The backup's copy is a link to a file elsewhere on the machine, with that file's hash."""
    secret = dep.outside / "secret.key"
    secret.write_bytes(b"not for the deployment\n")
    copy = folder / "config/ishowtts.toml"
    copy.unlink()
    copy.symlink_to(secret)
    lines = (folder / "MANIFEST.sha256").read_text().splitlines()
    lines = [f"{sha(secret.read_bytes())}  config/ishowtts.toml" if line.endswith("config/ishowtts.toml")
             else line for line in lines]
    (folder / "MANIFEST.sha256").write_text("\n".join(lines) + "\n")
    return secret


def folder_symlink_in_the_backup(dep, folder):
    (dep.outside / "config").mkdir()
    (dep.outside / "config" / "ishowtts.toml").write_bytes(FILES["config/ishowtts.toml"][0])
    shutil.rmtree(folder / "config")
    (folder / "config").symlink_to(dep.outside / "config")
    return dep.outside / "config" / "ishowtts.toml"


def nul_in_a_name(dep, folder):
    add_line(folder, f"{sha(EVIL)}  config/ishowtts.toml\0../../outside/victim.txt\n".encode())
    return dep.outside / "victim.txt"


def newline_in_a_name(dep, folder):
    # sha256sum's own escape for a name with a newline in it
    add_line(folder, f"\\{sha(EVIL)}  config/ishowtts\\n.toml\n".encode())
    return dep.outside / "victim.txt"


def a_name_not_listed(dep, folder):
    (folder / "crates/tts-engine/src/evil.rs").write_bytes(EVIL)
    add_line(folder, f"{sha(EVIL)}  crates/tts-engine/src/evil.rs\n".encode())
    return dep.root / "crates/tts-engine/src/evil.rs"


@pytest.mark.parametrize("attack", [dotdot, absolute, symlink_out_of_the_root, symlink_in_the_backup,
                                    folder_symlink_in_the_backup, nul_in_a_name, newline_in_a_name,
                                    a_name_not_listed])
def test_a_malicious_backup_folder_is_refused_and_nothing_outside_is_touched(dep, attack):
    assert dep.job(T0).status == "ok"
    # a hand-made backup: a genuine one copied, then tampered with, and newer than it
    folder = dep.dir / id_of(T0 + DAY)
    shutil.copytree(dep.dir / id_of(T0), folder, symlinks=True)
    victim = attack(dep, folder)
    (dep.root / "third_party/F5-TTS/src/f5_tts/api.py").write_bytes(b"# edited since\n")
    before = snapshot(dep.tmp)
    victim_before = victim.read_bytes() if victim.exists() else None
    checks = [["restore", folder.name, "--dry-run"], ["restore", folder.name]]
    if attack is not symlink_out_of_the_root:     # there the backup is sound; the deployment is not
        checks.insert(0, ["verify", folder.name])
    for args in checks:
        proc = dep.ctl(*args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert (victim.read_bytes() if victim.exists() else None) == victim_before
        assert snapshot(dep.tmp) == before, args      # not one file restored, not one written anywhere
    assert "refused" in proc.stderr, proc.stderr
    # nor does the list count a byte from outside the folder
    sizes = {b["id"]: b["bytes"] for b in dep.listed()}
    dropped_in = len(EVIL) if attack is a_name_not_listed else 0
    assert sizes[folder.name] <= sizes[id_of(T0)] + dropped_in, sizes
