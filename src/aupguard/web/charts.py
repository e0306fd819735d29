"""Server-rendered SVG bar charts for the dashboard.

Hand-built rather than matplotlib: a bar chart is a few rectangles, builds in
microseconds instead of matplotlib's second-long import, needs no JavaScript
and inherits the console's CSS (colours, font). Labels are escaped: clause
ids and client ids come from data that complaints can influence.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape


def bar_chart(points: Sequence[tuple[str, int | float]], *, title: str, width: int = 640,
              height: int = 220, horizontal: bool = False) -> Markup:
    """An inline <svg> bar chart of (label, value) points; empty data says so."""
    if not points:
        return Markup('<p class="empty">No data yet.</p>')
    if horizontal:
        return _horizontal(points, title=title, width=width)
    pad_l, pad_b, pad_t = 36, 40, 10
    plot_w, plot_h = width - pad_l - 8, height - pad_b - pad_t
    top = max(v for _, v in points) or 1
    slot = plot_w / len(points)
    bar_w = max(2.0, slot * 0.7)
    parts = [_svg_open(width, height), f"<title>{escape(title)}</title>",
             (f'<line class="axis" x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 8}" '
              f'y2="{pad_t + plot_h}"/>'),
             (f'<text class="tick" x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">'
              f"{escape(_fmt(top))}</text>"),
             f'<text class="tick" x="{pad_l - 4}" y="{pad_t + plot_h}" text-anchor="end">0</text>']
    label_every = max(1, len(points) // 8)
    for i, (label, value) in enumerate(points):
        h = plot_h * (value / top)
        x = pad_l + i * slot + (slot - bar_w) / 2
        y = pad_t + plot_h - h
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                     f'height="{h:.1f}"><title>{escape(label)}: {escape(_fmt(value))}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{pad_t + plot_h + 14}" '
                         f'text-anchor="middle">{escape(str(label)[-5:])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _horizontal(points: Sequence[tuple[str, int | float]], *, title: str, width: int) -> Markup:
    row_h, label_w = 22, 180
    height = row_h * len(points) + 8
    top = max(v for _, v in points) or 1
    parts = [_svg_open(width, height), f"<title>{escape(title)}</title>"]
    for i, (label, value) in enumerate(points):
        y = 4 + i * row_h
        w = (width - label_w - 60) * (value / top)
        parts.append(f'<text class="tick" x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
                     f"{escape(str(label)[:28])}</text>")
        parts.append(f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" '
                     f'height="{row_h - 6}"><title>{escape(label)}: {escape(_fmt(value))}'
                     f"</title></rect>")
        parts.append(f'<text class="tick" x="{label_w + w + 4:.1f}" y="{y + 15}">'
                     f"{escape(_fmt(value))}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _svg_open(width: int, height: int) -> str:
    return (f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" xmlns="http://www.w3.org/2000/svg">')


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
