"""Small SVG charts for Prefect artifacts, as ``data:`` URIs a markdown artifact can show.

Both Prefect UIs render a markdown image whose source is a ``data:image/...`` URI (checked in
the 3.9 bundles: the React UI's markdown ``urlTransform`` keeps ``data:image/`` sources on
``img`` and its sanitizer allows the ``data`` protocol; the Vue UI's DOMPurify keeps data
URIs on ``img``), so the charts travel inside the artifact: nothing to serve, nothing to
expire. Standard library only; plotting libraries are not in the lock and these are two
kinds of chart.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD = 360, 170, 28
COLOURS = ("#6b7280", "#dc2626")  # reference grey, live red


def data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def histograms(title: str, series: Sequence[tuple[str, Sequence[float]]], bins: int = 20) -> str:
    """Overlaid density histograms (outlines) of each ``(label, values)`` on shared bins."""
    values = [v for _, vs in series for v in vs]
    if not values:
        return _frame(title, "", [])
    low, high = min(values), max(values)
    width = (high - low) / bins or 1.0
    densities = []
    for _, vs in series:
        counts = [0] * bins
        for v in vs:
            counts[min(int((v - low) / width), bins - 1)] += 1
        densities.append([c / max(len(vs), 1) for c in counts])
    top = max(max(d) for d in densities) or 1.0
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    paths = []
    for colour, density in zip(COLOURS, densities, strict=False):
        points = []
        for i, share in enumerate(density):
            x0, x1 = PAD + i * plot_w / bins, PAD + (i + 1) * plot_w / bins
            y = HEIGHT - PAD - share / top * plot_h
            points += [f"{x0:.1f},{y:.1f}", f"{x1:.1f},{y:.1f}"]
        paths.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{" ".join(points)}"/>'
        )
    axis = _axis_labels(f"{low:.3g}", f"{high:.3g}")
    return _frame(title, axis + "".join(paths), [label for label, _ in series])


def line(title: str, points: Sequence[tuple[str, float]], label: str) -> str:
    """A line of ``(x label, value)`` points, in order."""
    if not points:
        return _frame(title, "", [])
    values = [v for _, v in points]
    low, high = min(values + [0.0]), max(values) or 1.0
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = plot_w / max(len(points) - 1, 1)
    xy = [
        (PAD + i * step, HEIGHT - PAD - (v - low) / ((high - low) or 1.0) * plot_h)
        for i, (_, v) in enumerate(points)
    ]
    polyline = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLOURS[1]}"/>' for x, y in xy)
    body = (
        _axis_labels(points[0][0], points[-1][0])
        + f'<text x="4" y="{PAD - 4}" font-size="10">{high:.3g}</text>'
        + f'<polyline fill="none" stroke="{COLOURS[1]}" stroke-width="2" points="{polyline}"/>'
        + dots
    )
    return _frame(title, body, [label], colours=COLOURS[1:])


def _axis_labels(left: str, right: str) -> str:
    y = HEIGHT - 8
    return (
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#9ca3af"/>'
        f'<text x="{PAD}" y="{y}" font-size="10">{escape(left)}</text>'
        f'<text x="{WIDTH - PAD}" y="{y}" font-size="10" text-anchor="end">{escape(right)}</text>'
    )


def _frame(title: str, body: str, labels: list[str], colours: Sequence[str] = COLOURS) -> str:
    legend = "".join(
        f'<text x="{WIDTH - PAD}" y="{14 + 12 * i}" font-size="10" text-anchor="end" '
        f'fill="{colour}">{escape(label)}</text>'
        for i, (label, colour) in enumerate(zip(labels, colours, strict=False))
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>'
        f'<text x="{PAD}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>'
        f"{legend}{body}</svg>"
    )
