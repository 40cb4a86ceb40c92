"""Configuration: TOML, validated against a ``Schema`` handed in by the catalog.

A module that reads config keys declares them as plain data beside the code
that uses them: ``KEYS = {"gpu": {"nvml": Key(...)}}``, ``TABLES`` for arrays
of tables such as ``[[alerts.rules]]``, and ``CHECKS`` for checks across keys.
The catalog (``ishowd/catalog.py``) gathers them into one ``Schema``; this
module imports none of them. A bad file fails at start with ``ConfigError``:
the file, the key, what was expected and what was found; the programs turn it
into exit code 78. What loads is usable as it is: every number and duration
lies within its key's declared ``min``/``max`` (finite: no NaN, no inf), every
string is free of NUL and within what the system takes, every address parses
(so nothing the config let through overflows a timer or a bind later).

Lookup order (the README's Configuration): ``--config PATH``, ``$ISHOWD_CONFIG``,
``/etc/ishowd/ishowd.toml`` when it exists, else built-in defaults that work
unprivileged on a plain machine.
"""
from __future__ import annotations

import math
import os
import re
import sys
from typing import Any, Callable, NamedTuple, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6)
    import tomli as tomllib

EX_CONFIG = 78
SYSTEM_CONFIG = "/etc/ishowd/ishowd.toml"


SHOWN_CHARS = 80    # of a name or value from the file in a message: a 4 MB string is not echoed whole


def shorten(text: str) -> str:
    """A name from the file, as a message shows it: a long one loses its middle, so a path keeps
    both its start and its file name."""
    if len(text) <= SHOWN_CHARS:
        return text
    head = (SHOWN_CHARS - 3) // 2
    return text[:head] + "..." + text[-(SHOWN_CHARS - 3 - head):]


def shown(value: Any) -> str:
    """A value from the file, as a message shows it: its repr, shortened."""
    return shorten(repr(value))


class ConfigError(Exception):
    """A configuration problem, phrased for the operator who has to fix it: one line, whatever
    the file holds (a key or value with a newline or NUL in it is shown escaped)."""

    def __init__(self, file: str, key: str, expected: str, got: Any = None, *, detail: str = ""):
        self.file, self.key, self.expected, self.got = file, key, expected, got
        msg = f"{file}: {key}: " if key else f"{file}: "
        msg += detail or f"expected {expected}"
        if got is not None and not detail:
            msg += ", got " + shown(got)
        if not msg.isprintable():
            msg = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in msg)
        super().__init__(msg)


# --- durations ---------------------------------------------------------------

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")  # not \d: it takes any script's digits


def parse_duration(text: str) -> float:
    """'90s', '10m', '24h', '7d', '4w', '1h30m' -> seconds. Raises ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"not a duration: {text!r}")
    s = text.strip().replace(" ", "")
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        raise ValueError(f"not a duration: {text!r}")
    return total


def format_duration(seconds: float) -> str:
    for unit in ("w", "d", "h", "m", "s"):
        size = _DURATION_UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# --- the schema ----------------------------------------------------------------

DURATION_HINT = "a duration such as 90s, 10m, 24h, 7d or 4w"
LISTEN_HINT = 'an address such as "127.0.0.1:9733" (or "" for off)'

# Every string value: no key needs more, and what the OS takes is narrower still for paths.
MAX_TEXT = 4096         # characters
PATH_MAX_BYTES = 4095   # Linux's PATH_MAX less its terminating NUL
NAME_MAX_BYTES = 255    # one component of a path, on the file systems Linux mounts


class Key(NamedTuple):
    """One config key: its type, its default and a line for `etc/ishowd.toml`. (A named tuple:
    immutable, and unlike a dataclass nearly free to define on ishowctl's start.)"""
    kind: str                      # str path duration int float bool strlist pathlist argv table listen any
    default: Any = None
    help: str = ""
    choices: tuple = ()
    min: Optional[float] = None    # numbers and durations: the bounds, both inclusive
    required: bool = False
    check: Optional[Callable[[Any], Optional[str]]] = None  # returns an error text or None
    max: Optional[float] = None

    def show(self, value: float) -> str:
        """A bound as it is written in the file: 1h, 100ms, 0.001, 131072."""
        if self.kind == "duration":
            return format_duration(value) if value >= 1 or value == 0 else f"{value * 1000:g}ms"
        return f"{value:g}" if self.kind == "float" else str(value)

    def bounds(self) -> str:
        """`` between 1s and 1h`` for a bounded number or duration, else ``""``."""
        if self.min is None and self.max is None:
            return ""
        if self.max is None:
            return f" of at least {self.show(self.min)}"
        if self.min is None:
            return f" of at most {self.show(self.max)}"
        return f" between {self.show(self.min)} and {self.show(self.max)}"

    def expected(self) -> str:
        base = {
            "str": "a string", "path": "a file path (string)", "duration": DURATION_HINT,
            "int": "an integer", "float": "a number", "bool": "true or false",
            "strlist": "a list of strings", "pathlist": "a list of file paths",
            "argv": "a non-empty list of strings (argv, run without a shell)",
            "table": "a table", "listen": LISTEN_HINT,
            "any": "a value",
        }[self.kind]
        if self.choices:
            base = "one of " + ", ".join(repr(c) for c in self.choices)
        return base + self.bounds()


class Schema:
    """Every section's keys, every array of tables, the cross-key checks, and the metric registry
    (rules name metrics: validating them needs it). Assembled by the catalog."""

    def __init__(self, metrics: dict | None = None):
        self.sections: dict[str, dict[str, Key]] = {}
        self.arrays: dict[str, dict[str, Key]] = {}
        # Checks that look across keys or sections; each gets the Config and raises ConfigError.
        self.checks: list[Callable[["Config"], None]] = []
        self.metrics: dict = {} if metrics is None else metrics

    def add(self, where: str, keys: dict | None = None, tables: dict | None = None,
            checks: tuple | list = ()) -> None:
        """Take one module's declarations; a key declared twice is a programming error."""
        for target, given in ((self.sections, keys or {}), (self.arrays, tables or {})):
            for name, declared in given.items():
                have = target.setdefault(name, {})
                twice = set(have) & set(declared)
                if twice:
                    raise ValueError(f"{where}: [{name}] {', '.join(sorted(twice))} declared twice")
                have.update(declared)
        self.checks.extend(checks)


def text_problem(text: str, *, path: bool = False) -> Optional[str]:
    """Why ``text`` cannot be a config string (``path``: a file path), as a clause for "expected
    a string, ...", or None. A NUL cannot reach the OS (paths, argv, the environment)."""
    if "\0" in text:
        return "without NUL characters"
    if len(text) > MAX_TEXT:
        return f"at most {MAX_TEXT} characters long"
    if path:
        raw = text.encode()
        if len(raw) > PATH_MAX_BYTES:
            return f"at most {PATH_MAX_BYTES} bytes long (the system's limit for a path)"
        if any(len(part) > NAME_MAX_BYTES for part in raw.split(b"/")):
            return f"with no part over {NAME_MAX_BYTES} bytes (the system's limit for a file name)"
    return None


# Host names as RFC 1123 has them (the resolver takes nothing else), IPv4 as four decimal octets
# (no leading zeros: inet_aton would read 010 as octal). Plain string work: ``ipaddress`` costs
# every ishowctl call more than a millisecond to import (``socket`` more), and a regular
# expression's compiling, once per call, is dearer than these few comparisons.
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_LDH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def _decimal(text: str, digits: int) -> bool:
    """1 to ``digits`` ASCII digits (str.isdigit would take any script's)."""
    return 0 < len(text) <= digits and _DIGITS.issuperset(text)


def _ipv4(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(_decimal(p, 3) and int(p) <= 255 and (p == "0" or p[0] != "0") for p in parts)


def _ipv6(text: str) -> bool:
    head, elided, tail = text.partition("::")
    if "::" in tail:
        return False
    groups = (head.split(":") if head else []) + (tail.split(":") if tail else [])
    width = len(groups)
    if groups and "." in groups[-1]:        # ::ffff:192.0.2.1
        if not _ipv4(groups.pop()):
            return False
        width += 1
    if not all(0 < len(g) <= 4 and _HEX.issuperset(g) for g in groups):
        return False
    return width <= 7 if elided else width == 8


def _host_name(text: str) -> bool:
    labels = text.removesuffix(".").split(".")     # "localhost." is fully qualified: the same host
    return len(text) <= 253 and all(0 < len(label) <= 63 and _LDH.issuperset(label)
                                    and label[0] != "-" and label[-1] != "-" for label in labels)


def host_problem(host: str) -> Optional[str]:
    """What is wrong with the host part of an address (IPv6 in brackets), as an expectation, or None."""
    if host.startswith("[") and host.endswith("]"):
        return None if _ipv6(host[1:-1]) else "an IPv6 address inside the brackets"
    if host and _DIGITS.union(".").issuperset(host):
        return None if _ipv4(host) else "an IPv4 address of four numbers from 0 to 255"
    if _host_name(host):
        return None
    return "an IPv4 address, an IPv6 address in brackets or a host name (letters, digits, - and .)"


def port_problem(text: str, lowest: int) -> Optional[str]:
    if _decimal(text, 5) and lowest <= int(text) <= 65535:
        return None
    return f"a port from {lowest} to 65535"


def _listen_problem(value: str) -> Optional[str]:
    """``host:port``, the port 0-65535. An empty host is refused, not read as every interface:
    "" alone turns the exporter off, and listening on every interface is spelled 0.0.0.0."""
    if not value:
        return None
    host, colon, port = value.rpartition(":")
    if not colon or (":" in host and not host.startswith("[")):
        return LISTEN_HINT
    if not host:
        return 'a host before the port ("0.0.0.0:9733" listens on every interface, "" turns it off)'
    problem = host_problem(host)
    if problem:
        return f'{problem} before the port, as in "127.0.0.1:9733"'
    problem = port_problem(port, 0)
    return f'{problem} after the host, as in "127.0.0.1:9733"' if problem else None


def _convert(key: Key, value: Any, where: str, file: str) -> Any:
    def bad(expected: str = ""):
        return ConfigError(file, where, expected or key.expected(), value)

    k = key.kind
    if k == "any":
        return value
    if k in ("str", "path"):
        if not isinstance(value, str):
            raise bad()
        if k == "path" and value and not value.strip():
            raise bad()
        problem = None if key.choices else text_problem(value, path=k == "path")
        if problem:
            raise bad(f"{key.expected()}, {problem}")
        out = value
    elif k == "duration":
        if isinstance(value, bool) or not isinstance(value, str):
            raise bad()
        try:
            out = parse_duration(value)
        except ValueError:
            raise bad() from None
    elif k == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        out = value
    elif k == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        try:
            out = float(value)
        except OverflowError:              # an integer past the largest float
            raise bad("a finite number" + key.bounds()) from None
    elif k == "bool":
        if not isinstance(value, bool):
            raise bad()
        out = value
    elif k in ("strlist", "pathlist", "argv"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad()
        if k == "argv" and (not value or not value[0]):
            raise bad()
        for item in value:
            if k == "pathlist" and not item.strip():
                raise bad(f"{key.expected()}, none of them empty")
            problem = text_problem(item, path=k == "pathlist")
            if problem:
                raise bad(f"{key.expected()}, each {problem}")
        out = list(value)
    elif k == "table":
        if not isinstance(value, dict):
            raise bad()
        out = dict(value)
    elif k == "listen":
        if not isinstance(value, str):
            raise bad()
        problem = _listen_problem(value)
        if problem:
            raise bad(problem)
        out = value
    else:  # pragma: no cover - a schema bug
        raise AssertionError(k)
    if key.choices and out not in key.choices:
        raise bad()
    if k in ("duration", "float") and not math.isfinite(out):
        raise bad("a finite number" + key.bounds() if k == "float" else "")
    if (key.min is not None and out < key.min) or (key.max is not None and out > key.max):
        raise bad()
    if key.check is not None:
        problem = key.check(out)
        if problem:
            raise ConfigError(file, where, problem, value)
    return out


class Section(dict):
    """A config section: a dict that also reads as attributes (``cfg.sampling.interval``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Config:
    """A validated configuration: ``cfg.sampling.interval``, ``cfg.array("alerts.rules")``."""

    def __init__(self, source: str, schema: Schema):
        self.source = source                 # the file it came from, or "<built-in defaults>"
        self.schema = schema
        self.sections: dict[str, Section] = {}
        self.arrays: dict[str, list[Section]] = {}

    def __repr__(self) -> str:
        return f"Config({self.source!r})"

    @property
    def metrics(self) -> dict:
        """The metric registry the config was validated against (name -> Metric)."""
        return self.schema.metrics

    def __getattr__(self, name: str) -> Section:
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    def array(self, name: str) -> list[Section]:
        return self.arrays.get(name, [])


def defaults_text() -> str:
    with open(os.path.join(os.path.dirname(__file__), "defaults.toml"), encoding="utf-8") as f:
        return f.read()


def _fill(keys: dict[str, Key], given: dict, where: str, file: str, known_what: str) -> Section:
    """Validate the keys ``given`` for one table and fill in the defaults of the rest."""
    sec = Section()
    for key_name, value in given.items():
        if key_name not in keys:
            known = ", ".join(sorted(keys)) or "none"
            raise ConfigError(file, where + shorten(key_name), "", detail=f"unknown key ({known_what}: {known})")
        sec[key_name] = _convert(keys[key_name], value, where + key_name, file)
    for key_name, key in keys.items():
        if key_name not in sec:
            if key.required:
                raise ConfigError(file, where + key_name, key.expected(), detail="missing; expected " + key.expected())
            sec[key_name] = None if key.default is None else _convert(key, key.default, where + key_name, file)
    return sec


def build(data: dict, file: str, schema: Schema) -> Config:
    """Validate parsed TOML ``data`` against ``schema`` and fill in defaults."""
    cfg = Config(source=file, schema=schema)
    if not isinstance(data, dict):  # pragma: no cover - tomllib always returns a dict
        raise ConfigError(file, "", "a TOML document")
    # "jobs.backup" is the table [jobs.backup], a child of [jobs]
    roots = {n.split(".")[0] for n in (*schema.sections, *schema.arrays)}
    for name, value in data.items():
        if name not in roots:
            known = ", ".join(sorted(n for n in roots))
            raise ConfigError(file, f"[{shorten(name)}]", f"a known section ({known})",
                              detail=f"unknown section (known: {known})")
        if not isinstance(value, dict):
            raise ConfigError(file, name, "a table such as [" + name + "]", value)
    for name, keys in schema.sections.items():
        root, _, child = name.partition(".")
        given = data.get(root, {}).get(child, {}) if child else data.get(name, {})
        if not isinstance(given, dict):
            raise ConfigError(file, name, "a table such as [" + name + "]", given)
        given = dict(given)
        # children such as [[alerts.rules]] and [jobs.backup] are their own tables
        children = [n.partition(".") for n in (*schema.arrays, *schema.sections)]
        for parent, _, sub in children:
            if parent == name and sub:
                given.pop(sub, None)
        cfg.sections[name] = _fill(keys, given, f"[{name}] ", file, f"known keys of [{name}]")
    for arr, keys in schema.arrays.items():
        root, _, child = arr.partition(".")
        items = data.get(root, {}).get(child) if child else data.get(root)
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ConfigError(file, f"[[{arr}]]", "an array of tables written as [[" + arr + "]]", items)
        out = []
        for index, item in enumerate(items):
            label = shorten(item["name"]) if isinstance(item.get("name"), str) else f"#{index + 1}"
            out.append(_fill(keys, item, f"[[{arr}]] {label}: ", file, "known keys"))
        cfg.arrays[arr] = out
    for check in schema.checks:
        check(cfg)
    return cfg


def loads(text: str, file: str, schema: Schema) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", "valid TOML", detail=f"not valid TOML: {exc}") from None
    except ValueError:  # tomllib hands on int()'s refusal of a number of thousands of digits
        raise ConfigError(file, "", "valid TOML", detail="not valid TOML: an integer too long to read "
                          "(TOML integers are 64-bit)") from None
    except RecursionError:
        raise ConfigError(file, "", "valid TOML", detail="not valid TOML: arrays or tables nested too "
                          "deeply to read") from None
    return build(data, file, schema)


def resolve_path(explicit: Optional[str]) -> Optional[str]:
    """The config file to read, or None for the built-in defaults. (Paths here are strings:
    pathlib would cost every ``ishowctl`` call 3 ms to import.)"""
    if explicit:
        return str(explicit)
    env = os.environ.get("ISHOWD_CONFIG")
    if env:
        return env
    if os.path.exists(SYSTEM_CONFIG):
        return str(SYSTEM_CONFIG)
    return None


BUILTIN = "<built-in defaults>"


def load(explicit: Optional[str], schema: Schema) -> Config:
    """Find and load the configuration (see the module docstring for the order)."""
    path = resolve_path(explicit)
    if path is None:
        return loads(defaults_text(), BUILTIN, schema)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(str(path), "", "a readable file", detail=f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "UTF-8 text", detail="not UTF-8 text") from None
    return loads(text, str(path), schema)
