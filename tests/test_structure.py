"""The shape of the tree: no import cycle, the CLI never imports the code that reads the hardware,
the catalog knows every plug-in, and etc/ishowd.toml documents every key the code declares."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ishowd import catalog

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ishowd"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, (ast.Name, ast.Attribute)) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(name: str) -> set[str]:
    """The ishowd modules ``name`` imports anywhere in its code, functions included
    (``if TYPE_CHECKING:`` blocks excepted: they never run)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[:len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for a in child.names:   # "from . import x" names a module; "from .m import f" a name in m
                    found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_the_import_walk_sees_a_cycle_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert "ishowd.specs.gpu" in GRAPH["ishowd.collectors.nvml"]      # a real arrow is seen
    assert "ishowd.backend.report" in GRAPH["ishowd.cli.rtf"]         # ... inside a function too


def test_no_import_cycle():
    found = cycles(GRAPH)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_cli_module_imports_collectors_or_tasks():
    for name, deps in GRAPH.items():
        if name.startswith("ishowd.cli"):
            bad = sorted(d for d in deps if d.startswith(("ishowd.collectors", "ishowd.tasks")))
            assert not bad, f"{name} imports {bad}"


def test_only_the_catalog_and_the_daemon_import_the_plug_in_packages():
    # the daemon runs the parts; every module below them takes what the catalog hands down
    allowed = {"ishowd.catalog", "ishowd.daemon"}
    for name, deps in GRAPH.items():
        if name in allowed or name.startswith(("ishowd.collectors", "ishowd.tasks")):
            continue
        plugins = sorted(d for d in deps if d.startswith(("ishowd.collectors.", "ishowd.tasks.")))
        assert not plugins, f"{name} imports plug-in modules {plugins}"


def test_only_schedule_imports_apscheduler():
    # schedule.py imports it through lean_apscheduler, without asyncio, multiprocessing and
    # importlib.metadata (3.2 MB of the daemon's memory): an import elsewhere, run first, would
    # bring them back
    for name, path in MODULES.items():
        if name in ("ishowd.schedule", "ishowd.lean_apscheduler"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = [n.module if isinstance(n, ast.ImportFrom) else a.name for n in ast.walk(tree)
                 if isinstance(n, (ast.Import, ast.ImportFrom))
                 for a in (n.names if isinstance(n, ast.Import) else [n])
                 if ((n.module or "") if isinstance(n, ast.ImportFrom) else a.name).split(".")[0] == "apscheduler"]
        assert not found, f"{name} imports {found}: import it from ishowd.schedule"


@pytest.mark.parametrize("args", [["status"], ["status", "--json"], ["history", "memory_used_bytes"],
                                  ["rtf", "list"], ["alerts", "--all"], ["check"]])
def test_the_read_commands_load_no_collector_and_no_task(tmp_path, args):
    from conftest import write_config
    from ishowd.metrics import Sample
    from ishowd.store.writer import Store
    cfg = write_config(tmp_path)
    store = Store(tmp_path / "ishowd.db")
    store.write(1_767_225_600, [Sample(catalog.metric("memory_used_bytes"), 1.0)])
    store.close()
    code = ("import sys\nfrom ishowd.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in sys.modules if m.startswith(('ishowd.collectors', 'ishowd.tasks'))),"
            " file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, "--config", str(cfg), *args], capture_output=True, text=True,
                          timeout=60)
    assert "LOADED []" in proc.stderr, proc.stderr


def test_a_mistyped_command_is_answered_with_the_right_one():
    from click.testing import CliRunner
    from ishowd.cli import COMMANDS, cli
    result = CliRunner().invoke(cli, ["stauts"])
    assert result.exit_code == 2 and "No such command 'stauts'" in result.output
    import click
    if hasattr(click.exceptions, "NoSuchCommand"):   # click 8.2+ suggests; 8.1 never did
        assert "Did you mean 'status'?" in result.output
    assert sorted(cli.list_commands(None)) == sorted(COMMANDS)


def test_the_catalog_lists_every_plug_in_module_and_declares_what_they_emit():
    from ishowd import collectors, specs, tasks
    for package, listed in ((collectors, catalog.collectors()), (tasks, catalog.tasks())):
        modules = {p.stem for p in Path(package.__file__).parent.glob("[!_]*.py")}
        loaded = {cls.__module__.rpartition(".")[2] for cls in listed.values()}
        assert modules <= loaded, f"not imported by ishowd/catalog.py: {sorted(modules - loaded)}"
    registry = catalog.registry()
    for cls in catalog.collectors().values():
        for m in cls.metrics:
            assert registry.get(m.name) is m, f"{cls.name}: {m.name} is not in the registry"
    declaring = {m.__name__ for m in catalog._declaring_modules()}
    for p in Path(specs.__file__).parent.glob("[!_]*.py"):
        assert f"ishowd.specs.{p.stem}" in declaring, f"ishowd/catalog.py does not gather specs/{p.name}"


# --- etc/ishowd.toml documents every key ------------------------------------------------------

ETC = ROOT / "etc" / "ishowd.toml"
_HEADER = re.compile(r"^(#\s*)?\[\[?\s*([\w.-]+)\s*\]\]?\s*$")
_KEY = re.compile(r"^(#\s*)?([A-Za-z_][\w-]*)\s*=")


def documented_keys() -> dict[tuple[str, str], bool]:
    """(section, key) -> whether a comment explains it, for every key written in etc/ishowd.toml,
    set or commented out (``# name = ...`` under ``# [[alerts.hooks]]``)."""
    out: dict[tuple[str, str], bool] = {}
    section, example, explained = "", False, False
    for line in ETC.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        header = _HEADER.match(text)
        if header:   # "# [[alerts.hooks]]" starts an example written as comments
            section, example, explained = header.group(2), bool(header.group(1)), False
            continue
        key = _KEY.match(text)
        if key and (not key.group(1) or example):
            inline = "#" in text.split("=", 1)[1]
            name = (section, key.group(2))
            out[name] = out.get(name, False) or explained or inline
        elif text.startswith("#"):
            explained = True
        elif not text:
            explained = False
    return out


def test_every_declared_key_is_documented_in_etc():
    written = documented_keys()
    schema = catalog.schema()
    rules_comment = ETC.read_text(encoding="utf-8")
    missing, bare = [], []
    for section, keys in list(schema.sections.items()) + list(schema.arrays.items()):
        for key in keys:
            if (section, key) not in written:
                # an array's keys may be explained in the comment that introduces it
                if section in schema.arrays and re.search(rf"^#.*\b{re.escape(key)}\b", rules_comment, re.M):
                    continue
                missing.append(f"[{section}] {key}")
            elif not written[section, key] and section not in schema.arrays:
                bare.append(f"[{section}] {key}")
    assert not missing, f"not in etc/ishowd.toml: {missing}"
    assert not bare, f"in etc/ishowd.toml without a comment: {bare}"


def test_every_key_in_etc_is_declared():
    schema = catalog.schema()
    declared = {(s, k) for s, keys in list(schema.sections.items()) + list(schema.arrays.items()) for k in keys}
    unknown = sorted(f"[{s}] {k}" for s, k in documented_keys() if (s, k) not in declared)
    assert not unknown, f"etc/ishowd.toml names keys the code does not declare: {unknown}"


def test_the_wheel_ships_every_package():
    """pyproject lists the packages by hand: one left out installs without it (CI's non-editable
    install would not import it)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "ishowd").rglob("__init__.py")}
    assert found - listed == set()
