"""docs/reference.md: the operator's reference. Its tables of metrics and config keys are made from
the registry and the schema (the one place each is declared); this test holds the file to them.
``pytest tests/test_reference.py --regen-golden`` rewrites the generated blocks; review the diff."""
from __future__ import annotations

import re
from pathlib import Path

from ishowd import catalog

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference.md"
BLOCK = re.compile(r"(<!-- generated: (\w+)[^>]*-->\n)(.*?)(<!-- end of generated \2 -->)", re.S)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def metrics_table() -> str:
    rows = ["| metric | kind | unit | labels | `status` group | what |", "| --- | --- | --- | --- | --- | --- |"]
    for m in sorted(catalog.registry().values(), key=lambda m: m.name):
        labels = ", ".join(f"`{label}`" for label in m.labels)
        rows.append(f"| `{m.name}` | {m.kind} | {m.unit} | {labels} | {m.group} | {_cell(m.help)} |")
    return "\n".join(rows) + "\n"


def _default(key) -> str:
    if key.default is None or key.default == "" or key.default == [] or key.default == ():
        return "(empty)" if not key.required else "(required)"
    if isinstance(key.default, bool):
        return f"`{str(key.default).lower()}`"
    if isinstance(key.default, (list, tuple)):
        return ", ".join(f"`{v}`" for v in key.default)
    return f"`{key.default}`"


def _accepts(key) -> str:
    out = key.kind
    if key.choices:
        out += ": " + ", ".join(f"`{c}`" for c in key.choices)
    bounds = key.bounds().strip()
    return out + (f", {bounds}" if bounds else "")


def keys_table() -> str:
    schema = catalog.schema()
    out = []
    for title, sections in (("", schema.sections), ("[[...]] ", schema.arrays)):
        for name in sorted(sections, key=lambda n: (n.split(".")[0] != "storage", n)):
            out.append(f"\n#### `{'[[' + name + ']]' if title else '[' + name + ']'}`\n")
            out.append("| key | accepts | default | what |")
            out.append("| --- | --- | --- | --- |")
            for key, k in sections[name].items():
                out.append(f"| `{key}` | {_accepts(k)} | {_cell(_default(k))} | {_cell(k.help)} |")
    return "\n".join(out).lstrip("\n") + "\n"


GENERATORS = {"metrics": metrics_table, "keys": keys_table}


def test_the_reference_tables_are_the_registry_and_the_schema(regen_golden):
    text = REFERENCE.read_text(encoding="utf-8")
    found = {m.group(2) for m in BLOCK.finditer(text)}
    assert found == set(GENERATORS), f"docs/reference.md holds generated blocks {sorted(found)}"
    fresh = BLOCK.sub(lambda m: m.group(1) + GENERATORS[m.group(2)]() + m.group(4), text)
    if regen_golden:
        REFERENCE.write_text(fresh, encoding="utf-8")
    assert fresh == text, "docs/reference.md is behind the code: run pytest tests/test_reference.py --regen-golden"


def test_every_metric_and_section_is_in_the_reference():
    text = REFERENCE.read_text(encoding="utf-8")
    for name in catalog.registry():
        assert f"| `{name}` |" in text
    for name in catalog.schema().sections:
        assert f"#### `[{name}]`" in text
