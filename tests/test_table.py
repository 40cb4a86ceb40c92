"""ishowctl's tables print as tabulate's "simple" (with headers) and "plain" formats did, cell for cell."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st
from tabulate import tabulate

from ishowd.cli.output import table

CELL = st.one_of(st.none(), st.integers(-10**6, 10**6),
                 st.text(alphabet=st.sampled_from("ab Zz09.-_:日本\n\t°µ"), max_size=14))


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.lists(st.lists(CELL, min_size=n, max_size=n), max_size=6),
    st.one_of(st.none(), st.lists(st.text(alphabet="abcXYZ _", min_size=1, max_size=9), min_size=n, max_size=n)))))
def test_table_prints_what_tabulate_printed(case):
    rows, headers = case
    if headers is None:
        expected = tabulate(rows, tablefmt="plain", disable_numparse=True) if rows else ""
    else:
        expected = tabulate(rows, headers=headers, disable_numparse=True)
    assert table(rows, headers) == expected


def test_a_table_of_readings():
    assert table([["gpu_temperature_celsius{gpu=gpu0}", "48.5 °C"], ["fan_speed_percent{fan=pwm1}", "39.2 %"]]) == (
        "gpu_temperature_celsius{gpu=gpu0}  48.5 °C\n"
        "fan_speed_percent{fan=pwm1}        39.2 %")
