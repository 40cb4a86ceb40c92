"""The ``backup`` job: a monthly copy of the files the RTF optimisation changed, verified, pruned.

The work is ``ishowd/backups.py``'s (``ishowctl backups`` restores from the same folders).
"""
from __future__ import annotations

import os

from ..config import Key, shown
from . import DAY, Job, JobContext, Outcome, job_keys, register

FILES = [
    "third_party/F5-TTS/src/f5_tts/api.py",
    "third_party/F5-TTS/src/f5_tts/infer/utils_infer.py",
    "crates/tts-engine/src/lib.rs",
    "config/ishowtts.toml",
]


def _path_problem(rel: str):
    """Why ``rel`` cannot name a backed-up file (a clean path relative to the root), or None."""
    if not rel:
        return "an empty name"
    if rel.startswith("/"):
        return "an absolute path"
    if not rel.isprintable() or "\\" in rel:
        # sha256sum escapes a name with a backslash or newline in it: none of ours needs that
        return "a control character or backslash in the name"
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return "an empty, '.' or '..' part"
    if rel == "MANIFEST.sha256":
        return "the name of a backup's manifest"
    return None


def _files_problem(files):
    if not files:
        return "at least one file (paths relative to [deployment] root)"
    for index, rel in enumerate(files):
        problem = _path_problem(rel)
        if problem:
            return (f"paths relative to [deployment] root such as \"config/ishowtts.toml\"; "
                    f"{shown(rel)} is {problem}")
        if rel in files[:index]:
            return f"each file once; {shown(rel)} is listed twice"
    return None


def _dir_problem(value):
    if value and not value.startswith("/"):
        return 'an absolute path, or "" for <[deployment] root>/backups'
    return None


KEYS = job_keys("backup", "30 3 1 * *", "10m", {
    "dir": Key("path", "", "where backups go, one folder each; empty: <[deployment] root>/backups",
               check=_dir_problem),
    "files": Key("strlist", FILES, "the files backed up, relative to [deployment] root",
                 check=_files_problem),
    "keep": Key("duration", "90d", "backups older than this are removed (never the newest `keep_newest`)",
                min=DAY, max=3650 * DAY),
    "keep_newest": Key("int", 3, "the newest this many backups are kept whatever their age", min=1, max=1000),
})


@register
class Backup(Job):
    name = "backup"
    period = 31 * DAY
    touches = frozenset({"deployment-files"})

    def run(self, ctx: JobContext) -> Outcome:
        from ..backups import BackupDir, BackupError, Busy, Settings
        from ..units import humanize
        s = Settings.of(self.config)
        if not os.path.isdir(s.root):
            return Outcome("skipped", f"[deployment] root {s.root} is not a folder: nothing to back up",
                           {"root": s.root})
        backups = BackupDir(s)
        try:
            with backups.lock():
                made = backups.create(ctx.now, check=ctx.check, progress=ctx.progress)
                pruned = backups.prune(ctx.now)
        except Busy as exc:
            return Outcome("skipped", str(exc), {})
        except BackupError as exc:
            return Outcome("failed", str(exc), {"dir": s.dir})
        size = sum(n for _, n in made.files.values())
        result = {"id": made.id, "unchanged_since": made.unchanged_since, "files": len(made.files),
                  "bytes": size, "missing": made.missing, "refused": made.refused, "pruned": pruned,
                  "cleaned": made.cleaned, "dir": s.dir}
        if made.id:
            count = f"{len(made.files)} file" + ("" if len(made.files) == 1 else "s")
            said = f"{count}, {humanize(size, 'bytes')}, verified, as {made.id}"
        elif made.unchanged_since:
            said = f"unchanged since {made.unchanged_since}"
        else:
            said = "nothing backed up"
        if pruned:
            said += f"; removed {len(pruned)} older than {s.keep / DAY:g} days ({', '.join(pruned)})"
        if made.cleaned:
            said += f"; removed {len(made.cleaned)} partial folders of killed runs"
        # A listed file that is missing fails the run, but the others are still backed up: a
        # month without any backup because one file moved would be the worse outcome, and the
        # failure (named in the detail) is what brings an operator to look.
        trouble = [f"missing: {', '.join(made.missing)}"] if made.missing else []
        trouble += [f"not backed up: {'; '.join(made.refused)}"] if made.refused else []
        if trouble:
            return Outcome("failed", "; ".join(trouble) + f" (under {s.root}); " + said, result)
        return Outcome("ok", said, result)
