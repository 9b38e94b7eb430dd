"""The web-quality bench (benchmarks/web_quality.py) and the gzip server it measures through."""

from __future__ import annotations

import gzip
import urllib.request

from benchmarks import web_quality
from dpo_ref.site.server import serve_directory


def test_the_server_gzips_text_only_when_asked(tmp_path):
    (tmp_path / "page").mkdir()
    (tmp_path / "page" / "index.html").write_text("<p>" + "hello " * 500 + "</p>")
    (tmp_path / "image.png").write_bytes(b"\x89PNG" + bytes(300))
    with serve_directory(tmp_path, gzip=True) as base:
        asked = urllib.request.Request(base + "page/", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(asked) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(response.read()).decode().startswith("<p>hello")
        with urllib.request.urlopen(base + "page/") as response:  # not asked: sent as it is
            assert response.headers["Content-Encoding"] is None and response.read().startswith(b"<p>hello")
        png = urllib.request.Request(base + "image.png", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(png) as response:
            assert response.headers["Content-Encoding"] is None and response.read()[:4] == b"\x89PNG"


def test_axe_summary_counts_blocking_violations_by_rule():
    results = {
        "light": {"/": [{"id": "color-contrast", "impact": "serious"}], "/a/": []},
        "dark": {"/": [{"id": "region", "impact": "moderate"}], "/a/": [{"id": "color-contrast", "impact": "serious"}]},
    }
    summary = web_quality.axe_summary(results)
    assert summary["pages_checked"] == 4 and summary["pages_with_blocking"] == 2
    assert summary["blocking"] == {"color-contrast": ["/ (light)", "/a/ (dark)"]}
    assert summary["violations_by_impact"]["moderate"] == 1


def test_table_rows_hold_the_lowest_score_against_its_goal():
    web = {
        "lighthouse": {"status": "ok", "pages": {
            "/": {"performance": 97, "accessibility": 100, "total_blocking_time_ms": 20.0},
            "/beta/": {"performance": 88, "accessibility": 100, "total_blocking_time_ms": 310.0},
        }},
        "axe": {"status": "not measured", "reason": "npm not found"},
    }  # fmt: skip
    rows = {r["figure"].split(",")[0]: r for r in web_quality.table_rows(web)}
    perf = rows["Lighthouse performance (mobile"]
    assert perf["measured"] == "88" and perf["met"] is False and "/beta/" in perf["figure"]
    assert rows["Lighthouse accessibility (mobile"]["met"] is True
    assert rows["axe-core WCAG 2.1 A/AA"]["measured"] == "not measured (npm not found)"
