"""``ishowctl backups list|verify|restore``: the ``backup`` job's folders (``ishowd/backups.py``)."""
from __future__ import annotations

import sys

import click

from ..timefmt import iso, local_time
from .app import pass_app
from .output import Column, emit, output_options


def _open(app):
    from ..backups import BackupDir, Settings
    return BackupDir(Settings.of(app.config))


def _fail(exc) -> None:
    """One line on stderr and the error's exit code (2: no such backup, 1: refused or failed)."""
    click.echo(f"ishowctl: {exc}", err=True)
    sys.exit(exc.exit_code)


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _size(n) -> str:
    from ..units import humanize
    return "-" if n is None else humanize(n, "bytes")


@click.group()
def backups() -> None:
    """The backups of the optimisation files: list, verify, restore.

    The `backup` job makes one each month (README "Backups"); each is a folder
    in [jobs.backup] dir with MANIFEST.sha256, which `sha256sum -c` also checks.
    """


@backups.command("list")
@output_options
@pass_app
def list_backups(app, output) -> None:
    """Every backup, newest first: id, when it was made, files and bytes."""
    from ..backups import BackupError
    backup_dir = _open(app)
    try:
        found = backup_dir.list()
    except BackupError as exc:
        _fail(exc)
    rows = [{"id": b.id, "created": iso(b.created), "files": b.files, "bytes": b.bytes, "_epoch": b.created}
            for b in found]
    emit(rows, [Column("id"), Column("created", fmt=lambda v, r: local_time(r["_epoch"])), Column("files"),
                Column("bytes", "size", fmt=lambda v, r: _size(v))],
         output, empty=f"no backups in {backup_dir.s.dir}")


@backups.command()
@click.argument("backup_id", metavar="ID")
@pass_app
def verify(app, backup_id) -> None:
    """Check every file of backup ID against its manifest (exit 1 if anything is missing, changed or extra)."""
    from ..backups import BackupError
    try:
        proof = _open(app).verify(backup_id)
    except BackupError as exc:
        _fail(exc)
    for problem in proof.problems:
        click.echo(str(problem))
    if proof.problems:
        click.echo(f"backup {backup_id}: {_count(len(proof.problems), 'problem')}; do not restore it", err=True)
        sys.exit(1)
    click.echo(f"backup {backup_id}: {_count(len(proof.entries), 'file')}, {_size(proof.bytes)}, "
               "match the manifest")


def _show(change, dry_run: bool) -> str:
    verb = change.action if change.action == "unchanged" or not dry_run else "would " + change.action
    new = f"{_size(change.new_size)}, sha256 {change.new_sha[:12]}"
    if change.action == "unchanged":
        return f"  {verb:<13}  {change.path}"
    if change.action == "create":
        return f"  {verb:<13}  {change.path} ({new})"
    old = f"{_size(change.old_size)}, sha256 {change.old_sha[:12]}"
    return f"  {verb:<13}  {change.path} ({old} -> {new})"


@backups.command()
@click.argument("backup_id", metavar="ID")
@click.option("--dry-run", is_flag=True, help="Show what would change, change nothing.")
@pass_app
def restore(app, backup_id, dry_run) -> None:
    """Put the files of backup ID back under [deployment] root.

    A backup that fails verification is refused. What the restore replaces is
    first backed up itself, so `ishowctl backups restore <that id>` undoes it.
    Each file is written atomically, with its mode and mtime from the backup.
    """
    import time
    from contextlib import nullcontext

    from ..backups import BackupError, Refused
    backup_dir = _open(app)
    try:
        backup_dir.folder(backup_id)     # a mistyped id is told so before anything is created or locked
        # a dry run writes nothing, so it need not wait for the job; a restore holds the folder
        # from the plan to the last file, so what it shows is what it does
        with nullcontext() if dry_run else backup_dir.lock():
            try:
                plan = backup_dir.plan(backup_id)
            except Refused as exc:
                for problem in exc.problems:
                    click.echo(str(problem), err=True)
                raise
            click.echo(f"{'restoring would change' if dry_run else 'restoring'} backup {backup_id} "
                       f"into {backup_dir.s.root}:")
            for change in plan.changes:
                click.echo(_show(change, dry_run))
            if dry_run:
                click.echo("dry run: nothing changed")
                return
            undo, written = backup_dir.restore(plan, time.time())
    except BackupError as exc:
        _fail(exc)
    if undo:
        click.echo(f"the files it replaced were backed up first as {undo}: "
                   f"`ishowctl backups restore {undo}` undoes this restore")
    click.echo(f"restored {_count(len(written), 'file')} from {backup_id}" if written
               else f"nothing to restore: the files already equal {backup_id}")
