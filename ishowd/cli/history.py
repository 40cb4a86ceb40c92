"""``ishowctl history``: aggregated history of one metric from the store."""
from __future__ import annotations

import time

import click

from ..timefmt import iso, local_time
from ..units import column_format, resolved
from .app import pass_app
from .metrics import complete_metric
from .output import Column, emit, output_options


def parse_when(text: str, now: float) -> int:
    """'now', a duration ago ('24h', '7d') or an ISO 8601 time -> epoch seconds."""
    from datetime import datetime, timezone

    from ..config import parse_duration
    if text == "now":
        return int(now)
    try:
        return int(now - parse_duration(text))
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r}: expected 'now', a duration such as 24h or 7d, "
                         "or an ISO time such as 2026-11-20T00:00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # a naive time is the operator's local time
    return int(dt.astimezone(timezone.utc).timestamp())


class When(click.ParamType):
    """A moment on the command line ('now', '7d' ago, an ISO time) as epoch seconds; a bad one is
    a usage error that names its option."""
    name = "WHEN"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_when(value, time.time())
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


WHEN = When()


def parse_labels(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise click.BadParameter(f"{p!r}: expected KEY=VALUE", param_hint="--label")
        out[k] = v
    return out


def check_labels(metric: str, match: dict[str, str], series: list, declared: tuple) -> None:
    """A ``--label`` that no series of ``metric`` has is a usage error naming what exists."""
    if not match or any(all(s.labels.get(k) == v for k, v in match.items()) for s in series):
        return
    keys = sorted({k for s in series for k in s.labels} | set(declared))
    for k, v in match.items():
        if k not in keys:
            held = f"its label keys are {', '.join(keys)}" if keys else "it has no labels"
            raise click.BadParameter(f"{metric} has no label {k!r}: {held}", param_hint="--label")
        values = sorted({s.labels[k] for s in series if k in s.labels})
        if v not in values:
            held = f"{k} is one of {', '.join(values)}" if values else "no series of it is stored yet"
            raise click.BadParameter(f"no series of {metric} has {k}={v}: {held}", param_hint="--label")
    raise click.BadParameter(f"no series of {metric} has all of "
                             f"{', '.join(f'{k}={v}' for k, v in match.items())}; its series: "
                             + "; ".join(",".join(f"{k}={v}" for k, v in s.labels.items()) for s in series),
                             param_hint="--label")


def increases(buckets: list) -> dict[int, float]:
    """Per bucket (by its index in ``buckets``) how much a counter rose in it: from the highest
    reading of its series' bucket before (a counter's last) to its own highest; after a reset
    (the counter lower than before), from zero; in a series' first bucket, from its lowest."""
    prev: dict[str, float] = {}
    out = {}
    for i, b in enumerate(buckets):
        key = repr(sorted(b.labels.items()))
        before = prev.get(key)
        if before is None:
            out[i] = b.max - b.min
        else:
            out[i] = b.max - before if b.max >= before else b.max
        prev[key] = b.max
    return out


@click.command()
@click.argument("metric", shell_complete=complete_metric)
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Only series with this label (repeatable).")
@click.option("--since", default="24h", type=WHEN, show_default=True, help="Start: a duration ago, or an ISO time.")
@click.option("--until", default="now", type=WHEN, show_default=True,
              help="End: 'now', a duration ago, or an ISO time.")
@click.option("--step", default="1h", show_default=True, help="Bucket size, aligned to UTC multiples of it.")
@output_options
@pass_app
def history(app, metric, labels, since, until, step, output) -> None:
    """Aggregated history of METRIC: mean, min, max and count per step and series.

    Buckets are aligned to the step in UTC and whole at both ends: the first
    starts at --since rounded down to the step, the last holds --until. Steps of whole hours are answered from
    hourly rollups (kept forever), whole minutes from per-minute rollups (90
    days by default), other steps from raw samples (14 days). For a counter
    (a running total) each step also has its increase, which the table shows
    instead of the mean.
    """
    from ..config import parse_duration

    try:
        step_s = int(parse_duration(step))
    except ValueError:
        raise click.BadParameter(f"{step!r}: expected a duration such as 10s, 5m, 1h or 1d", param_hint="--step")
    if step_s < 1:
        raise click.BadParameter("must be at least 1s", param_hint="--step")
    start, end = since, until
    if end <= start:
        raise click.BadParameter("--until must be after --since")
    registry = app.config.metrics
    spec = registry.get(metric)
    match = parse_labels(labels)
    reader = app.reader()
    try:
        if spec is None and metric not in reader.metric_names():
            import difflib
            close = difflib.get_close_matches(metric, sorted(set(registry) | set(reader.metric_names())), 3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise click.UsageError(f"unknown metric {metric!r}{hint}")
        check_labels(metric, match, reader.series(metric), spec.labels if spec else ())
        first = reader.first_ts()
        if first is not None and start < first - first % step_s:
            # the default window of a young store reaches back past it too: said only when asked for
            if click.get_current_context().get_parameter_source("since").name == "COMMANDLINE":
                click.echo(f"ishowctl: --since {local_time(start)} is before the store's first sample "
                           f"({local_time(first)}): history starts there", err=True)
            start = first
        counter = spec is not None and spec.kind == "counter"
        aligned = start - start % step_s
        # a counter's first step rises from the step before it
        buckets = reader.history(metric, match, aligned - step_s if counter else aligned, end, step_s)
    finally:
        reader.close()
    unit = spec.unit if spec else "ratio"
    rise = increases(buckets) if counter else {}
    rows = []
    for i, b in enumerate(buckets):
        if b.ts < aligned:
            continue
        row = {"ts": iso(b.ts), "labels": b.labels, "mean": resolved(b.mean, unit, mean=True),
               "min": resolved(b.min, unit), "max": resolved(b.max, unit), "count": b.count, "_epoch": b.ts}
        if counter:
            row["increase"] = resolved(rise[i], unit)
        rows.append(row)
    columns = [Column("ts", "time", lambda v, r: local_time(r["_epoch"])), Column("labels")]
    for key in ("increase",) if counter else ("mean", "min", "max"):
        shown = column_format([r[key] for r in rows], unit)
        columns.append(Column(key, fmt=lambda v, r, shown=shown: shown(v)))
    columns.append(Column("count"))
    emit(rows, columns, output, empty=f"no data for {metric} in that range")
