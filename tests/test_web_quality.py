"""The web-quality bench (benchmarks/web_quality.py) and the gzip server it measures through."""

from __future__ import annotations

import gzip
import urllib.request

import pytest

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
        "lighthouse": {
            "status": "ok",
            "pages": {
                "/": {
                    "performance": 97,
                    "accessibility": 100,
                    "total_blocking_time_ms": 20.0,
                    "transfer_bytes": 310_000,
                },
                "/beta/": {
                    "performance": 88,
                    "accessibility": 100,
                    "total_blocking_time_ms": 310.0,
                    "transfer_bytes": 1_200_000,
                },
            },
        },
        "axe": {"status": "not measured", "reason": "npm not found"},
    }
    rows = {r["figure"].split(",")[0]: r for r in web_quality.table_rows(web)}
    perf = rows["Lighthouse performance (mobile"]
    assert perf["measured"] == "88" and perf["met"] is False and "/beta/" in perf["figure"]
    assert rows["Lighthouse accessibility (mobile"]["met"] is True
    assert rows["axe-core WCAG 2.1 A/AA"]["measured"] == "not measured (npm not found)"
    transfer = rows["first load's transfer (gzip)"]
    assert transfer["measured"] == "1.20 MB" and transfer["met"] is False and "(/beta/)" in transfer["figure"]
    web["lighthouse"]["pages"]["/beta/"]["transfer_bytes"] = 999_000
    rows = {r["figure"].split(",")[0]: r for r in web_quality.table_rows(web)}
    assert rows["first load's transfer (gzip)"]["met"] is True


def test_every_page_of_the_built_site_is_measured(tmp_path, monkeypatch):
    """Lighthouse and axe get the pages found in the built site, not a list typed into the bench."""
    for page in ("", "beta", "examples/dpo_from_scratch", "assets/x", "search"):
        (tmp_path / page).mkdir(parents=True, exist_ok=True)
        (tmp_path / page / "index.html").write_text("<p>page</p>")
    pages = ["/", "/beta/", "/examples/dpo_from_scratch/"]
    asked: list[str] = []

    def fake_lighthouse(url, tools):
        asked.append(url.split("/", 3)[3])  # the path after http://host:port/
        return {"performance": 95, "accessibility": 100, "total_blocking_time_ms": 0.0, "transfer_bytes": 1000}

    monkeypatch.setattr(web_quality, "CHROMIUM", __file__)  # any file that exists: no browser is started
    monkeypatch.setattr(web_quality, "lighthouse", fake_lighthouse)
    monkeypatch.setattr(
        web_quality, "axe_pages", lambda site_dir, tools: {"light": dict.fromkeys(web_quality.page_paths(site_dir), [])}
    )
    result = web_quality.measure(tmp_path, repeats=2, log=lambda message: None)
    assert sorted(result["lighthouse"]["pages"]) == sorted(pages)
    assert sorted(asked) == sorted(2 * ["", "beta/", "examples/dpo_from_scratch/"])
    assert sorted(result["axe"]["pages"]["light"]) == sorted(pages)


def test_a_failed_lighthouse_run_is_tried_again(monkeypatch):
    outcomes = [RuntimeError("lighthouse x failed:\nthe page stopped responding"), {"performance": 97}]

    def flaky(url, tools):
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    logged: list[str] = []
    monkeypatch.setattr(web_quality, "lighthouse", flaky)
    assert web_quality.lighthouse_retried("http://h/x/", log=logged.append) == {"performance": 97}
    assert "stopped responding" in logged[0]
    monkeypatch.setattr(web_quality, "lighthouse", lambda url, tools: (_ for _ in ()).throw(RuntimeError("down")))
    with pytest.raises(RuntimeError, match="down"):
        web_quality.lighthouse_retried("http://h/x/", attempts=2, log=logged.append)
