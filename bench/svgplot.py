"""A hand-written SVG of the benchmark results (no plotting dependency): cycle time and peak
memory against history size on log-log axes (with the incremental cycle's point), intake
throughput beside its baseline, and append->stored latency idle and during a cycle."""

from __future__ import annotations

import math
from html import escape
from typing import Any

WIDTH, HEIGHT, PANEL = 1000, 330, 230
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _text(x: float, y: float, text: str, size: int = 12, anchor: str = "middle") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"'
        f' font-family="sans-serif">{escape(text)}</text>'
    )


def _loglog(x0: float, title: str, series: list[tuple[str, list[tuple[float, float]]]]) -> str:
    """A log-log line chart of several (x, y) series in a PANEL-wide box at x0."""
    points = [p for _, pts in series for p in pts if p[0] > 0 and p[1] > 0]
    if not points:
        return _text(x0 + PANEL / 2, 150, f"{title}: no data")
    lx = [math.log10(x) for x, _ in points]
    ly = [math.log10(y) for _, y in points]
    xmin, xmax = min(lx), max(lx) + 1e-9
    ymin, ymax = min(ly) - 0.1, max(ly) + 0.1
    top, bottom = 50, 270

    def at(x: float, y: float) -> tuple[float, float]:
        px = x0 + (math.log10(x) - xmin) / (xmax - xmin) * PANEL
        py = bottom - (math.log10(y) - ymin) / (ymax - ymin) * (bottom - top)
        return px, py

    out = [_text(x0 + PANEL / 2, 30, title, 13)]
    out.append(
        f'<rect x="{x0}" y="{top}" width="{PANEL}" height="{bottom - top}" fill="none"'
        ' stroke="#999"/>'
    )
    for n, (name, pts) in enumerate(series):
        pts = [p for p in pts if p[0] > 0 and p[1] > 0]
        coords = [at(x, y) for x, y in pts]
        color = COLORS[n % len(COLORS)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for (x, y), (vx, vy) in zip(coords, pts, strict=True):
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
            out.append(_text(x, y - 7, f"{vy:.3g}", 10))
            if n == 0:
                out.append(_text(x, bottom + 15, f"{vx:,.0f}", 10))
        out.append(
            _text(x0 + 5, top + 15 + 14 * n, name, 11, "start").replace(
                "<text", f'<text fill="{color}"'
            )
        )
    return "\n".join(out)


def _bars(x0: float, title: str, bars: list[tuple[str, float]], unit: str) -> str:
    """A bar chart in a PANEL-wide box at x0."""
    top, bottom = 50, 270
    peak = max((v for _, v in bars), default=0) or 1
    width = PANEL / max(len(bars), 1)
    out = [_text(x0 + PANEL / 2, 30, title, 13)]
    for n, (label, value) in enumerate(bars):
        h = value / peak * (bottom - top - 20)
        x = x0 + n * width + width * 0.15
        out.append(
            f'<rect x="{x:.1f}" y="{bottom - h:.1f}" width="{width * 0.7:.1f}" height="{h:.1f}"'
            f' fill="{COLORS[n % len(COLORS)]}"/>'
        )
        out.append(_text(x + width * 0.35, bottom - h - 5, f"{value:,.4g} {unit}", 10))
        out.append(_text(x + width * 0.35, bottom + 15, label, 10))
    return "\n".join(out)


def render(results: dict[str, Any]) -> str:
    """The results of bench/run.py as one SVG document."""
    panels = []
    cycle = results.get("cycle")
    if cycle:
        sizes = cycle["sizes"]
        times = [
            ("total", [(p["runs"], p["seconds"]) for p in sizes]),
            ("evolve", [(p["runs"], p["evolve_seconds"]) for p in sizes]),
            ("load", [(p["runs"], p["load_seconds"]) for p in sizes]),
        ]
        memory = [("RSS", [(p["runs"], p["peak_rss_mib"]) for p in sizes])]
        inc = cycle.get("incremental")
        if inc:  # the 1k-new cycle, drawn at the history size it ran on
            label = f"{inc['added']:,} new"
            times.append((label, [(inc["runs"], inc["seconds"])]))
            memory.append((label, [(inc["runs"], inc["peak_rss_mib"])]))
        title = f"cycle time, s (exponent {cycle['growth_exponent'] or float('nan'):.2f}"
        if cycle.get("incremental_ratio") is not None:
            title += f", new/empty {cycle['incremental_ratio']:.2f}"
        panels.append(_loglog(20, title + ")", times))
        panels.append(_loglog(270, "peak memory, MiB", memory))
    intake = results.get("intake")
    if intake:
        t = intake["throughput"]
        panels.append(
            _bars(
                520,
                f"intake, runs/s (ratio {t['ratio_to_baseline']:.2f})",
                [
                    ("skillforge", t["trajectories_per_s"]),
                    ("baseline", t["baseline_trajectories_per_s"]),
                ],
                "",
            )
        )
        lat = intake["latency"]
        panels.append(
            _bars(
                760,
                "append to stored, ms",
                [
                    ("idle p50", lat["idle"]["median_ms"]),
                    ("idle p95", lat["idle"]["p95_ms"]),
                    ("cycle p50", lat["during_cycle"]["median_ms"]),
                    ("cycle p95", lat["during_cycle"]["p95_ms"]),
                ],
                "",
            )
        )
    body = "\n".join(panels)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}">\n<rect width="100%" height="100%" fill="white"/>\n'
        f"{body}\n</svg>\n"
    )
