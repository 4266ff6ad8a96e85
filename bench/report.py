"""Markdown tables of a run's figures, as docs/benchmarks.md shows them.

python -m bench.report var/bench/results/full-sqlite.json var/bench/results/full-postgresql.json
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path


def load(paths: list[Path]) -> dict[str, list[dict]]:
    """``{database: figures}`` from the summaries ``bench.run`` writes."""
    return {
        summary["database"]: summary["figures"] for summary in map(json.loads, map(Path.read_text, paths))
    }


def mark(figure: dict) -> str:
    return {True: "", False: " ✗", None: ""}[figure["met"]]


def number(figure: dict) -> str:
    value, unit = figure["value"], figure["unit"]
    if unit == "ratio":
        return f"{value:.2f}"
    if unit in ("ms",) and value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def keys(scale: int) -> str:
    return f"{scale // 1_000_000}M" if scale >= 1_000_000 else f"{scale // 1000}k"


def pages_table(results: dict[str, list[dict]]) -> list[str]:
    """One row per view, one column per database and scale: the median server time in ms."""
    cells, scales, views = defaultdict(dict), defaultdict(set), []
    for database, figures in results.items():
        for figure in figures:
            if figure["benchmark"] != "pages":
                continue
            scale = figure["detail"]["scale"]
            scales[database].add(scale)
            if figure["name"] not in views:
                views.append(figure["name"])
            cells[figure["name"]][(database, scale)] = f"{number(figure)}{mark(figure)}"
    columns = [(database, scale) for database in results for scale in sorted(scales[database])]
    header = "| View | " + " | ".join(f"{database} {keys(scale)}" for database, scale in columns) + " |"
    lines = [header, "| --- |" + " ---: |" * len(columns)]
    for view in views:
        lines.append(f"| {view} | " + " | ".join(cells[view].get(column, "") for column in columns) + " |")
    return lines


def figures_table(results: dict[str, list[dict]], benchmarks: tuple[str, ...]) -> list[str]:
    """One row per figure, one column per database."""
    rows, units, goals = {}, {}, {}
    for database, figures in results.items():
        for figure in figures:
            if figure["benchmark"] in benchmarks:
                rows.setdefault(figure["name"], {})[database] = f"{number(figure)}{mark(figure)}"
                units[figure["name"]], goals[figure["name"]] = figure["unit"], figure["goal"]
    lines = [
        "| Figure | Unit | " + " | ".join(results) + " | Goal |",
        "| --- | --- |" + " ---: |" * len(results) + " --- |",
    ]
    for name, values in rows.items():
        cells = " | ".join(values.get(database, "") for database in results)
        lines.append(f"| {name} | {units[name]} | {cells} | {goals[name]} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summaries", nargs="+", type=Path)
    results = load(parser.parse_args().summaries)
    sections = [
        ("API Keys page, median server time (ms)", pages_table(results)),
        ("Bulk invalidation", figures_table(results, ("bulk",))),
        ("Authentication, creation and purge", figures_table(results, ("auth", "create", "purge"))),
        ("Memory", figures_table(results, ("memory",))),
    ]
    for title, lines in sections:
        print(f"### {title}\n")
        print("\n".join(lines))
        print()


if __name__ == "__main__":
    main()
