"""``GET /`` on the exporter's address: a page for people who do not live in a terminal.

As node_exporter's landing page: the name, the version, a link to ``/metrics``; then the status
at a glance (the GPU lock line, the alerts firing, the last hour's RTF against the targets, the
last job runs) and the whole of ``ishowctl status`` below it, built by the same code
(``cli/status.py``). Server-rendered HTML, no JavaScript, no external assets, a plain refresh.
Everything from the store is escaped: voice ids and texts come from the backend's log, which is
untrusted.
"""
from __future__ import annotations

import time
from html import escape

REFRESH = 10             # seconds between the page's own reloads
TARGETS = (0.30, 0.20, 0.15)

STYLE = """body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}
h1{font-size:1.5em;margin:0}.sub{color:#666;margin:.2em 0 1.2em}ul{padding-left:1.2em}
.bad{color:#b00020;font-weight:600}.ok{color:#1b6e20}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:13px}
table{border-collapse:collapse}td,th{padding:.15em .8em .15em 0;text-align:left;vertical-align:top}"""


def _li(text: str, bad: bool = False) -> str:
    return f'<li class="{"bad" if bad else "ok"}">{escape(text)}</li>'


def _rtf(rtf: dict) -> str:
    if not rtf.get("count"):
        return _li("RTF, last hour: no synthesis")
    mean, p95 = rtf.get("mean"), rtf.get("p95")
    met = [t for t in TARGETS if mean is not None and mean < t]
    against = (f"below {met[-1]:.2f}" if met else f"above the {TARGETS[0]:.2f} target")
    n = rtf["count"]
    return _li(f"RTF, last hour: {n} request{'s' if n != 1 else ''}, mean {mean:.3f} ({against}; targets "
               f"{' / '.join(f'{t:.2f}' for t in TARGETS)}), p95 {p95:.3f}", bad=not met)


def _jobs(reader) -> str:
    from .jobs.runner import Run
    from .timefmt import local_time
    runs = sorted((Run.from_row(r) for r in reader.job_last_runs()), key=lambda r: r.job)
    if not runs:
        return "<p>No job has run yet.</p>"
    rows = "".join(f"<tr><td>{escape(r.job)}</td><td class=\"{'ok' if r.status in ('ok', 'skipped') else 'bad'}\">"
                   f"{escape(r.status)}</td><td>{escape(local_time(r.started))}</td><td>{escape(r.detail)}</td></tr>"
                   for r in runs)
    return f"<table><tr><th>job</th><th>status</th><th>started</th><th>detail</th></tr>{rows}</table>"


def page(config, store_path: str, version: str) -> bytes:
    """The page, from the store as it is now."""
    from .cli.status import build, render
    from .store.reader import Reader

    reader = Reader(store_path)
    try:
        view = build(config, reader, time.time())
        text = render(view)
        jobs = _jobs(reader)
    finally:
        reader.close()
    data = view.data
    glance = [_li(line, bad="NOT" in line) for line in view.top if line.strip()]
    firing = data.get("alerts") or []
    glance.append(_li(f"{len(firing)} alert{'s' if len(firing) != 1 else ''} firing"
                      + (": " + ", ".join(a["rule"] for a in firing) if firing else ""), bad=bool(firing)))
    glance.append(_rtf(data.get("rtf") or {}))
    writing = data["daemon"]["writing"]
    return (f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{REFRESH}">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>ishowd on {escape(data['host'])}</title>
<style>{STYLE}</style></head><body>
<h1>ishowd on {escape(data['host'])}</h1>
<p class="sub">ishowd {escape(version)}, monitoring an iShowTTS deployment &middot; <a href="/metrics">/metrics</a>
&middot; <span class="{'ok' if writing else 'bad'}">{'writing' if writing else 'NOT WRITING'}</span>
&middot; refreshed every {REFRESH} s</p>
<h2>At a glance</h2><ul>{''.join(glance)}</ul>
<h2>Last job runs</h2>{jobs}
<h2>Status</h2><pre>{escape(text)}</pre>
</body></html>
""").encode("utf-8")
