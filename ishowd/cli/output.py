"""The one place output formats live: a table for people, ``--json`` and ``--csv`` for scripts."""
from __future__ import annotations

import json
import sys
from typing import Any, Callable, Sequence

import click


def output_options(csv_ok: bool = True) -> Callable:
    """Add ``--json`` (and ``--csv``) to a command; the command calls ``emit``."""
    def decorate(f: Callable) -> Callable:
        if csv_ok:
            f = click.option("--csv", "as_csv", is_flag=True, help="Print CSV (header row first).")(f)
        f = click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)
        return f
    return decorate


class Column:
    def __init__(self, key: str, header: str | None = None, fmt: Callable[[Any, dict], str] | None = None):
        self.key, self.header, self.fmt = key, header or key, fmt


def emit(rows: Sequence[dict], columns: Sequence[Column], *, as_json: bool = False, as_csv: bool = False,
         json_value: Any = None, empty: str = "(nothing to show)") -> None:
    """Print ``rows``: JSON (``json_value`` if given, else the rows), CSV, or a table."""
    if as_json and as_csv:
        raise click.UsageError("--json and --csv cannot be used together")
    if as_json:
        if json_value is None:  # keys starting with "_" are for the table only
            json_value = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        click.echo(json.dumps(json_value, ensure_ascii=False, indent=2,
                              allow_nan=False, default=_json_default))
        return
    if as_csv:
        import csv
        keys = [c.key for c in columns]
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(keys)
        for r in rows:
            w.writerow([_csv_cell(r.get(k)) for k in keys])
        return
    if not rows:
        click.echo(empty)
        return
    cells = [[c.fmt(r.get(c.key), r) if c.fmt else _cell(r.get(c.key)) for c in columns] for r in rows]
    click.echo(table(cells, [c.header for c in columns]))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str] | None = None) -> str:
    """Left-aligned columns two spaces apart, as tabulate's "simple" format (with ``headers``) and
    "plain" (without) print text cells: each cell stripped, None empty, a multi-line cell on lines
    of its own, a column at least two wider than its header, no trailing blanks.

    Our own because tabulate 0.10 looks up its own version through ``importlib.metadata`` when it
    is imported: that alone cost every ``ishowctl`` call 11 ms, more than the command's work.
    """
    raw = [["" if v is None else str(v) for v in row] for row in rows]
    if any("\n" in v for row in raw for v in row):   # a multi-line table: an empty cell has no line
        text = [[v.strip().splitlines() for v in row] for row in raw]
    else:
        text = [[[v.strip()] for v in row] for row in raw]
    ncols = max([len(headers or ())] + [len(r) for r in text])
    widths = [0] * ncols
    if headers:
        widths = [len(h) + 2 for h in headers] + [0] * (ncols - len(headers))
    for row in text:
        for i, lines in enumerate(row):
            widths[i] = max([widths[i], *map(len, lines)])

    def line(parts: Sequence[str]) -> str:
        return "  ".join(p.ljust(w) for p, w in zip(parts, widths)).rstrip()

    out = []
    if headers:
        out.append(line(list(headers) + [""] * (ncols - len(headers))))
        out.append("  ".join("-" * w for w in widths))
    for row in text:
        row = row + [[""]] * (ncols - len(row))
        for k in range(max(len(lines) for lines in row)):   # 0 for an empty row of a multi-line table
            out.append(line([lines[k] if k < len(lines) else "" for lines in row]))
    return "\n".join(out)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, dict):
        return ",".join(f"{k}={x}" for k, x in v.items()) or "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _csv_cell(v: Any) -> Any:
    if isinstance(v, dict):
        return ",".join(f"{k}={x}" for k, x in v.items())
    return "" if v is None else v


def _json_default(o: Any) -> Any:
    raise TypeError(f"cannot serialise {type(o).__name__}")

