"""The built site in a real browser: Debian's Chromium, driven by Playwright, offline.

Every page is opened from the site's own origin with every request to another host
recorded and blocked. Skipped when Chromium is missing, unless the CI environment
variable is set: then that is a failure. No test waits a fixed time: each waits for the
state it needs (the page's own ``window.dpoSite``, a network request, a Plotly event).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from site_support import CHROMIUM_ARGS, BuiltSite, built_site_once, page_paths

from dpo_ref.site.prerendered_figures import VIEW_SUFFIX
from dpo_ref.site.server import CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

READY = "path => window.dpoSite && window.dpoSite.readyPath === path"
SLIDER_FIGURES = {
    "/reward-modelling/": "bradley-terry-chosen-reward",
    "/dpo-loss/": "dpo-loss-margin",
    "/beta/": "beta-slider",
    "/dpo-vs-rlhf/": "dpo-vs-rlhf-paths",
}

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is required in CI for the browser tests", pytrace=False)
    pytest.skip(f"{CHROMIUM} not found", allow_module_level=True)


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> BuiltSite:
    return built_site_once(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def served(built_site):
    return built_site  # served from its own port since it was built (site_support)


@pytest.fixture(scope="module")
def browser(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watched:
    """A page that records console errors and blocks, and records, requests to other hosts."""

    def __init__(self, browser, site: BuiltSite, width: int, color_scheme: str = "light", height: int = 900):
        self.site = site
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.requested: list[str] = []
        self.context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=color_scheme)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._route)

    def _route(self, route):
        if route.request.url.startswith(self.site.url):
            self.requested.append(route.request.url)
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort()

    def open(self, path: str) -> None:
        self.page.goto(self.site.url.rstrip("/") + path)
        self.wait_ready(path)

    def wait_ready(self, path: str) -> None:
        self.page.wait_for_function(READY, arg=path, timeout=30_000)

    def make_live(self, figure_id: str) -> None:
        """Touch a figure drawn ahead of time, as a reader would, and wait for Plotly to take over."""
        self.page.hover(f"#figure-{figure_id}")
        self.page.wait_for_function(
            "id => document.getElementById(id).classList.contains('dpo-figure__plot--live')",
            arg=f"plot-{figure_id}",
            timeout=30_000,
        )

    def settled(self) -> None:
        """Let whatever the last action queued run (promise callbacks, a frame, a task): an
        error it raises is then in ``errors``. Ordering, not time."""
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))")

    def close(self) -> None:
        self.context.close()


RENDER_CHECK = """() => {
  const plots = Array.from(document.querySelectorAll('.dpo-figure__plot'));
  // drawn: Plotly's drawing, or the first view drawn ahead of time, over the plot box;
  // pending: a first view kept in a file of its own (data-src), until the reader nears it
  const first = d => d.parentElement.querySelector(':scope > .dpo-figure__static');
  const drawn = d => d.querySelector('svg.main-svg') || (first(d) && first(d).querySelector('svg'));
  const pending = plots.filter(d => !drawn(d) && first(d) && first(d).dataset.src).map(d => d.id);
  const undrawn = plots.filter(d => !drawn(d) && !pending.includes(d.id)).map(d => d.id);
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
  clone.querySelectorAll('.jp-MarkdownOutput').forEach(m => { if (/\\$[^$\\s][^$]*\\$/.test(m.textContent)) raw.push('$ in ' + m.textContent.slice(0, 40)); });
  return {plots: plots.length, undrawn, pending, math: math.length, untypeset, collapsed, raw,
          overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth};
}"""


# Every display formula, every content tab shown: the formula's drawing (its glyphs and
# its equation number) must lie inside its box, and the box must not scroll.
FORMULA_FIT = """() => {
  const out = [];
  for (const box of document.querySelectorAll('.md-content div.arithmatex')) {
    if (box.offsetParent === null) continue;
    const frame = box.getBoundingClientRect();
    const parts = Array.from(box.querySelectorAll('[data-mml-node="math"], svg[data-labels="true"], svg[data-table="true"]'));
    const tex = (box.querySelector('mjx-assistive-mml') || box).textContent.replace(/\\s+/g, ' ').slice(0, 70);
    if (box.scrollWidth > box.clientWidth + 1) out.push({tex, why: `scrolls: ${box.scrollWidth} px in ${box.clientWidth}`});
    for (const part of parts) {
      const r = part.getBoundingClientRect();
      if (r.width === 0) continue;
      if (r.left < frame.left - 1 || r.right > frame.right + 1) {
        out.push({tex, why: `${part.tagName} ${Math.round(r.left - frame.left)}..${Math.round(r.right - frame.left)} px ` +
                            `outside 0..${Math.round(frame.width)}`});
      }
    }
    const labels = box.querySelectorAll('svg[data-labels="true"]');
    for (const label of labels) {
      const r = label.getBoundingClientRect();
      if (r.right > Math.min(frame.right, window.innerWidth) + 1) out.push({tex, why: 'equation number cut off'});
    }
  }
  return out;
}"""
SHOW_EVERY_TAB = ".md-typeset .tabbed-set > .tabbed-content > .tabbed-block { display: block !important; }"


def test_every_page_renders_offline_and_its_formulas_fit(browser, served):
    """Every page, opened at a phone's width (390 px): no console error, no foreign request,
    every figure drawn, every formula typeset, nothing wider than the screen. Then, content
    tabs shown, at 390 and at 1280 px: no display formula is cut off or scrolls sideways,
    equation numbers included."""
    watched = Watched(browser, served, width=390)
    page = watched.page
    problems, figures, seen = [], 0, 0
    try:
        for path in page_paths(served):
            page.set_viewport_size({"width": 390, "height": 900})
            watched.open(path)
            state = page.evaluate(RENDER_CHECK)
            figures += state["plots"]
            for key in ("undrawn", "untypeset", "collapsed", "raw"):
                if state[key]:
                    problems.append(f"{path}: {key} {state[key]}")
            if state["overflow"] > 0:
                problems.append(f"{path}: page is {state['overflow']} px wider than a 390 px screen")
            page.add_style_tag(content=SHOW_EVERY_TAB)
            seen += page.evaluate("document.querySelectorAll('.md-content div.arithmatex').length")
            for width in (390, 1280):
                page.set_viewport_size({"width": width, "height": 900})
                watched.settled()  # laid out again at the new width
                problems += [f"{path} at {width} px: {p['why']}: {p['tex']}" for p in page.evaluate(FORMULA_FIT)]
    finally:
        watched.close()
    assert figures >= 12 and seen >= 30
    assert not problems, "\n".join(problems)
    assert not watched.errors, watched.errors
    assert not watched.foreign, watched.foreign


def test_figures_appear_without_plotly_and_come_alive_when_touched(browser, served):
    """A page's figures arrive drawn (SVG); plotly.js is fetched only once the reader reaches one."""
    watched = Watched(browser, served, width=1280)
    page = watched.page
    try:
        watched.open("/dpo-loss/")
        page.locator("#figure-dpo-loss-margin .dpo-figure__static svg.dpo-static-svg:visible").wait_for()
        label = page.get_attribute("#figure-dpo-loss-margin .dpo-figure__svg--wide svg", "aria-label")
        assert label and "margin" in label  # a text alternative, from the figure's own labels
        assert not any("plotly" in url for url in watched.requested)
        watched.make_live("dpo-loss-margin")
        assert any("plotly-basic.min.js" in url for url in watched.requested)
        assert page.locator("#figure-dpo-loss-margin .dpo-figure__static").count() == 0
        assert page.locator("#plot-dpo-loss-margin .slider-rail-touch-rect").count() == 2  # the two rewards
        assert not watched.errors, watched.errors
    finally:
        watched.close()


def _drawn(page, figure_id: str) -> str:
    return page.inner_html(f"#plot-{figure_id} .cartesianlayer")


def _click_slider(watched: Watched, figure_id: str, index: int, fraction: float) -> None:
    """Click slider ``index`` of a live figure at ``fraction`` of its rail; wait until it moved."""
    page = watched.page
    before = page.evaluate(
        "([id, i]) => document.getElementById(id).layout.sliders[i].active", [f"plot-{figure_id}", index]
    )
    rail = page.locator(f"#plot-{figure_id} .slider-rail-touch-rect").nth(index)
    rail.scroll_into_view_if_needed()
    box = rail.bounding_box()
    page.mouse.click(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "([id, i, a]) => document.getElementById(id).layout.sliders[i].active !== a",
        arg=[f"plot-{figure_id}", index, before],
        timeout=10_000,
    )


@pytest.mark.parametrize("path", list(SLIDER_FIGURES))
def test_moving_a_slider_changes_the_figure(browser, served, path):
    figure_id = SLIDER_FIGURES[path]
    watched = Watched(browser, served, width=1000)
    try:
        watched.open(path)
        watched.make_live(figure_id)
        before = _drawn(watched.page, figure_id)
        _click_slider(watched, figure_id, 0, 0.97)
        watched.settled()
        assert _drawn(watched.page, figure_id) != before
        assert not watched.errors, watched.errors
    finally:
        watched.close()


def test_bradley_terry_has_a_slider_for_each_reward(browser, served):
    """Moving the rejected answer's reward changes the probability and the loss shown."""
    watched = Watched(browser, served, width=1000)
    figure_id = "bradley-terry-chosen-reward"
    text = (
        f"() => Array.from(document.querySelectorAll('#plot-{figure_id} .textpoint')).map(t => t.textContent).join('|')"
    )
    try:
        watched.open("/reward-modelling/")
        watched.make_live(figure_id)
        page = watched.page
        assert page.evaluate(f"document.getElementById('plot-{figure_id}').layout.sliders.length") == 2
        before = page.evaluate(text)
        _click_slider(watched, figure_id, 1, 0.97)  # the rejected reward to its largest value
        page.wait_for_function(f"b => ({text})() !== b", arg=before, timeout=10_000)
        after = page.evaluate(text)
        assert "P = " in after and "loss = " in after and after != before
        _click_slider(watched, figure_id, 0, 0.97)  # the chosen reward up as well: P rises again
        page.wait_for_function(f"b => ({text})() !== b", arg=after, timeout=10_000)
        assert not watched.errors, watched.errors
    finally:
        watched.close()


def test_implicit_rewards_have_a_slider_each(browser, served):
    """The DPO loss figure: the chosen reward moves the pair right, the rejected one left."""
    watched = Watched(browser, served, width=1000)
    figure_id = "dpo-loss-margin"
    margin = f"() => document.getElementById('plot-{figure_id}').data[2].x[0]"  # the pair on the loss curve
    readout = f"() => document.getElementById('plot-{figure_id}').data[4].text[0]"
    try:
        watched.open("/dpo-loss/")
        watched.make_live(figure_id)
        page = watched.page
        assert page.evaluate(f"document.getElementById('plot-{figure_id}').layout.sliders.length") == 2
        assert page.evaluate(margin) == 0 and page.evaluate(readout) == "loss = 0.693"  # the reference
        _click_slider(watched, figure_id, 0, 0.97)  # the chosen reward to its largest value
        page.wait_for_function(f"() => ({margin})() > 3", timeout=10_000)
        raised = page.evaluate(margin)
        _click_slider(watched, figure_id, 1, 0.97)  # the rejected reward as high: the margin closes
        page.wait_for_function(f"m => ({margin})() < m", arg=raised, timeout=10_000)
        assert page.evaluate(margin) == 0 and page.evaluate(readout) == "loss = 0.693"
        assert not watched.errors, watched.errors
    finally:
        watched.close()


# Equations (1) and (2) as laid out on the page: the version shown (one line, or broken
# over lines for a phone), the tables of its drawing, whether it fits its box.
SHOWN_EQUATIONS = """() => Array.from(document.querySelectorAll('.dpo-eq')).filter(e => e.offsetParent !== null).map(e => {
  const box = e.querySelector('div.arithmatex');
  return {wide: e.classList.contains('dpo-eq--wide'), tables: box.querySelectorAll('[data-mml-node="mtable"]').length,
          fits: box.scrollWidth <= box.clientWidth + 1};
})"""


@pytest.mark.parametrize("width", [1280, 768, 390])
def test_reward_model_equations_use_the_width_they_have(browser, served, width):
    """(1) and (2) on one line where there is room for it; broken over lines only on a phone."""
    watched = Watched(browser, served, width=width)
    try:
        watched.open("/reward-modelling/")
        shown = watched.page.evaluate(SHOWN_EQUATIONS)
        assert len(shown) == 2, shown  # one version of each equation, never both
        for eq in shown:
            assert eq["fits"], shown
            # the equation number makes one table; a formula broken over lines holds a second
            assert eq["wide"] == (width >= 600) and eq["tables"] == (1 if eq["wide"] else 2), shown
        assert not watched.errors, watched.errors
    finally:
        watched.close()


# Where an element is on the page (not on the screen), rounded to a tenth of a pixel.
PAGE_BOX = """el => { const r = el.getBoundingClientRect();
  return [r.left + scrollX, r.top + scrollY, r.width, r.height].map(v => Math.round(v * 10) / 10); }"""


@pytest.mark.parametrize("width", [1280, 390])
def test_the_derivation_is_a_stepper_with_every_step_in_view(browser, served, width):
    """Every step's tab on screen; Previous and Next in step with the tabs, and in the same
    place at every step (they moved by up to 118 px, the page's only layout shift)."""
    watched = Watched(browser, served, width=width)
    page = watched.page
    try:
        watched.open("/key-insight/")
        labels = page.locator(".dpo-stepper .tabbed-labels > label")
        assert labels.count() == 8
        for i in range(8):  # every step's tab on screen, none hidden behind a scroll
            box = labels.nth(i).bounding_box()
            assert box and box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= width, (i, box)
        where = page.locator(".dpo-stepper__where")
        nxt, prev = (
            page.locator(".dpo-stepper__button", has_text="Next"),
            page.locator(".dpo-stepper__button", has_text="Previous"),
        )
        after = page.locator(".dpo-stepper + *")  # what follows the stepper on the page
        assert where.text_content() == "Step 1 of 8" and prev.is_disabled()
        shown = (
            "() => Array.from(document.querySelectorAll('.dpo-stepper .tabbed-content > .tabbed-block'))"
            ".findIndex(b => getComputedStyle(b).visibility === 'visible')"
        )

        def place() -> str:  # both buttons' boxes, and the top of what follows the stepper
            return repr([nxt.evaluate(PAGE_BOX), prev.evaluate(PAGE_BOX), after.evaluate(PAGE_BOX)[1]])

        places = {place()}
        heights = set()
        for step in range(2, 9):
            nxt.click()
            assert where.text_content() == f"Step {step} of 8"
            assert page.evaluate(shown) == step - 1
            places.add(place())
            block = page.locator(".dpo-stepper .tabbed-content > .tabbed-block").nth(step - 1)
            heights.add(block.evaluate("b => Math.round(b.scrollHeight)"))
        # the steps differ in height, yet both buttons and the text below stay where they were
        assert len(heights) > 1 and len(places) == 1, places
        assert nxt.is_disabled()
        prev.click()
        assert where.text_content() == "Step 7 of 8" and page.evaluate(shown) == 6
        labels.nth(2).click()  # the tab strip and the buttons agree
        assert where.text_content() == "Step 3 of 8"
        assert not watched.errors, watched.errors
    finally:
        watched.close()


def test_the_stepper_shifts_nothing_while_the_page_loads(browser, served):
    """The buttons arrive with the page script: the room for them is kept from the start."""
    watched = Watched(browser, served, width=1280)
    page = watched.page
    try:
        page.add_init_script("""window.__shifts = [];
            new PerformanceObserver(list => list.getEntries().forEach(e => { if (!e.hadRecentInput) window.__shifts.push(e.value); }))
              .observe({type: 'layout-shift', buffered: true});""")
        watched.open("/key-insight/")
        watched.settled()
        assert page.locator(".dpo-stepper__nav").count() == 1
        assert page.evaluate("window.__shifts.reduce((a, b) => a + b, 0)") < 0.01
    finally:
        watched.close()


# The open tab's details on screen: their top below the sticky header and in the upper
# half of the window (so a good part of them shows), the page no longer scrolling.
DETAILS_IN_VIEW = """() => {
  const input = document.querySelector('.tabbed-set > input:checked');
  const block = input.parentElement.querySelector(':scope > .tabbed-content > .tabbed-block:nth-child(' +
    (Array.from(input.parentElement.querySelectorAll(':scope > input')).indexOf(input) + 1) + ')');
  const header = document.querySelector('.md-header').getBoundingClientRect().bottom;
  const top = block.getBoundingClientRect().top;
  const still = window.__lastY === scrollY;
  window.__lastY = scrollY;
  return still && top >= header && top < innerHeight / 2;
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_pipeline_stage_boxes_open_their_details(browser, served, width):
    watched = Watched(browser, served, width=width)
    page = watched.page
    try:
        watched.open("/rlhf-pipeline/")
        boxes = page.locator("button.dpo-pipeline__stage")
        names = [boxes.nth(i).get_attribute("data-dpo-tab") for i in range(boxes.count())]
        assert len(names) == 5 and len(set(names)) == 4  # SFT appears in both pipelines
        checked = (
            "() => { const i = document.querySelector('.tabbed-set > input:checked'); "
            "return document.querySelector(`label[for='${i.id}']`).textContent.trim(); }"
        )
        for i in reversed(range(boxes.count())):
            page.evaluate("window.scrollTo(0, 0)")
            boxes.nth(i).click()
            assert page.evaluate(checked) == names[i]
            assert boxes.nth(i).get_attribute("aria-pressed") == "true"
            # the details scroll into view (smoothly): wait until they are on screen and still
            page.wait_for_function(DETAILS_IN_VIEW, polling=100, timeout=10_000)
        assert not watched.errors, watched.errors
    finally:
        watched.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_alignment_tabs_keep_one_height(browser, served, width):
    """Switching the example shown changes the text, not the height: nothing below moves."""
    watched = Watched(browser, served, width=width)
    page = watched.page
    try:
        watched.open("/alignment-problem/")
        tabs = page.locator(".tabbed-set:has(.dpo-pair)")
        labels = tabs.locator(":scope > .tabbed-labels > label")
        after = page.locator(".tabbed-set:has(.dpo-pair) + *")
        assert labels.count() >= 3
        seen, boxes = set(), set()
        for i in range(labels.count()):
            labels.nth(i).click()
            shown = tabs.locator(":scope > .tabbed-content > .tabbed-block").nth(i)
            assert shown.evaluate("b => getComputedStyle(b).visibility") == "visible"
            seen.add(shown.inner_text())
            boxes.add(repr(tabs.evaluate(PAGE_BOX)[1:] + after.evaluate(PAGE_BOX)[1:2]))
        assert len(seen) == labels.count() and len(boxes) == 1, boxes
        assert not watched.errors, watched.errors
    finally:
        watched.close()


def test_each_benchmark_tab_shows_the_papers_numbers(browser, served):
    watched = Watched(browser, served, width=1280)
    page = watched.page
    try:
        watched.open("/experimental-results/")
        charts = page.locator(".tabbed-set .dpo-figure[id^='figure-paper-']")
        assert charts.count() >= 2
        for i in range(charts.count()):
            chart = charts.nth(i)
            block = chart.locator("xpath=ancestor::div[contains(@class, 'tabbed-block')]")
            index = block.evaluate("b => Array.from(b.parentElement.children).indexOf(b)")
            labels = block.locator("xpath=../../div[contains(@class, 'tabbed-labels')]/label")
            labels.nth(index).click()
            assert chart.is_visible() and chart.bounding_box()["width"] > 300
            assert "win rate" in (chart.get_attribute("aria-label") or "")
        assert not watched.errors, watched.errors
    finally:
        watched.close()


def test_first_views_far_down_arrive_when_the_reader_nears_them(browser, served):
    """On a long page, the first views of figures far down are fetched only when the reader
    comes within a screen of them; a window tall enough to show the whole page gets every
    one of them, drawn, without plotly.js."""

    def views(watched: Watched) -> list[str]:
        return [url for url in watched.requested if url.endswith(VIEW_SUFFIX)]

    watched = Watched(browser, served, width=390)
    page = watched.page
    try:
        watched.open("/experimental-results/")
        state = page.evaluate(RENDER_CHECK)
        lazy = page.evaluate("document.querySelectorAll('.dpo-figure__static[data-src]').length")
        assert lazy >= 5 and state["pending"] and not state["undrawn"], state
        assert len(views(watched)) < lazy  # the ones far down are not fetched
    finally:
        watched.close()
    watched = Watched(browser, served, width=390, height=30_000)
    page = watched.page
    try:
        watched.open("/experimental-results/")
        shown = (
            "() => Array.from(document.querySelectorAll('.dpo-figure__static[data-src]')).filter(b => b.offsetParent)"
        )
        assert page.evaluate(f"({shown})().length") >= 4
        page.wait_for_function(f"() => ({shown})().every(b => b.querySelector('svg.dpo-static-svg'))", timeout=10_000)
        assert not any("plotly" in url for url in watched.requested)
        assert len(views(watched)) >= 4
        assert not watched.errors, watched.errors
    finally:
        watched.close()


def test_following_links_keeps_maths_and_figures(browser, served):
    """Click through nav links: each new page arrives with its maths typeset and its figures drawn."""
    watched = Watched(browser, served, width=1280)
    page = watched.page
    try:
        watched.open("/")
        for path in ("/conventions/", "/key-insight/", "/dpo-loss/", "/bigger-picture/"):
            page.click(f'nav.md-nav--primary a.md-nav__link[href$="{path.strip("/")}/"]')
            page.wait_for_url(f"**{path}")
            watched.wait_ready(path)
            state = page.evaluate(RENDER_CHECK)
            assert state["math"] > 0 and not state["untypeset"] and not state["collapsed"] and not state["raw"], (
                path,
                state,
            )
            assert not state["undrawn"], (path, state)
        # the last page's figures, all drawn (as many as its HTML holds), and one comes alive
        expected = (served.path / "bigger-picture" / "index.html").read_text().count('class="dpo-figure__plot')
        assert expected > 0 and page.evaluate(RENDER_CHECK)["plots"] == expected
        watched.make_live("variant-cdpo")
        assert not watched.errors, watched.errors
        assert not watched.foreign, watched.foreign
    finally:
        watched.close()


SEARCH_INDEX = "search/search_index.json"


def test_search_index_waits_until_the_reader_searches(browser, served):
    """Loading a page does not fetch the search index (theme/main.html holds Material's
    request back); opening search does, by the header's button on a phone or by the
    keyboard shortcut on a desktop, and a query then finds the page it should."""
    query = 'input[data-md-component="search-query"]'
    results = ".md-search-result__list a[href]"

    def index_requests(watched):
        return [url for url in watched.requested if url.endswith(SEARCH_INDEX)]

    for width, path, open_search, text, found in (
        (390, "/beta/", "button", "Bradley-Terry", "/reward-modelling/"),
        (1280, "/dpo-loss/", "shortcut", "Starling", "/bigger-picture/"),
    ):
        watched = Watched(browser, served, width=width)
        page = watched.page
        try:
            watched.open(path)  # ready: Material's script ran at the end of the page before this
            watched.settled()
            assert not index_requests(watched), width
            if open_search == "button":
                page.click('header label.md-header__button[for="__search"]')
            else:
                page.keyboard.press("/")
            # typed key by key, as a reader does: Material searches on keyup (and once its
            # index is ready), so a value set in one go (page.fill) would never be searched
            page.locator(query).press_sequentially(text)
            page.wait_for_selector(results, timeout=30_000)
            hrefs = page.eval_on_selector_all(results, "links => links.map(a => a.href)")
            assert any(found in href for href in hrefs), (width, hrefs)
            assert len(index_requests(watched)) == 1, width
            assert not watched.errors, watched.errors
        finally:
            watched.close()


def test_figures_follow_the_palette_toggle(browser, served):
    """Both a figure drawn ahead of time (CSS colours) and a live one (Plotly relayout), and
    the page's own colour scheme."""
    watched = Watched(browser, served, width=1000)
    page = watched.page
    static_fill = (
        "() => getComputedStyle(document.querySelector("
        "'#figure-dpo-loss-margin .dpo-figure__svg--wide text.ytitle')).fill"
    )
    live_font = "() => document.getElementById('plot-beta-slider')._fullLayout.font.color"
    root_scheme = "() => getComputedStyle(document.documentElement).colorScheme"
    try:
        watched.open("/dpo-loss/")
        page.locator("#figure-dpo-loss-margin .dpo-figure__svg--wide text.ytitle").wait_for(state="attached")
        light_fill = page.evaluate(static_fill)
        # the page's colour scheme (scrollbars, canvas) from site.css, not Material's <meta>
        assert page.evaluate("document.querySelectorAll('meta[name=color-scheme]').length") == 0
        assert page.evaluate(root_scheme) == "light"
        page.click("form[data-md-component=palette] label:visible")
        page.wait_for_function("() => document.body.getAttribute('data-md-color-scheme') === 'slate'")
        assert page.evaluate(static_fill) != light_fill
        assert page.evaluate(root_scheme) == "dark"
        watched.open("/beta/")
        watched.make_live("beta-slider")
        dark = page.evaluate(live_font)
        page.click("form[data-md-component=palette] label:visible")
        page.wait_for_function("() => document.body.getAttribute('data-md-color-scheme') === 'default'")
        page.wait_for_function(f"c => ({live_font})() !== c", arg=dark, timeout=10_000)
        assert not watched.errors, watched.errors
    finally:
        watched.close()


def test_play_then_pause_the_ppo_animation(browser, served):
    """Pausing interrupts Plotly.animate; that must not surface as a console error."""
    watched = Watched(browser, served, width=1280)
    page = watched.page
    try:
        watched.open("/ppo-problem/")
        watched.make_live("measured-ppo-runs")
        page.evaluate("""() => { const gd = document.getElementById('plot-measured-ppo-runs');
            window.__frames = 0; window.__interrupted = false;
            gd.on('plotly_animatingframe', () => { window.__frames += 1; });
            gd.on('plotly_animationinterrupted', () => { window.__interrupted = true; }); }""")
        buttons = page.locator("#plot-measured-ppo-runs .updatemenu-button")
        labels = [buttons.nth(i).text_content() for i in range(buttons.count())]
        play = next(i for i, text in enumerate(labels) if "Play" in text)
        pause = next(i for i, text in enumerate(labels) if "Pause" in text)
        buttons.nth(play).dispatch_event("click")
        page.wait_for_function("() => window.__frames >= 2", timeout=30_000)  # it plays
        buttons.nth(pause).dispatch_event("click")
        page.wait_for_function("() => window.__interrupted === true", timeout=10_000)  # it stopped
        watched.settled()  # the interrupted animation's promise has been rejected and handled by now
        assert not watched.errors, watched.errors
        assert not page.evaluate("window.dpoSite.errors")
    finally:
        watched.close()


def test_mathjax_is_not_fetched_for_formulas_typeset_at_build_time(browser, served):
    """The site's formulas arrive as SVG, the example notebooks' Markdown maths included."""
    watched = Watched(browser, served, width=1280)
    try:
        watched.open("/key-insight/")
        assert watched.page.evaluate("document.querySelectorAll('.arithmatex mjx-container svg').length") > 20
        watched.open("/examples/bradley_terry_reward_model/")
        assert watched.page.evaluate("document.querySelectorAll('.jp-MarkdownOutput mjx-container').length") >= 3
        assert not any(url.endswith("tex-svg.js") for url in watched.requested)
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


def test_figures_are_drawn_ahead_as_the_browser_would(browser):
    """The stored first view of a figure is Plotly's own drawing, one copy for both palettes."""
    from dpo_ref.figures import build_figure
    from dpo_ref.figures.html import figure_spec
    from dpo_ref.site import prerendered_figures as pf

    spec = figure_spec(build_figure("dpo-loss-margin"))
    drawn = pf.draw({"dpo-loss-margin": spec}, browser=browser)["dpo-loss-margin"]
    palette: dict = {}
    merged = pf.merge_palettes(drawn["narrow"]["default"], drawn["narrow"]["slate"], palette, "t")
    assert 'width="380"' in drawn["narrow"]["default"] and "slider" in merged and "weight = 0.500" in merged
    assert palette and "var(--dpo-c0)" in merged
    light = merged
    for name, (light_value, _dark) in palette.items():  # the palette's values give back each drawing
        light = light.replace(f"var(--dpo-c{list(palette).index(name)})", light_value)
    assert light == pf._stable_ids(drawn["narrow"]["default"], "t")


# --------------------------------------------------------------------------- accessibility


@pytest.fixture(scope="module")
def axe_script():
    """axe-core's one file, installed from npm by the web-quality bench's helper (cached in .cache/)."""
    import shutil

    from benchmarks.web_quality import axe_script as install

    if shutil.which("npm") is None and not os.environ.get("CI"):
        pytest.skip("npm not found: axe-core comes from the npm registry")
    return install()


def test_no_page_has_a_serious_accessibility_violation(browser, served, axe_script):
    """axe-core, WCAG 2.1 A and AA, every page in both palettes: no violation of serious or
    critical impact. Each page is checked in the light palette, switched to the dark one
    with the page's own toggle, and checked again."""
    from benchmarks.web_quality import AXE_RUN, BLOCKING, READY, WCAG_TAGS

    watched = Watched(browser, served, width=1280, color_scheme="light")
    page = watched.page
    found = []
    try:
        for path in page_paths(served):
            page.goto(served.url.rstrip("/") + path)
            page.wait_for_function(READY, arg=path, timeout=60_000)
            page.add_script_tag(path=str(axe_script))
            for scheme in ("default", "slate"):
                if page.evaluate("document.body.getAttribute('data-md-color-scheme')") != scheme:
                    page.click("form[data-md-component=palette] label:visible")
                    page.wait_for_function("s => document.body.getAttribute('data-md-color-scheme') === s", arg=scheme)
                    watched.settled()
                for v in page.evaluate(AXE_RUN, WCAG_TAGS):
                    if v["impact"] in BLOCKING:
                        found.append(
                            f"{path} ({scheme}): {v['id']} ({v['impact']}, {v['nodes']} nodes, "
                            f"e.g. {v['targets'][:2]}): {v['help']}"
                        )
    finally:
        watched.close()
    assert not found, "\n".join(found)


# every table the reader sees without opening anything: not in a closed <details>, not in a hidden tab
VISIBLE_TABLE_HEIGHTS = """() => [...document.querySelectorAll('.md-content table')]
  .filter(t => t.getClientRects().length > 0 && !t.closest('details:not([open])'))
  .map(t => ({height: t.getBoundingClientRect().height, head: t.rows[0] ? t.rows[0].innerText.slice(0, 60) : ''}))"""


def test_no_table_on_a_page_is_longer_than_a_screen(browser, served):
    """A table that needs more than a 1280 x 800 screen belongs in a collapsed block under what it details. The
    reference pages aside: the API, the example scripts' output, and the performance page, whose table of every
    measured goal is what that page is for."""
    watched = Watched(browser, served, 1280, height=800)
    too_long = {}
    for path in page_paths(served):
        if path.startswith(("/api/", "/examples/", "/performance/")):
            continue
        watched.page.goto(served.url + path.lstrip("/"), wait_until="load")
        tall = [t for t in watched.page.evaluate(VISIBLE_TABLE_HEIGHTS) if t["height"] > 800]
        if tall:
            too_long[path] = tall
    # the check sees a folded table once its block is open: the variants table is taller than a screen
    watched.page.goto(served.url + "bigger-picture/", wait_until="load")
    watched.page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    opened = max(t["height"] for t in watched.page.evaluate(VISIBLE_TABLE_HEIGHTS))
    watched.close()
    assert not too_long, f"tables taller than a screen: {too_long}"
    assert opened > 800
