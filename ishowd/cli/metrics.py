"""``ishowctl metrics [PATTERN]``: every metric this ishowd knows, with its unit, help, labels and
latest reading on this host (the registry, and the store's current rows)."""
from __future__ import annotations

import fnmatch

import click

from ..metrics import labels_text
from ..units import humanize, resolved
from .app import pass_app
from .output import Column, emit, output_options


def complete_metric(ctx, param, incomplete: str) -> list:
    """Shell completion of a metric name (``_ISHOWCTL_COMPLETE``): every declared metric."""
    from .. import catalog
    return sorted(n for n in catalog.registry() if n.startswith(incomplete))


@click.command()
@click.argument("pattern", required=False, default="*", shell_complete=complete_metric)
@click.option("--all", "show_all", is_flag=True, help="Also the metrics with no reading on this host.")
@output_options
@pass_app
def metrics(app, pattern, show_all, output) -> None:
    """Every metric with a reading on this host (PATTERN: a shell-style glob such as 'gpu_*'):
    kind, unit, labels, latest value, help. A metric with no reading here (a GPU metric on a plain
    machine) is absent, never zero: --all lists those too."""
    from ..settings import stale_window
    from ..store.errors import NoStore

    registry = app.config.metrics
    names = sorted(n for n in registry if fnmatch.fnmatchcase(n, pattern))
    if not names:
        raise click.BadParameter(f"no metric matches {pattern!r} (`ishowctl metrics` lists them)",
                                 param_hint="PATTERN")
    latest: dict = {}
    try:
        reader = app.reader()
    except NoStore:
        reader = None
    if reader is not None:
        try:
            for row in reader.current(stale_window(app.config)):
                latest.setdefault(row.name, []).append(row)
        finally:
            reader.close()
    rows = []
    for name in names:
        m = registry[name]
        base = {"name": name, "kind": m.kind, "unit": m.unit, "label_keys": list(m.labels), "help": m.help}
        series = sorted(latest.get(name, ()), key=lambda r: labels_text(r.labels))
        if not series:
            if show_all:
                rows.append(dict(base, labels={}, value=None, _series=name, _value="(no reading here)"))
            continue
        for row in series:
            rows.append(dict(base, labels=row.labels, value=resolved(row.value, m.unit),
                             _series=name + labels_text(row.labels), _value=humanize(row.value, m.unit)))
    emit(rows, [Column("_series", "series"), Column("kind"), Column("_value", "latest"), Column("help")], output,
         empty="no metric has a reading on this host yet (is `ishowd run` up? --all lists every metric)")
