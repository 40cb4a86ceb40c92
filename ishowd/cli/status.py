"""``ishowctl status``: the latest reading of every metric, grouped by source.

Other parts add to the view (the GPU lock line, the RTF summary, active
alerts): a provider gets the ``StatusView`` and fills in its JSON key and
its lines of text. ``providers()`` lists them, in the order they are shown.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Callable

import click

from ..metrics import labels_text
from ..settings import stale_window
from ..timefmt import iso, local_time
from ..units import ago, humanize, resolved
from .app import pass_app
from .output import output_options
from .status_view import StatusView

NOT_WRITING = 3   # as `systemctl status` exits for a unit that is not running


def providers() -> tuple[Callable[[StatusView], None], ...]:
    """What adds to the view, in order: the GPU lock, whether a backend is here, the last hour's
    RTF, the alerts."""
    from .alerts import status_alerts
    from .rtf import rtf_status
    from .status_hardware import gpu_lock
    return (gpu_lock, backend_presence, rtf_status, status_alerts)


def backend_presence(view: StatusView) -> None:
    """On a plain machine, one line saying no backend is configured or found (its metrics are
    absent there, and its rules quiet), rather than nothing at all."""
    if any(row.name.startswith("backend_") for row in view.latest):
        return
    cfg = view.config
    root, logs = cfg.deployment.root, list(cfg.rtf.logs)
    if os.path.isdir(root) or any(os.path.exists(p) for p in logs):
        return
    line = (f"no backend configured or found here: no [deployment] root ({root}), no backend log, "
            f"no answer at {cfg.backend.url}")
    view.data["backend"] = {"found": False, "detail": line}
    view.sections.append(("backend", [line]))


GROUP_ORDER = ["gpu", "thermal", "power", "fan", "host", "backend", "rtf", "daemon"]


def build(config, reader, now: float) -> StatusView:
    from ..paths import store_path

    registry = config.metrics
    last = reader.last_ts()
    latest = reader.current(stale_window(config))
    interval = config.sampling.interval
    age = reader.age(now, config.host.procfs_root)
    metrics = []
    for row in latest:
        m = registry.get(row.name)
        metrics.append({"name": row.name, "labels": row.labels,
                        "value": resolved(row.value, m.unit if m else "ratio"),
                        "unit": m.unit if m else None, "ts": iso(row.ts)})
    data = {
        "host": os.uname().nodename,  # what socket.gethostname() returns, without importing socket
        "generated": iso(int(now)),
        "daemon": {"store": store_path(config), "interval_seconds": interval, "last_sample": iso(last),
                   "age_seconds": None if age is None or age.seconds is None else round(age.seconds, 1),
                   "ahead_seconds": None if age is None or not age.ahead else round(age.ahead, 1),
                   "writing": age is not None and age.seconds is not None and age.seconds <= 3 * interval},
        "metrics": metrics,
        "alerts": [],
        "pending": [],
        "rtf": {"count": 0, "mean": None, "p95": None},
    }
    view = StatusView(config, reader, now, data, latest)
    for fn in providers():
        fn(view)
    return view


def _reading(row, metric) -> str:
    """A reading for people; a ``*_timestamp_seconds`` reading is a moment, shown as local time."""
    if row.name.endswith("_timestamp_seconds"):
        return local_time(row.value)
    return humanize(row.value, metric.unit if metric else "ratio")


FOLD = 3   # this many series of one metric reading the same show as one line


def _folded(rows: list) -> list:
    """Table rows of (name, labels, reading): the series of one metric that read the same are one
    line (``cpu_frequency_max_hz{cpu=×12}  2.20 GHz``: twelve cores at one clock), so a Jetson's
    status fits a screen; series that differ stay one line each, where the eye is wanted."""
    same: dict = {}
    for name, labels, reading in rows:
        same.setdefault((name, reading), []).append(labels)
    out, shown = [], set()
    for name, labels, reading in rows:
        many = same[(name, reading)]
        if len(many) < FOLD:
            out.append([name + labels_text(labels), reading])
        elif (name, reading) not in shown:
            shown.add((name, reading))
            keys = ",".join(f"{k}=×{len(many)}" for k in sorted(labels))
            out.append([f"{name}{{{keys}}}", reading])
    return out


def render(view: StatusView) -> str:
    from .output import table

    registry = view.config.metrics
    d = view.data["daemon"]
    out = []
    if d["last_sample"] is None:
        head = "no samples yet"
    else:
        state = "writing" if d["writing"] else "NOT WRITING (is `ishowd run` up?)"
        if d["age_seconds"] is None:  # stamped ahead of this clock and not of this boot: no age to tell
            head = (f"last sample stamped {d['ahead_seconds']:.0f}s in the future (the clock stepped back?), "
                    f"every {d['interval_seconds']:g}s: {state}")
        else:
            head = f"last sample {ago(d['age_seconds'])} ago, every {d['interval_seconds']:g}s: {state}"
    out.append(f"ishowd on {view.data['host']}: {head}")
    out.append(f"store {d['store']}")
    if view.top:
        out.append("")
        out += view.top
    groups: dict[str, list] = {}
    collectors = []
    for row in view.latest:
        m = registry.get(row.name)
        group = m.group if m else "other"
        if group == "daemon":
            collectors.append(row)
            continue
        groups.setdefault(group, []).append((row.name, row.labels, _reading(row, m)))
    groups = {g: _folded(rows) for g, rows in groups.items()}
    # a section of a provider named as a group ("rtf": the last hour's figures) goes under the
    # group's readings, one heading for both
    sections = dict(view.sections)
    for group in sorted(set(groups) | (set(sections) & set(GROUP_ORDER)),
                        key=lambda g: (GROUP_ORDER.index(g) if g in GROUP_ORDER else 99, g)):
        out.append("")
        out.append(group.upper())
        if group in groups:
            out.append(table(groups[group]))
        out += sections.pop(group, [])
    for title, lines in sections.items():
        out.append("")
        out.append(title.upper())
        out += lines
    if collectors:
        ok, took = {}, {}
        for row in collectors:
            name = row.labels.get("collector", "?")
            if row.name == "ishowd_collector_success":
                ok[name] = row.value
            else:
                took[name] = row.value
        parts = []
        for name in sorted(ok):
            state = "ok" if ok[name] else "FAILED"
            parts.append(f"{name} {state} ({humanize(took.get(name), 'seconds')})")
        out.append("")
        out.append("collectors: " + ", ".join(parts))
    return "\n".join(out)


def _view(app) -> StatusView:
    reader = app.reader()
    try:
        return build(app.config, reader, time.time())
    finally:
        reader.close()


def _watch(app, every: float) -> None:
    """Redraw in place, as `watch` would: home the cursor, overwrite each line, clear what is left
    (no full-screen clear between frames, so nothing flickers). Ctrl-C ends it."""
    out = click.get_text_stream("stdout")
    out.write("\x1b[2J")
    try:
        while True:
            text = render(_view(app))
            stamp = time.strftime("%H:%M:%S")
            out.write("\x1b[H" + f"every {every:g}s, {stamp} (Ctrl-C ends)\x1b[K\n"
                      + "\n".join(line + "\x1b[K" for line in text.splitlines()) + "\n\x1b[J")
            out.flush()
            time.sleep(every)
    except KeyboardInterrupt:
        out.write("\n")


@click.command()
@click.option("--watch", "watch", type=click.FloatRange(min=0.5), default=None, metavar="SECONDS", is_flag=False,
              flag_value=2.0, help="Refresh in place every SECONDS (2 when given alone) until Ctrl-C.")
@output_options
@pass_app
def status(app, watch, output) -> None:
    """Current readings, GPU lock, recent RTF, active alerts, daemon health.

    Exits 3 when the daemon is not writing (no sample for three sampling
    intervals, or none at all), as `systemctl status` does for a stopped
    unit, after printing what the store holds. --csv: the readings alone
    (name, labels.<key>..., value, unit, ts). --watch: refreshed in place.
    """
    from .output import Column, emit, print_json

    if watch is not None:
        if output.format != "table":
            raise click.UsageError("--watch redraws the table; --json and --csv print once")
        _watch(app, watch)
        return
    view = _view(app)
    if output.json:
        print_json(view.data)
    elif output.csv:
        emit(view.data["metrics"], [Column(k) for k in ("name", "labels", "value", "unit", "ts")], output)
    else:
        click.echo(render(view))
    if not view.data["daemon"]["writing"]:
        sys.exit(NOT_WRITING)
