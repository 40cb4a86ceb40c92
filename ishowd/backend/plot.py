"""The RTF picture: every request, the weekly means, the targets. Imports matplotlib (the plot extra).

Only ``ishowctl rtf plot`` imports this module.
"""
from __future__ import annotations

from datetime import datetime, timezone

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from .report import WEEK, iso_week, quantile  # noqa: E402

TARGETS = ((0.30, "target 0.30 (met)", "#d62728"), (0.20, "next 0.20", "#ff7f0e"), (0.15, "stretch 0.15", "#2ca02c"))


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def draw(rows: list[dict], weeks: list, output: str, *, baseline: float, threshold: float, now: float,
         title: str) -> None:
    fig, ax = plt.subplots(figsize=(12, 6), dpi=110, layout="constrained")
    vals = sorted(r["rtf"] for r in rows if r["rtf"] is not None)
    # Keep the interesting band readable: compile outliers (RTF of several) are drawn on the top edge.
    top = max(0.45, 1.5 * baseline * 1.1, (quantile(vals, 0.99) or 0) * 1.15)
    top = min(top, max(vals) * 1.05 if vals else top)
    top = max(top, 0.4)

    # Regressed weeks get a pale band behind everything.
    for w in weeks:
        if w.regression:
            ax.axvspan(_dt(w.start), _dt(min(w.start + WEEK, now)), color="#d62728", alpha=0.07, lw=0)

    groups = [("api", False, "#1f77b4", "o", "API requests"),
              ("chat", False, "#9467bd", "o", "live chat (NFE 16, not judged)"),
              ("benchmark", False, "#8c564b", "s", "benchmark requests (the job's own, not judged)"),
              (None, True, "#d62728", "x", "first after a backend start (compilation)")]
    clipped = 0
    for source, first, color, marker, label in groups:
        pts = [r for r in rows if r["rtf"] is not None and r["first_after_start"] == first
               and (source is None or r["source"] == source)]
        if not pts:
            continue
        xs = [_dt(r["ts"]) for r in pts]
        ys = [min(r["rtf"], top * 0.985) for r in pts]
        clipped += sum(1 for r in pts if r["rtf"] > top)
        ax.scatter(xs, ys, s=9 if not first else 36, c=color, marker=marker, alpha=0.45 if not first else 0.9,
                   linewidths=1.2 if marker == "x" else 0, label=label, zorder=3)

    # Each benchmark run's mean: a fixed text at a fixed NFE, the cleanest regression signal.
    runs = [run for w in weeks for run in w.benchmark]
    if runs:
        ax.scatter([_dt(t) for t, _ in runs], [min(m, top * 0.985) for _, m in runs], s=70, c="#8c564b",
                   marker="D", edgecolors="black", linewidths=0.8, label="benchmark run (mean RTF)", zorder=6)

    # Weekly means of the judged API requests: one step per ISO week.
    first_mean = True
    for w in weeks:
        st = w.stats()
        if st["mean"] is None:
            continue
        end = min(w.start + WEEK, now)
        ax.hlines(min(st["mean"], top * 0.985), _dt(w.start), _dt(end), colors="black", linewidth=2.4, zorder=4,
                  label="weekly mean (API)" if first_mean else None)
        first_mean = False
        verdict = {True: "REGRESSED", False: "", None: "not judged"}[w.regression]
        if w.regression and "likely cause: " in (w.reason or ""):
            verdict += ": " + w.reason.split("likely cause: ", 1)[1].split(" during ")[0]
        label = f"{iso_week(w.start).split('-')[1]} {st['mean']:.3f}" + ("" if w.complete else " so far")
        # labels start at their week's Monday; a short partial week's ends at the right edge instead
        short = end - w.start < 3 * 86400
        ax.annotate(label + (f"\n{verdict}" if verdict else ""),
                    (_dt(end if short else w.start), min(st["mean"], top * 0.985)), textcoords="offset points",
                    xytext=(-3, 6) if short else (3, -8), ha="right" if short else "left",
                    va="bottom" if short else "top", fontsize=7.5,
                    color="#d62728" if w.regression else "black", zorder=5,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})

    for y, _label, color in TARGETS:
        ax.axhline(y, color=color, linestyle="--", linewidth=1.2, zorder=2)
    limit = baseline * (1 + threshold)
    ax.axhline(limit, color="#7f7f7f", linestyle=":", linewidth=1.2, zorder=2)
    ax.set_ylim(0, top)
    # The targets and the regression limit are named on a second axis at the right.
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    marks = sorted([(y, label, color) for y, label, color in TARGETS]
                   + [(limit, f"regression: mean > {limit:.2f}", "#7f7f7f")])
    right.set_yticks([m[0] for m in marks])
    right.set_yticklabels([m[1] for m in marks], fontsize=8)
    for tick, m in zip(right.get_yticklabels(), marks):
        tick.set_color(m[2])
    right.tick_params(axis="y", length=0)

    ax.set_xlim(_dt(weeks[0].start), _dt(now))
    ax.xaxis.set_major_locator(mdates.WeekdayLocator(byweekday=mdates.MO))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    ax.set_ylabel("RTF (wall time / audio time, lower is faster)")
    ax.set_xlabel("time (UTC; grid lines on Mondays)")
    ax.grid(True, axis="both", color="#e0e0e0", linewidth=0.6, zorder=0)
    n_api = sum(1 for r in rows if r["source"] == "api")
    n_bench = sum(1 for r in rows if r["source"] == "benchmark")
    sub = f"{len(rows) - n_bench} requests ({n_api} API)" + (f", {n_bench} of the benchmark" if n_bench else "")
    if clipped:
        sub += f"; {clipped} above {top:.2f} drawn on the top edge"
    ax.set_title(f"{title}\n{sub}", fontsize=11)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, fontsize=8, frameon=False, markerscale=1.5)
    fig.savefig(output)
    plt.close(fig)
