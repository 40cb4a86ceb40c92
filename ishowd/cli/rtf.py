"""``ishowctl rtf``: per-request RTF records, the weekly regression report, the plot.

``list`` and ``weekly`` read the store with stdlib sqlite3 only; ``plot``
imports matplotlib (the ``plot`` extra), and nothing else does.
"""
from __future__ import annotations

import sys
import time

import click

from ..timefmt import iso, local_time
from ..units import resolved
from .app import pass_app
from .history import WHEN
from .output import Column, emit, output_options, table


def _open(app):
    reader = app.reader()
    return reader


def _fail_no_records(exc) -> None:
    click.echo(f"ishowctl: {exc}", err=True)
    sys.exit(1)


@click.group()
def rtf() -> None:
    """Per-request real-time factor (RTF) from the backend log: list, weekly report, plot."""


def terminal_page() -> int:
    """How many rows a table may print and stay on one screen: the terminal's height less the
    header and the note (24 lines where there is no terminal, as ``$LINES`` may also say)."""
    import shutil
    return max(10, shutil.get_terminal_size().lines - 4)


@rtf.command("list")
@click.option("--since", default="7d", type=WHEN, show_default=True, help="Start: a duration ago, or an ISO time.")
@click.option("--until", default="now", type=WHEN, show_default=True,
              help="End: 'now', a duration ago, or an ISO time.")
@click.option("--source", type=click.Choice(["api", "chat", "benchmark"]),
              help="Only /api/tts requests, only live chat, or only the benchmark job's own requests.")
@click.option("--limit", type=click.IntRange(min=0), metavar="N",
              help="The newest N records (0: all). Default: a table fills the terminal; JSON and CSV give all.")
@output_options
@pass_app
def rtf_list(app, since, until, source, limit, output) -> None:
    """Every synthesis parsed from the backend log, oldest first (newest last).

    RTF is wall time over audio time (lower is faster). The first request
    after a backend start includes model compilation and is marked. A table
    shows the newest records a terminal holds and says how many it left out.
    """
    from ..backend.report import NoRecords, records

    start, end = since, until
    if end <= start:
        raise click.BadParameter("--until must be after --since")
    reader = _open(app)
    try:
        rows = records(reader, start, end + 1, source)
    except NoRecords as exc:
        _fail_no_records(exc)
    finally:
        reader.close()
    if limit is None and output.format == "table":
        limit = terminal_page()
    left_out = max(0, len(rows) - limit) if limit else 0
    rows = rows[left_out:]
    out = [{"ts": iso(r["ts"]), "rtf": resolved(r["rtf"], "ratio"), "elapsed_ms": r["elapsed_ms"],
            "audio_seconds": resolved(r["audio_seconds"], "seconds"), "engine": r["engine"], "voice": r["voice"],
            "source": r["source"], "first_after_start": r["first_after_start"], "_epoch": r["ts"]} for r in rows]
    num = lambda d: lambda v, r: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    emit(out, [Column("ts", "time", lambda v, r: local_time(r["_epoch"])), Column("rtf", "RTF", num(3)),
               Column("elapsed_ms", "elapsed ms"), Column("audio_seconds", "audio s", num(2)), Column("engine"),
               Column("voice"), Column("source"),
               Column("first_after_start", "note", lambda v, r: "first after start" if v else "")],
         output, empty="no RTF records in that range")
    if left_out:
        click.echo(f"({left_out} older record{'s' if left_out != 1 else ''} in the range left out: "
                   "--limit 0 shows all, --since narrows the range)", err=True)


def _weekly(app, weeks, baseline, threshold, now):
    from ..backend.report import NoRecords, weekly
    cfg = app.config.rtf
    baseline = cfg.baseline if baseline is None else baseline
    threshold = cfg.threshold if threshold is None else threshold
    reader = _open(app)
    try:
        return weekly(reader, weeks=weeks, now=now, baseline=baseline, threshold=threshold,
                      min_requests=cfg.min_requests, hot_celsius=cfg.hot_celsius), baseline, threshold
    except NoRecords as exc:
        _fail_no_records(exc)
    finally:
        reader.close()


@rtf.command("weekly")
@click.option("--weeks", default=8, show_default=True, type=click.IntRange(1, 520), help="How many ISO weeks, "
              "the current one included.")
@click.option("--baseline", type=click.FloatRange(min=0.001), help="Baseline RTF (default: [rtf] baseline, 0.30).")
@click.option("--threshold", type=click.FloatRange(min=0), help="Allowed rise of the mean over the baseline "
              "(default: [rtf] threshold, 0.20).")
@click.option("--check", is_flag=True, help="Exit 1 when the latest complete week regressed.")
@output_options
@pass_app
def rtf_weekly(app, weeks, baseline, threshold, check, output) -> None:
    """The weekly regression report: count, mean, p50, p95, max of API RTF per ISO week (UTC).

    A week regresses when its mean API RTF exceeds baseline x (1 + threshold)
    or its p95 exceeds 1.5 x baseline. Only /api/tts requests are judged
    (live chat always runs at NFE 16); the first request after each backend
    start (model compilation) is left out of the statistics and counted
    apart, so it never makes a week regress by itself. Weeks with fewer than
    [rtf] min_requests requests are shown but not judged.
    """
    now = time.time()
    result, baseline, threshold = _weekly(app, weeks, baseline, threshold, now)
    complete = [w for w in result if w.complete]
    latest = complete[-1] if complete else None
    if output.format == "table":
        click.echo(render_weekly(result, baseline, threshold, output.headers))
    else:
        rows = [week_json(w) for w in result]
        emit(rows, [Column(k) for k in rows[0]] if rows else [], output)
    if check:
        if latest is None:
            click.echo("rtf weekly --check: no complete week in range", err=True)
        elif latest.regression:
            click.echo(f"rtf weekly --check: {_week_name(latest)} regressed: {latest.reason}", err=True)
            sys.exit(1)
        elif latest.regression is None:
            click.echo(f"rtf weekly --check: {_week_name(latest)} not judged: {latest.reason}", err=True)


def week_json(w) -> dict:
    """A week's ``as_json`` with its statistics rounded to what an RTF resolves."""
    d = w.as_json()
    for key in ("mean", "p50", "p95"):
        d[key] = resolved(d.get(key), "ratio", mean=True)
    d["max"] = resolved(d.get("max"), "ratio")
    for part in ("chat", "benchmark"):
        d[part]["mean"] = resolved(d[part]["mean"], "ratio", mean=True)
    return d


def _week_name(w) -> str:
    from ..backend.report import iso_week
    return iso_week(w.start)


def render_weekly(result, baseline: float, threshold: float, headers: bool = True) -> str:
    from ..backend.report import iso_week

    def f(v):
        return "-" if v is None else f"{v:.3f}"

    rows = []
    for w in result:
        st = w.stats()
        verdict = {True: "REGRESSED", False: "ok", None: "not judged"}[w.regression]
        if not w.complete:
            verdict += " (so far)"
        rows.append([iso_week(w.start), local_time(w.start)[:10], st["count"], f(st["mean"]), f(st["p50"]),
                     f(st["p95"]), f(st["max"]), w.first_after_start or "", w.chat_count or "",
                     f(w.benchmark_mean()), verdict])
    out = [table(rows, ["week", "starts", "api", "mean", "p50", "p95", "max", "first", "chat", "bench", "verdict"]
                 if headers else None)]
    if not headers:   # the rows alone, for a script
        return out[0]
    notes = [f"{iso_week(w.start)}: {w.reason}" for w in result if w.reason and w.count]
    out.append("")
    out.append(f"regression: mean > {baseline * (1 + threshold):.3f} (baseline {baseline:g} x (1 + {threshold:g})) "
               f"or p95 > {1.5 * baseline:.3f}; API requests only, first request after each start left out "
               "(column 'first'). 'bench': the mean RTF of that week's benchmark runs (a fixed text at a fixed "
               "NFE), never judged with the production requests.")
    out += notes
    return "\n".join(out)


@rtf.command("plot")
@click.option("--weeks", default=8, show_default=True, type=click.IntRange(1, 520), help="How many ISO weeks.")
@click.option("--output", "-o", default="rtf.png", show_default=True, type=click.Path(dir_okay=False),
              help="The PNG to write.")
@pass_app
def rtf_plot(app, weeks, output) -> None:
    """A PNG of every request's RTF over time, the weekly means and the 0.30 / 0.20 / 0.15 targets."""
    import os

    from ..backend.report import NoRecords, WEEK, records, week_start

    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise click.BadParameter(f"{output}: no folder {folder}; create it or write elsewhere", param_hint="--output")
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"{output}: cannot write into {folder}", param_hint="--output")
    now = time.time()
    result, baseline, threshold = _weekly(app, weeks, None, None, now)
    since = week_start(now) - (weeks - 1) * WEEK
    reader = _open(app)
    try:
        rows = records(reader, since, now + 1)
    except NoRecords as exc:
        _fail_no_records(exc)
    finally:
        reader.close()
    if not rows:
        click.echo(f"ishowctl: no RTF records in the last {weeks} weeks: nothing to plot", err=True)
        sys.exit(1)
    try:
        from ..backend.plot import draw
    except ImportError as exc:
        click.echo(f"ishowctl: the plot needs matplotlib (pip install 'ishowd[plot]'): {exc}", err=True)
        sys.exit(1)
    import socket
    try:
        draw(rows, result, output, baseline=baseline, threshold=threshold, now=now,
             title=f"iShowTTS real-time factor on {socket.gethostname()}, last {weeks} weeks")
    except OSError as exc:
        click.echo(f"ishowctl: cannot write {output}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    click.echo(output)


def rtf_status(view) -> None:
    """The last hour's RTF in ``status``."""
    from ..backend.report import NoRecords, summary
    try:
        s = summary(view.reader, view.now - 3600, view.now + 1)
    except NoRecords:
        return
    for part in (s, s["api"], s["chat"], s["benchmark"]):
        for key in ("mean", "p95"):
            part[key] = resolved(part[key], "ratio", mean=True)
    view.data["rtf"] = {"count": s["count"], "mean": s["mean"], "p95": s["p95"],
                        "api": s["api"], "chat": s["chat"], "benchmark": s["benchmark"]}
    bench = s["benchmark"]["count"]
    aside = f" ({bench} benchmark request{'s' if bench != 1 else ''} not counted)" if bench else ""
    if s["count"] == 0:
        view.sections.append(("rtf", ["last hour: no synthesis" + aside]))
        return
    parts = []
    for src in ("api", "chat"):
        x = s[src]
        if x["count"]:
            parts.append(f"{src} {x['count']}: mean {x['mean']:.3f}, p95 {x['p95']:.3f}")
    view.sections.append(("rtf", [f"last hour: {s['count']} requests, mean {s['mean']:.3f}, p95 {s['p95']:.3f} "
                                  f"({'; '.join(parts)}){aside}"]))
