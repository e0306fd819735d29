"""The hand-built SVG charts: right bar heights, and labels escaped whatever they contain."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from aupguard.web.charts import bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def test_bar_heights_are_proportional():
    svg = ET.fromstring(str(bar_chart([("a", 1), ("b", 4), ("c", 2)], title="t")))
    heights = [float(r.get("height")) for r in svg.iter(f"{SVG}rect")]
    assert heights[1] == 170.0 and heights[0] * 4 == heights[1] and heights[2] * 2 == heights[1]


def test_empty_data_says_so():
    assert "No data yet." in str(bar_chart([], title="t"))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=40), st.integers(0, 10**9)), min_size=1, max_size=20),
       st.booleans())
def test_any_label_yields_well_formed_svg(points, horizontal):
    text = str(bar_chart(points, title="<t>", horizontal=horizontal))
    # Strip characters XML 1.0 cannot carry at all; everything else must parse as-is.
    cleaned = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", "", text)
    svg = ET.fromstring(cleaned)
    assert len(list(svg.iter(f"{SVG}rect"))) == len(points)
    assert "<script" not in text


def test_times_read_as_utc_and_other_text_is_left_alone():
    from aupguard.web.app import readable_time

    assert readable_time("2026-11-29T16:46:38.594281+00:00") == "2026-11-29 16:46:38 UTC"
    assert readable_time("2026-11-29T16:46:38Z") == "2026-11-29 16:46:38 UTC"
    assert readable_time("2026-11-29T16:46:38+02:00") == "2026-11-29T16:46:38+02:00"
    assert readable_time("<b>2026</b>") == "<b>2026</b>" and readable_time(5) == 5
