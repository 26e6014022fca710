"""The artifact charts are well-formed SVG inside data URIs."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

from core import charts


def decode(uri: str) -> ET.Element:
    prefix = "data:image/svg+xml;base64,"
    assert uri.startswith(prefix)
    return ET.fromstring(base64.b64decode(uri[len(prefix) :]))


def test_histograms_draw_one_outline_per_series() -> None:
    svg = decode(
        charts.data_uri(
            charts.histograms("bmi <drift>", [("ref", [0.0, 1.0, 1.0]), ("live", [2.0, 3.0])])
        )
    )
    assert len(svg.findall("{http://www.w3.org/2000/svg}polyline")) == 2


def test_line_and_empty_charts_render() -> None:
    decode(charts.data_uri(charts.line("rmse", [("a", 50.0), ("b", 55.0)], "RMSE")))
    decode(charts.data_uri(charts.histograms("empty", [("ref", [])])))
    decode(charts.data_uri(charts.line("empty", [], "RMSE")))
