"""Charts as SVG drawn on the server: the same markup on a page and in a PDF.

Readable without colour: every bar carries its number, every line its own marker shape
and dash, named in a legend beside the shape; each chart has a title for screen readers,
and the pages show the numbers as a table beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import count

from markupsafe import Markup, escape

_ids = count(1)
#: one look per series: stroke colour, dash, marker (the shape tells them apart in grey)
STYLES = (("#1f5f99", "", "circle"), ("#b35c00", "6 3", "square"),
          ("#3f7f3f", "2 3", "triangle"), ("#7a3f99", "8 3 2 3", "diamond"))
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def bars(rows: Sequence[tuple[str, float | None]], *, title: str, width: int = 640,
         fmt: Callable[[float], str] = _number) -> Markup:
    """Horizontal bars, one per row, each labelled and with its value written at its end;
    ``None`` (a rate with nothing to divide by) draws no bar and reads "—"."""
    chart_id = f"chart-{next(_ids)}"
    label_w, row_h, pad = 190, 26, 8
    height = pad * 2 + row_h * max(len(rows), 1)
    top = max((v for _, v in rows if v is not None), default=0) or 1
    room = width - label_w - 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'aria-labelledby="{chart_id}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}">',  # scaled down by CSS (.chart)
             f'<title id="{chart_id}">{escape(title)}</title>']
    for i, (label, value) in enumerate(rows):
        y = pad + i * row_h
        w = 0 if value is None else max(room * (value / top), 1 if value else 0)
        text = escape(label if len(label) <= 28 else label[:27] + "…")
        parts.append(f'<text x="{label_w - 6}" y="{y + 17}" text-anchor="end" {FONT} '
                     f'fill="#1d2733">{text}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
                     f'fill="#1f5f99"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 17}" {FONT} '
                     f'fill="#1d2733">{"—" if value is None else escape(fmt(value))}</text>')
    if not rows:
        parts.append(f'<text x="{width / 2}" y="{height / 2 + 4}" text-anchor="middle" '
                     f'{FONT} fill="#5b6675">No data in this period</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    if shape == "square":
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{colour}"/>'
    if shape == "triangle":
        return (f'<polygon points="{x:.1f},{y - 4.5:.1f} {x - 4.5:.1f},{y + 3.5:.1f} '
                f'{x + 4.5:.1f},{y + 3.5:.1f}" fill="{colour}"/>')
    if shape == "diamond":
        return (f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} '
                f'{x - 5:.1f},{y:.1f}" fill="{colour}"/>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>'


def lines(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *,
          title: str, width: int = 640, height: int = 240, percent: bool = False) -> Markup:
    """Lines over time (one per series, up to four), with a y axis, the first and last
    labels of the x axis, and a legend naming each line's marker. ``None`` is a gap."""
    chart_id = f"chart-{next(_ids)}"
    left, right, top_pad, bottom = 48, 12, 12, 46
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    values = [v for _, vs in series for v in vs if v is not None]
    top = 1.0 if percent else max(values, default=0) or 1
    n = max(len(labels), 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
        return x, top_pad + plot_h * (1 - v / top)

    fmt = (lambda v: f"{v:.0%}") if percent else _number
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'aria-labelledby="{chart_id}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}">',  # scaled down by CSS (.chart)
             f'<title id="{chart_id}">{escape(title)}</title>']
    for step in range(5):
        value = top * step / 4
        y = top_pad + plot_h * (1 - step / 4)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#e3e7ec"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT} '
                     f'fill="#5b6675">{escape(fmt(value))}</text>')
    if labels:
        for i in sorted({0, n - 1}):
            x, _ = xy(i, 0)
            parts.append(f'<text x="{x:.1f}" y="{top_pad + plot_h + 16}" '
                         f'text-anchor="{"start" if i == 0 else "end"}" {FONT} '
                         f'fill="#5b6675">{escape(labels[i])}</text>')
    legend_x = left
    for (name, vs), (colour, dash, shape) in zip(series, STYLES, strict=False):
        points = [(i, v) for i, v in enumerate(vs) if v is not None]
        runs: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(vs):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(xy(i, v))
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                             f'stroke-width="2" stroke-dasharray="{dash}"/>')
        parts += [_marker(shape, *xy(i, v), colour) for i, v in points]
        y_legend = height - 10
        parts.append(_marker(shape, legend_x + 5, y_legend - 4, colour))
        parts.append(f'<text x="{legend_x + 14}" y="{y_legend}" {FONT} '
                     f'fill="#1d2733">{escape(name)}</text>')
        legend_x += 24 + 7 * len(name)
    if not values:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" {FONT} '
                     f'fill="#5b6675">No data in this period</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
