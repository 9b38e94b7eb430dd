"""The built site in a real browser: Debian's Chromium, driven by Playwright, offline.

Every page is opened from the site's own origin (so instant navigation works) with every
request to another host recorded and blocked. Skipped when /usr/bin/chromium is missing,
unless the CI environment variable is set: then that is a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from site_support import BuiltSite, built_site_once, page_paths, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
READY = "path => window.dpoSite && window.dpoSite.readyPath === path"
SLIDER_FIGURES = {"/reward-modelling/": "bradley-terry-chosen-reward", "/dpo-loss/": "dpo-loss-margin",
                  "/beta/": "beta-slider"}

if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is required in CI for the browser tests", pytrace=False)
    pytest.skip(f"{CHROMIUM} not found", allow_module_level=True)


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> BuiltSite:
    return built_site_once(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def served(built_site):
    server = serve(built_site)
    yield built_site
    server.shutdown()


@pytest.fixture(scope="module")
def browser(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watched:
    """A page that records console errors and blocks, and records, requests to other hosts."""

    def __init__(self, browser, site: BuiltSite, width: int, color_scheme: str = "light"):
        self.site = site
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=color_scheme)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._route)

    def _route(self, route):
        if route.request.url.startswith(self.site.url):
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort()

    def open(self, path: str) -> None:
        self.page.goto(self.site.url.rstrip("/") + path)
        self.wait_ready(path)

    def wait_ready(self, path: str) -> None:
        self.page.wait_for_function(READY, arg=path, timeout=30_000)

    def close(self) -> None:
        self.context.close()


RENDER_CHECK = """() => {
  const plots = Array.from(document.querySelectorAll('.dpo-figure__plot'));
  const undrawn = plots.filter(d => !d.querySelector('svg.main-svg')).map(d => d.id);
  const math = Array.from(document.querySelectorAll('.md-content .arithmatex'));
  const untypeset = math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60));
  // typeset but drawn too small to read (a CSS clash can collapse an SVG to 1 px)
  const collapsed = math.filter(m => m.offsetParent !== null && m.querySelector('mjx-container svg'))
    .filter(m => m.querySelector('mjx-container svg').getBoundingClientRect().width < 4)
    .map(m => m.textContent.slice(0, 60));
  const clone = document.querySelector('.md-content').cloneNode(true);
  clone.querySelectorAll('pre, code, mjx-container, script').forEach(e => e.remove());
  const text = clone.textContent;
  const raw = ['$$', '\\\\(', '\\\\)', '\\\\[', '\\\\]'].filter(s => text.includes(s));
  // notebook Markdown cells keep Jupyter's $...$: none may be left untypeset
  clone.querySelectorAll('.jp-MarkdownOutput').forEach(m => { if (/\$[^$\s][^$]*\$/.test(m.textContent)) raw.push('$ in ' + m.textContent.slice(0, 40)); });
  return {plots: plots.length, undrawn, math: math.length, untypeset, collapsed, raw,
          overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth};
}"""


def test_every_page_renders_offline_at_phone_width(browser, served):
    """375 px wide: no console error, no foreign request, every figure drawn, every formula typeset."""
    watched = Watched(browser, served, width=375)
    problems = []
    figures = 0
    try:
        for path in page_paths(served):
            watched.open(path)
            state = watched.page.evaluate(RENDER_CHECK)
            figures += state["plots"]
            for key in ("undrawn", "untypeset", "collapsed", "raw"):
                if state[key]:
                    problems.append(f"{path}: {key} {state[key]}")
            if state["overflow"] > 0:
                problems.append(f"{path}: page is {state['overflow']} px wider than a 375 px screen")
    finally:
        watched.close()
    assert figures >= 12
    assert not problems, "\n".join(problems)
    assert not watched.errors, watched.errors
    assert not watched.foreign, watched.foreign


def _drawn(page, figure_id: str) -> str:
    return page.inner_html(f"#plot-{figure_id} .cartesianlayer")


@pytest.mark.parametrize("path", list(SLIDER_FIGURES))
def test_moving_a_slider_changes_the_figure(browser, served, path):
    figure_id = SLIDER_FIGURES[path]
    watched = Watched(browser, served, width=1000)
    try:
        watched.open(path)
        page = watched.page
        before = _drawn(page, figure_id)
        active_before = page.evaluate(f"() => document.getElementById('plot-{figure_id}').layout.sliders[0].active")
        rail = page.locator(f"#plot-{figure_id} .slider-rail-touch-rect")
        moved = "([id, a]) => document.getElementById(id).layout.sliders[0].active !== a"
        for attempt in range(3):  # a busy machine can still be laying the page out
            rail.scroll_into_view_if_needed()
            box = rail.bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.97, box["y"] + box["height"] / 2)
            try:
                page.wait_for_function(moved, arg=[f"plot-{figure_id}", active_before], timeout=5_000)
                break
            except Exception:
                if attempt == 2:
                    raise
        assert _drawn(page, figure_id) != before
        assert not watched.errors, watched.errors
    finally:
        watched.close()


def test_instant_navigation_keeps_maths_and_figures(browser, served):
    """Click through nav links: the page must not reload, and the new page must render."""
    watched = Watched(browser, served, width=1280)
    page = watched.page
    try:
        watched.open("/")
        page.evaluate("() => { window.__sameDocument = true; }")
        for path in ("/conventions/", "/key-insight/", "/dpo-loss/", "/bigger-picture/"):
            page.click(f'nav.md-nav--primary a.md-nav__link[href$="{path.strip("/")}/"]')
            watched.wait_ready(path)
            assert page.evaluate("() => window.__sameDocument === true"), f"{path} was a full page load"
            state = page.evaluate(RENDER_CHECK)
            assert state["math"] > 0 and not state["untypeset"] and not state["collapsed"] and not state["raw"], (path, state)
            assert not state["undrawn"], (path, state)
        # the last page's figures, all drawn after instant navigation (as many as its HTML holds)
        expected = (served.path / "bigger-picture" / "index.html").read_text().count('class="dpo-figure__plot')
        assert expected > 0 and page.evaluate(RENDER_CHECK)["plots"] == expected
        assert not watched.errors, watched.errors
        assert not watched.foreign, watched.foreign
    finally:
        watched.close()


def test_figures_follow_the_palette_toggle(browser, served):
    watched = Watched(browser, served, width=1000)
    page = watched.page
    try:
        watched.open("/dpo-loss/")
        font = "() => document.getElementById('plot-dpo-loss-margin')._fullLayout.font.color"
        light = page.evaluate(font)
        page.click("form[data-md-component=palette] label:visible")
        page.wait_for_function("() => document.body.getAttribute('data-md-color-scheme') === 'slate'")
        page.wait_for_function(f"c => ({font})() !== c", arg=light, timeout=5_000)
        dark = page.evaluate(font)
        assert dark != light
        assert not watched.errors, watched.errors
    finally:
        watched.close()


def test_play_then_pause_the_ppo_animation(browser, served):
    """Pausing interrupts Plotly.animate; that must not surface as a console error."""
    watched = Watched(browser, served, width=1280)
    page = watched.page
    try:
        watched.open("/ppo-problem/")
        buttons = page.locator(".updatemenu-button")
        labels = [buttons.nth(i).text_content() for i in range(buttons.count())]
        play = next(i for i, text in enumerate(labels) if "Play" in text)
        pause = next(i for i, text in enumerate(labels) if "Pause" in text)
        buttons.nth(play).dispatch_event("click")
        page.wait_for_timeout(800)
        buttons.nth(pause).dispatch_event("click")
        page.wait_for_timeout(800)
        assert not watched.errors, watched.errors
    finally:
        watched.close()


def test_mathjax_is_fetched_only_for_formulas_left_in_tex(browser, served):
    """The site's formulas arrive as SVG; MathJax comes only for a notebook's Markdown maths."""
    watched = Watched(browser, served, width=1280)
    fetched = []
    watched.page.on("request", lambda request: fetched.append(request.url.rsplit("/", 1)[-1]))
    try:
        watched.open("/key-insight/")
        assert watched.page.evaluate("document.querySelectorAll('.arithmatex mjx-container svg').length") > 20
        assert "tex-svg.js" not in fetched
        watched.open("/examples/bradley_terry_reward_model/")
        assert "tex-svg.js" in fetched
        assert watched.page.evaluate("document.querySelectorAll('.jp-MarkdownOutput mjx-container').length") >= 3
    finally:
        watched.close()
    assert not watched.errors, watched.errors


def test_formulas_are_typeset_ahead_as_the_browser_would(browser):
    from dpo_ref.site import prerendered_math as pm

    store = pm.typeset(["inline:x^2 + x", r"display:\frac{x}{2} \tag{1}"], browser=browser)
    inline, display = store["formulas"]["inline:x^2 + x"], store["formulas"][r"display:\frac{x}{2} \tag{1}"]
    assert inline.startswith('<mjx-container class="MathJax" jax="SVG"') and 'display="true"' in display
    assert "<defs>" not in inline + display and "ctxtmenu" not in (inline + display).lower()
    assert "<mjx-assistive-mml" in inline  # what a screen reader reads
    used = set(pm._GLYPH_USE.findall(inline + display))
    assert {g.removeprefix(pm.GLYPH_PREFIX) for g in used} == set(store["glyphs"]) and "TEX-I-1D465" in store["glyphs"]
    assert "mjx-container" in store["stylesheet"]
    with pytest.raises(ValueError, match=r"cannot typeset 'inline:\\\\frac\{x'"):
        pm.typeset([r"inline:\frac{x"], browser=browser)
