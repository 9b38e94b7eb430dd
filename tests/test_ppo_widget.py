"""The PPO animation on /ppo-problem/, clicked in a real browser: Play, Pause, Reset, New run.

The widget is Plotly's own controls (dpo_ref/figures/measured/ppo.py); this checks what
each button changes on screen, in the built site, with no console error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from site_support import BuiltSite, built_site_once

from dpo_ref.site.server import CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is required in CI for the browser tests", pytrace=False)
    pytest.skip(f"{CHROMIUM} not found", allow_module_level=True)

PLOT = "document.getElementById('plot-measured-ppo-runs')"
STATE = f"""() => {{ const gd = {PLOT}; return {{
    shown: gd.data.map((t, i) => t.visible === true ? i : -1).filter(i => i >= 0),
    points: gd.data.map(t => t.x.length),
    newRun: gd.layout.updatemenus.map((m, i) => m.visible === false ? -1 : i).filter(i => i > 0) }}; }}"""


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    site: BuiltSite = built_site_once(tmp_path_factory.getbasetemp())  # served from its own port since it was built
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 390, "height": 900})
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(site.url + "ppo-problem/#measured-ppo-runs")
        page.locator("#plot-measured-ppo-runs").scroll_into_view_if_needed()
        page.wait_for_function(f"() => {PLOT} && {PLOT}.data !== undefined", timeout=20_000)
        yield page, errors
        browser.close()


def click(page, label: str) -> None:
    """Click the visible button whose text starts with ``label`` (hidden New run buttons stay in the DOM)."""
    buttons = page.locator("#plot-measured-ppo-runs g.updatemenu-button").filter(has_text=label)
    visible = [buttons.nth(i) for i in range(buttons.count()) if buttons.nth(i).is_visible()]
    assert len(visible) == 1, f"{len(visible)} visible {label!r} buttons"
    visible[0].click()
    page.wait_for_timeout(400)


def test_reset_play_pause_and_new_run(page):
    page, errors = page
    start = page.evaluate(STATE)
    full = max(start["points"])
    assert start["shown"] == [0, 1, 2] and start["newRun"] == [1]  # the first seed's run, whole

    click(page, "⟲ Reset")
    assert set(page.evaluate(STATE)["points"]) == {1}  # back to the first evaluation

    click(page, "▶ Play")
    page.wait_for_function(f"() => {PLOT}.data[0].x.length === {full}", timeout=10_000)

    click(page, "⟲ Reset")
    click(page, "▶ Play")
    click(page, "❚❚ Pause")
    paused = page.evaluate(STATE)["points"][0]
    page.wait_for_timeout(800)
    assert page.evaluate(STATE)["points"][0] == paused  # Pause holds the run where it is

    runs = len(page.evaluate(f"() => {PLOT}.data")) // 3
    for k in range(1, runs + 1):  # New run shows each seed's run in turn, then the first again
        click(page, "New run")
        state = page.evaluate(STATE)
        following = k % runs
        assert state["shown"] == [3 * following, 3 * following + 1, 3 * following + 2]
        assert state["newRun"] == [1 + following]
    assert not errors, errors
