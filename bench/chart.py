"""Draw the API Keys page's median server time against the number of keys, as an SVG line chart.

``python -m bench.chart RESULTS.json... --out docs/benchmarks-pages.svg`` reads the figures that
``bench.pages`` writes (other benchmarks' figures in the same files are skipped) and draws one panel
per database, one line per view of the page, both axes logarithmic, with the 100 ms goal. The SVG is
written by hand, so drawing it needs nothing beyond Python.
"""

import argparse
import json
import math
from dataclasses import dataclass
from html import escape
from pathlib import Path

WIDTH = 900
PANEL_HEIGHT = 330
MARGIN_LEFT, MARGIN_RIGHT, PANEL_GAP = 70, 20, 60
TOP = 78  # room for the title and the subtitle
LEGEND_COLUMNS, LEGEND_ROW = 3, 20
GOAL_MS = 100
DATABASES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
# Tableau's ten colours and one more, distinct for the colour-blind as well as they can be; the
# goal is drawn in near-black, which no view uses.
COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bcbd22",
    "#7f7f7f",
)
GOAL_STYLE = 'stroke="#222" stroke-width="1.5" stroke-dasharray="6 4"'
FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif\""


@dataclass(frozen=True)
class LogAxis:
    """Maps values between ``low`` and ``high`` onto pixels between ``start`` and ``end``."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        share = (math.log10(value) - math.log10(self.low)) / (math.log10(self.high) - math.log10(self.low))
        return round(self.start + share * (self.end - self.start), 1)


def load(paths: list[Path]) -> dict[str, dict[str, dict[int, float]]]:
    """``{database: {view: {scale: median ms}}}`` from the pages figures; a later file wins."""
    series: dict[str, dict[str, dict[int, float]]] = {}
    for path in paths:
        for figure in json.loads(path.read_text()):
            if figure["benchmark"] != "pages":
                continue
            detail = figure["detail"]
            views = series.setdefault(detail["database"], {})
            views.setdefault(figure["name"], {})[detail["scale"]] = figure["value"]
    if not series:
        raise SystemExit("no figures of the pages benchmark in " + ", ".join(map(str, paths)))
    return series


def scale_label(scale: int) -> str:
    return f"{scale // 1_000_000}M" if scale >= 1_000_000 else f"{scale // 1_000}k"


def time_label(ms: float) -> str:
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g} ms"


def decades(values: list[float]) -> tuple[float, float]:
    """Whole powers of ten around the values and the goal, so gridlines fall on round numbers."""
    values = [*values, GOAL_MS]
    return 10 ** math.floor(math.log10(min(values))), 10 ** math.ceil(math.log10(max(values)))


def x_axis_for(scales: list[int], start: float, end: float) -> LogAxis:
    """A little room on either side, so the first and last points are not on the frame."""
    low, high = min(scales), max(scales)
    if low == high:
        low, high = low / 2, high * 2
    pad = (math.log10(high) - math.log10(low)) * 0.06
    return LogAxis(10 ** (math.log10(low) - pad), 10 ** (math.log10(high) + pad), start, end)


def y_ticks(low: float, high: float) -> list[tuple[float, bool]]:
    """1, 2 and 5 times each power of ten in range; ``True`` for the powers, which are labelled."""
    ticks, decade = [], low
    while decade <= high:
        ticks += [(decade * step, step == 1) for step in (1, 2, 5) if decade * step <= high]
        decade *= 10
    return ticks


def text(x, y, content, size=12, anchor="start", weight="normal", fill="#333", extra="") -> str:
    return (
        f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
        f'fill="{fill}"{extra}>{escape(str(content))}</text>'
    )


def frame(title: str, x: LogAxis, y: LogAxis, scales: list[int]) -> list[str]:
    """The panel's grid, axes, tick labels, goal line and title."""
    left, right, bottom, top = x.start, x.end, y.start, y.end
    box = f'x="{left}" y="{top}" width="{right - left}" height="{bottom - top}"'
    parts = [f'<rect {box} fill="#fff" stroke="#999"/>']
    for value, major in y_ticks(y.low, y.high):
        position = y(value)
        colour = "#d6d6d6" if major else "#eee"
        parts.append(f'<line x1="{left}" y1="{position}" x2="{right}" y2="{position}" stroke="{colour}"/>')
        if major:
            parts.append(text(left - 6, position + 4, time_label(value), size=11, anchor="end"))
    for scale in scales:
        position = x(scale)
        parts.append(f'<line x1="{position}" y1="{top}" x2="{position}" y2="{bottom}" stroke="#eee"/>')
        parts.append(text(position, bottom + 16, scale_label(scale), size=11, anchor="middle"))
    goal = y(GOAL_MS)
    parts.append(f'<line x1="{left}" y1="{goal}" x2="{right}" y2="{goal}" {GOAL_STYLE}/>')
    parts.append(text((left + right) / 2, top - 8, title, size=14, anchor="middle", weight="600"))
    parts.append(text((left + right) / 2, bottom + 34, "API keys in the table (log scale)", anchor="middle"))
    return parts


def lines(views: dict[str, dict[int, float]], colours: dict[str, str], x: LogAxis, y: LogAxis) -> list[str]:
    """One polyline per view, with a dot per measurement that names its value on hover."""
    parts = []
    for view, points in views.items():
        colour = colours[view]
        coordinates = [(x(scale), y(points[scale])) for scale in sorted(points)]
        path = " ".join(f"{px},{py}" for px, py in coordinates)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (px, py), scale in zip(coordinates, sorted(points), strict=True):
            tip = f"{view}: {points[scale]:.1f} ms at {scale:,} keys"
            parts.append(
                f'<circle cx="{px}" cy="{py}" r="3.5" fill="{colour}"><title>{escape(tip)}</title></circle>'
            )
    return parts


def legend(colours: dict[str, str], top: float) -> list[str]:
    """Each view's colour, then the goal's dashed line."""
    column_width = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / LEGEND_COLUMNS
    parts = []
    for index, label in enumerate([*colours, f"goal: {GOAL_MS} ms"]):
        left = MARGIN_LEFT + (index % LEGEND_COLUMNS) * column_width
        middle = top + (index // LEGEND_COLUMNS) * LEGEND_ROW
        sample = f'x1="{left}" y1="{middle}" x2="{left + 22}" y2="{middle}"'
        if label in colours:
            parts.append(f'<line {sample} stroke="{colours[label]}" stroke-width="2"/>')
            parts.append(f'<circle cx="{left + 11}" cy="{middle}" r="3.5" fill="{colours[label]}"/>')
        else:
            parts.append(f"<line {sample} {GOAL_STYLE}/>")
        parts.append(text(left + 30, middle + 4, label))
    return parts


def render(series: dict[str, dict[str, dict[int, float]]]) -> str:
    databases = [name for name in DATABASES if name in series] + sorted(set(series) - set(DATABASES))
    views = list(dict.fromkeys(view for name in databases for view in series[name]))
    colours = {view: COLOURS[index % len(COLOURS)] for index, view in enumerate(views)}
    measured = [points for name in databases for points in series[name].values()]
    scales = sorted({scale for points in measured for scale in points})
    low, high = decades([ms for points in measured for ms in points.values()])
    panel_width = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT - PANEL_GAP * (len(databases) - 1)) / len(databases)
    bottom = TOP + PANEL_HEIGHT
    y = LogAxis(low, high, bottom, TOP)
    legend_top = bottom + 62
    height = legend_top + math.ceil((len(views) + 1) / LEGEND_COLUMNS) * LEGEND_ROW + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" {FONT} role="img" aria-labelledby="chart-title">',
        f'<rect width="{WIDTH}" height="{height}" fill="#fafafa"/>',
        '<title id="chart-title">API Keys page: median server time against the number of keys</title>',
        text(MARGIN_LEFT, 24, "API Keys page: median server time per request", size=17, weight="600"),
        text(
            MARGIN_LEFT,
            44,
            "Django test client in the server process, 20 rows per page; both axes logarithmic.",
            size=12,
            fill="#555",
        ),
        text(
            20,
            TOP + PANEL_HEIGHT / 2,
            "median server time (log scale)",
            anchor="middle",
            extra=f' transform="rotate(-90 20 {TOP + PANEL_HEIGHT / 2})"',
        ),
    ]
    for index, name in enumerate(databases):
        left = MARGIN_LEFT + index * (panel_width + PANEL_GAP)
        x = x_axis_for(scales, left, left + panel_width)
        parts += frame(DATABASES.get(name, name), x, y, scales)
        parts += lines(series[name], colours, x, y)
    parts += legend(colours, legend_top)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="figure files written by bench.pages")
    parser.add_argument("--out", type=Path, required=True, help="the SVG to write")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(load(args.results)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
