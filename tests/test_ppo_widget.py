"""The PPO animation on /ppo-problem/, clicked in a real browser: Play, Pause, Reset, Next run.

The widget is Plotly's own controls (dpo_ref/figures/measured/ppo.py); this checks what
each button changes on screen, in the built site, with no console error: a run long
enough to watch, Play at the end starting it again, and a Next run button that names
the seed the legend shows.
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
# The seed named by the visible Next run button, and the seeds named in the legend of the shown traces
LABELS = f"""() => {{ const gd = {PLOT};
    const menu = gd.layout.updatemenus.find((m, i) => i > 0 && m.visible !== false);
    return {{ button: menu.buttons[0].label, legend: gd.data.filter(t => t.visible === true).map(t => t.name) }}; }}"""
PLAY_SECONDS = 8  # dpo_ref.figures.measured.ppo.PLAY_SECONDS, written here independently


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
    """Click the visible button whose text holds ``label`` (hidden Next run buttons stay in the DOM)."""
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
    for k in range(1, runs + 1):  # Next run shows each seed's run in turn, then the first again
        click(page, "next run")
        state = page.evaluate(STATE)
        following = k % runs
        assert state["shown"] == [3 * following, 3 * following + 1, 3 * following + 2]
        assert state["newRun"] == [1 + following]
    assert not errors, errors


def test_the_run_is_long_enough_to_watch_and_play_at_the_end_starts_again(page):
    page, errors = page
    full = page.evaluate(f"() => {PLOT}.layout.sliders[0].steps.length")  # a step per frame, the last the whole run
    assert full >= 25  # one frame per evaluation of the run, not seven
    page.evaluate(f"""() => {{ window.__frameTimes = [];
        {PLOT}.on('plotly_animatingframe', () => window.__frameTimes.push(performance.now())); }}""")
    click(page, "⟲ Reset")
    page.evaluate("() => { window.__frameTimes = []; }")
    click(page, "▶ Play")
    page.wait_for_function(f"() => {PLOT}.data[0].x.length === {full}", timeout=30_000)
    times = page.evaluate("window.__frameTimes")
    # every evaluation is a frame, and they take seconds, not the 2 s of the first version
    assert len(times) >= full - 1 and (times[-1] - times[0]) / 1000 >= 0.75 * PLAY_SECONDS
    click(page, "▶ Play")  # at the end: the run starts again from its first step ...
    page.wait_for_function(f"() => {PLOT}.data[0].x.length < {full // 2}", timeout=10_000)
    page.wait_for_function(f"() => {PLOT}.data[0].x.length === {full}", timeout=30_000)  # ... and plays through
    assert not errors, errors


def test_the_next_run_button_names_the_seed_the_legend_shows(page):
    page, errors = page
    runs = len(page.evaluate(f"() => {PLOT}.data")) // 3
    for _ in range(runs):
        labels = page.evaluate(LABELS)
        seeds = {name.rsplit("seed ", 1)[1] for name in labels["legend"]}
        assert len(seeds) == 1, labels  # one run on screen
        assert labels["button"].startswith(f"Seed {seeds.pop()} "), labels
        click(page, "next run")
    assert not errors, errors
