"""The one place output formats live: a table for people, ``--json`` and ``--csv`` for scripts.

Every command that prints data takes ``@output_options`` and gets an ``Output``; ``emit`` prints
rows by it. In CSV a boolean is ``true``/``false`` and a labels mapping is one column per label
key (``labels.<key>``): a packed ``k=v,k=v`` cell cannot be split again when a value (a voice id
from the backend's log) holds ``,`` or ``=``.
"""
from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable, NamedTuple, Sequence

import click


class Output(NamedTuple):
    format: str            # "table", "json" or "csv"
    headers: bool = True   # a table's header lines, CSV's header row

    @property
    def json(self) -> bool:
        return self.format == "json"

    @property
    def csv(self) -> bool:
        return self.format == "csv"


def output_options(f: Callable) -> Callable:
    """``--json``, ``--csv`` and ``--no-headers``, given to the command as ``output`` (an ``Output``)."""
    @functools.wraps(f)
    def command(*args, as_json: bool, as_csv: bool, no_headers: bool, **kwargs):
        if as_json and as_csv:
            raise click.UsageError("--json and --csv cannot be used together")
        if as_json and no_headers:
            raise click.UsageError("--no-headers is for tables and CSV; JSON has no header")
        fmt = "json" if as_json else "csv" if as_csv else "table"
        return f(*args, output=Output(fmt, not no_headers), **kwargs)
    command = click.option("--no-headers", is_flag=True, help="No header lines (tables) or row (CSV).")(command)
    command = click.option("--csv", "as_csv", is_flag=True, help="Print CSV (a header row first).")(command)
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


class Column:
    def __init__(self, key: str, header: str | None = None, fmt: Callable[[Any, dict], str] | None = None):
        self.key, self.header, self.fmt = key, header or key, fmt


def emit(rows: Sequence[dict], columns: Sequence[Column], output: Output, *, json_value: Any = None,
         empty: str = "(nothing to show)") -> None:
    """Print ``rows``: JSON (``json_value`` if given, else the rows), CSV, or a table."""
    if output.json:
        if json_value is None:  # keys starting with "_" are for the table only
            json_value = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        print_json(json_value)
        return
    if output.csv:   # the JSON's fields, so the two formats tell the same
        keys = list(dict.fromkeys(k for r in rows for k in r if not k.startswith("_")))
        write_csv(rows, keys or [c.key for c in columns if not c.key.startswith("_")], output.headers)
        return
    if not rows:
        # a script reading a header-less table takes every line on stdout for a row
        click.echo(empty, err=not output.headers)
        return
    cells = [[c.fmt(r.get(c.key), r) if c.fmt else None for c in columns] for r in rows]
    for i, c in enumerate(columns):
        if c.fmt is None:
            plain = column_cells([r.get(c.key) for r in rows])
            for row, text in zip(cells, plain):
                row[i] = text
    click.echo(table(cells, [c.header for c in columns] if output.headers else None))


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, allow_nan=False, default=_json_default))


def write_csv(rows: Sequence[dict], keys: Sequence[str], headers: bool = True) -> None:
    """``rows`` as CSV in the columns ``keys``; a key whose values are mappings (labels) becomes one
    column per key they hold, ``<key>.<label>``, in sorted order."""
    import csv
    expand = {k: sorted({lk for r in rows if isinstance(r.get(k), dict) for lk in r[k]}) for k in keys
              if any(isinstance(r.get(k), dict) for r in rows)}
    header = []
    for k in keys:
        header += [f"{k}.{lk}" for lk in expand[k]] if k in expand else [k]
    w = csv.writer(sys.stdout, lineterminator="\n")
    if headers:
        w.writerow(header)
    for r in rows:
        line = []
        for k in keys:
            if k in expand:
                held = r.get(k) or {}
                line += [_csv_cell(held.get(lk)) for lk in expand[k]]
            else:
                line.append(_csv_cell(r.get(k)))
        w.writerow(line)


def column_cells(values: Sequence[Any]) -> list[str]:
    """Cells of one table column: floats all at one precision (enough for four significant digits
    of the smallest non-zero one, at most six places), so the column reads down."""
    floats = [abs(v) for v in values if isinstance(v, float) and v == v and abs(v) not in (0.0, float("inf"))]
    places = 0
    if floats:
        import math
        places = max(0, min(6, 3 - math.floor(math.log10(min(floats)))))
    return [f"{v:.{places}f}" if isinstance(v, float) and v == v and abs(v) != float("inf") else _cell(v)
            for v in values]


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
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, dict):
        from ..metrics import labels_text
        return labels_text(v)[1:-1] or "-"
    return str(v)


def _csv_cell(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):   # nested records (a job's last run) as JSON in one cell
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return "" if v is None else v


def _json_default(o: Any) -> Any:
    raise TypeError(f"cannot serialise {type(o).__name__}")
