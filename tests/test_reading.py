"""The section pages as a learner reads them: no table on them is longer than one screen.

A table that needs more than a screen belongs in a collapsed block under the figure it
details (its takeaway stays on the page, see tests/test_site_build.py). Opened in Debian's
Chromium at 1280 x 800 px, light palette, offline.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from site_support import CHROMIUM_ARGS, BuiltSite, built_site_once

from dpo_ref.site.server import CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SECTIONS = [
    "/alignment-problem/",
    "/rlhf-pipeline/",
    "/reward-modelling/",
    "/ppo-problem/",
    "/key-insight/",
    "/dpo-loss/",
    "/beta/",
    "/dpo-vs-rlhf/",
    "/playground/",
    "/experimental-results/",
    "/bigger-picture/",
    "/further-resources/",
]
SCREEN = {"width": 1280, "height": 800}

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is required in CI for the browser tests", pytrace=False)
    pytest.skip(f"{CHROMIUM} not found", allow_module_level=True)


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> BuiltSite:
    return built_site_once(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def page(built_site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=SCREEN)
        context.route(
            "**/*", lambda route: route.continue_() if route.request.url.startswith(built_site.url) else route.abort()
        )
        yield context.new_page()
        browser.close()


# every table the reader sees without opening anything: not in a closed <details>, not in a hidden tab
VISIBLE_TABLE_HEIGHTS = """() => [...document.querySelectorAll('.md-content table')]
  .filter(t => t.getClientRects().length > 0 && !t.closest('details:not([open])'))
  .map(t => ({height: t.getBoundingClientRect().height, head: t.rows[0] ? t.rows[0].innerText.slice(0, 60) : ''}))"""


@pytest.mark.parametrize("path", SECTIONS)
def test_no_table_is_longer_than_a_screen(page, built_site, path):
    page.goto(built_site.url + path.lstrip("/"), wait_until="load")
    tables = page.evaluate(VISIBLE_TABLE_HEIGHTS)
    too_long = [t for t in tables if t["height"] > SCREEN["height"]]
    assert not too_long, f"{path}: tables taller than a {SCREEN['height']} px screen: {too_long}"


def test_a_long_table_counts_once_its_block_is_open(page, built_site):
    """The check sees a table when its collapsed block is opened: the 28-row variants table is taller than a screen."""
    page.goto(built_site.url + "bigger-picture/", wait_until="load")
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    heights = [t["height"] for t in page.evaluate(VISIBLE_TABLE_HEIGHTS)]
    assert max(heights) > SCREEN["height"]
