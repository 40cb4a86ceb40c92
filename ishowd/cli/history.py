"""``ishowctl history``: aggregated history of one metric from the store."""
from __future__ import annotations

import time

import click

from ..timefmt import iso, local_time
from ..units import finite, humanize
from .app import pass_app
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
        raise click.BadParameter(f"{text!r}: expected 'now', a duration such as 24h or 7d, "
                                 "or an ISO time such as 2026-11-20T00:00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # a naive time is the operator's local time
    return int(dt.astimezone(timezone.utc).timestamp())


def parse_labels(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise click.BadParameter(f"{p!r}: expected KEY=VALUE", param_hint="--label")
        out[k] = v
    return out


@click.command()
@click.argument("metric")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Only series with this label (repeatable).")
@click.option("--since", default="24h", show_default=True, help="Start: a duration ago, or an ISO time.")
@click.option("--until", default="now", show_default=True, help="End: 'now', a duration ago, or an ISO time.")
@click.option("--step", default="1h", show_default=True, help="Bucket size, aligned to UTC multiples of it.")
@output_options()
@pass_app
def history(app, metric, labels, since, until, step, as_json, as_csv) -> None:
    """Aggregated history of METRIC: mean, min, max and count per step and series.

    Buckets are aligned to the step in UTC and whole at both ends: the first
    starts at --since rounded down to the step, the last holds --until. Steps of whole hours are answered from
    hourly rollups (kept forever), whole minutes from per-minute rollups (90
    days by default), other steps from raw samples (14 days).
    """
    from ..config import parse_duration

    now = time.time()
    try:
        step_s = int(parse_duration(step))
    except ValueError:
        raise click.BadParameter(f"{step!r}: expected a duration such as 10s, 5m, 1h or 1d", param_hint="--step")
    if step_s < 1:
        raise click.BadParameter("must be at least 1s", param_hint="--step")
    start, end = parse_when(since, now), parse_when(until, now)
    if end <= start:
        raise click.BadParameter("--until must be after --since")
    registry = app.config.metrics
    spec = registry.get(metric)
    reader = app.reader()
    try:
        if spec is None and metric not in reader.metric_names():
            import difflib
            close = difflib.get_close_matches(metric, sorted(set(registry) | set(reader.metric_names())), 3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise click.UsageError(f"unknown metric {metric!r}{hint}")
        buckets = reader.history(metric, parse_labels(labels), start, end, step_s)
    finally:
        reader.close()
    unit = spec.unit if spec else "ratio"
    rows = [{"ts": iso(b.ts), "labels": b.labels, "mean": finite(b.mean), "min": finite(b.min),
             "max": finite(b.max), "count": b.count, "_epoch": b.ts} for b in buckets]
    human = lambda v, r: humanize(v, unit)  # noqa: E731
    emit(rows, [Column("ts", "time", lambda v, r: local_time(r["_epoch"])), Column("labels"),
                Column("mean", fmt=human), Column("min", fmt=human), Column("max", fmt=human), Column("count")],
         as_json=as_json, as_csv=as_csv, empty=f"no data for {metric} in that range")
