"""``ishowctl config check [PATH] [--show]``: validate a config without starting anything, as
``promtool check config`` and ``nginx -t`` do; exit 0, or 78 with the file and key."""
from __future__ import annotations

import json
from typing import Any

import click

from .app import pass_app


@click.group("config")
def config() -> None:
    """The configuration: check a file before the daemon reloads it."""


def _toml_value(key, value: Any) -> str:
    from ..config import format_duration
    if key is not None and key.kind == "duration" and isinstance(value, (int, float)):
        return json.dumps(key.show(value) if value < 1 and value != 0 else format_duration(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(None, v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(None, v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value), ensure_ascii=False)


def _lines(keys: dict, values: dict) -> list[str]:
    # TOML has no null: a key left unset is shown as a comment, so the output loads again
    return [f"# {k} is not set" if v is None else f"{k} = {_toml_value(keys.get(k), v)}" for k, v in values.items()]


def effective(cfg) -> str:
    """The configuration as the daemon would run it, every key (defaults filled in), as TOML."""
    out = [f"# effective configuration from {cfg.source}"]
    for name in sorted(cfg.sections):
        keys = cfg.schema.sections.get(name, {})
        out += ["", f"[{name}]"]
        out += _lines(keys, cfg.sections[name])
    for name in sorted(cfg.arrays):
        keys = cfg.schema.arrays.get(name, {})
        for table in cfg.arrays[name]:
            out += ["", f"[[{name}]]"]
            out += _lines(keys, table)
    return "\n".join(out)


@config.command()
@click.argument("path", required=False, metavar="[PATH]")
@click.option("--show", is_flag=True, help="Print the effective configuration (every key, defaults filled in).")
@pass_app
def check(app, path, show) -> None:
    """Validate PATH (default: the config ishowctl would read) without starting anything.

    Exit 0 when the daemon would accept it; 78 (EX_CONFIG) with one line naming
    the file and the key when it would not.
    """
    from ..catalog import load_config
    cfg = load_config(path or app.config_path)
    click.echo(f"{cfg.source}: ok" if not show else effective(cfg))
