"""No figure's parts collide, at a phone's, a tablet's and a desktop's width.

Every Plotly figure of the built site is made interactive in Chromium at 390, 768 and
1280 px, and at every position of its sliders (every combination, for a figure with
several) the boxes of its title, legend, sliders, Plotly menus, axis titles, tick labels
and annotations are measured as drawn:

* no two of them overlap (an axis's titles and tick labels may share a corner with
  another axis's: that is where axes meet);
* none but the annotations and the tick labels enters a plotting area (a legend or a
  slider over the data hides it);
* no annotation or text readout inside a plotting area touches a drawn line or marker.

One page visit per page and width; the geometry is read in the page by one script
(:data:`MEASURE`), so the test takes seconds, not minutes. Chromium and the built site
come as in tests/test_browser.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from site_support import CHROMIUM_ARGS, BuiltSite, built_site_once, page_paths

from dpo_ref.site.server import CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = (390, 768, 1280)
READY = "path => window.dpoSite && window.dpoSite.readyPath === path"
# Content tabs all shown, so a figure in a tab that is not open is laid out and measured too.
SHOW_EVERY_TAB = ".md-typeset .tabbed-set > .tabbed-content > .tabbed-block { display: block !important; }"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is required in CI for the browser tests", pytrace=False)
    pytest.skip(f"{CHROMIUM} not found", allow_module_level=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> BuiltSite:
    return built_site_once(tmp_path_factory.getbasetemp())  # one build shared with the other browser tests


@pytest.fixture(scope="module")
def browser(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def figure_pages(site: BuiltSite) -> list[str]:
    return [
        path
        for path in page_paths(site)
        if 'class="dpo-figure__plot' in (site.path / path.lstrip("/") / "index.html").read_text(encoding="utf-8")
    ]


# Touch every figure as a reader would (site.js makes a figure live on pointerenter), then
# wait until Plotly has drawn them all.
MAKE_LIVE = """() => {
  const plots = Array.from(document.querySelectorAll('.dpo-figure__plot'));
  plots.forEach(div => div.parentElement.dispatchEvent(new PointerEvent('pointerenter')));
  return plots.length;
}"""
ALL_LIVE = """() => Array.from(document.querySelectorAll('.dpo-figure__plot'))
  .every(div => div.classList.contains('dpo-figure__plot--live'))"""

# For every live figure, every slider position: what collides, and what runs past the figure's edge. Returns a
# list of strings.
MEASURE = """async () => {
  const problems = [];
  const GAP = 6;  // px at least between two parts outside the data, so they read as two
  const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  // Two boxes overlap when they share more than a pixel each way, or, given a gap, come closer than it.
  const overlap = (a, b, gap = -1) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > -gap &&
                                      Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > -gap;
  const union = rects => rects.filter(r => r.width > 0 && r.height > 0).reduce((u, r) => u ? {
      left: Math.min(u.left, r.left), right: Math.max(u.right, r.right),
      top: Math.min(u.top, r.top), bottom: Math.max(u.bottom, r.bottom)} : r, null);
  const boxOf = els => union(Array.from(els).map(e => e.getBoundingClientRect()));
  const span = b => `x ${Math.round(b.left)}..${Math.round(b.right)}, y ${Math.round(b.top)}..${Math.round(b.bottom)}`;
  const text = el => (el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 40);

  // The plotting areas (one per subplot), in page coordinates.
  function areas(gd) {
    const svg = gd.querySelector('.main-svg').getBoundingClientRect();
    return Object.entries(gd._fullLayout._plots).map(([id, p]) => ({id,
      left: svg.left + p.xaxis._offset, right: svg.left + p.xaxis._offset + p.xaxis._length,
      top: svg.top + p.yaxis._offset, bottom: svg.top + p.yaxis._offset + p.yaxis._length}));
  }

  // The parts outside the data: [kind, name, box].
  function parts(gd) {
    const out = [];
    const add = (kind, name, box) => { if (box && box.right - box.left > 0) out.push({kind, name, box}); };
    gd.querySelectorAll('.g-gtitle').forEach(g => add('title', text(g), boxOf([g])));
    gd.querySelectorAll('.legend').forEach(g => add('legend', 'legend', boxOf(g.querySelectorAll(':scope > rect.bg'))));
    gd.querySelectorAll('.slider-group').forEach((g, i) => add('slider', `slider ${i}`, boxOf(
      g.querySelectorAll('.slider-currentvalue, .slider-label-group text, .slider-rail-rect, .slider-grip-rect'))));
    gd.querySelectorAll('.updatemenu-header-group, .updatemenu-button-group').forEach(g => {
      if (getComputedStyle(g).display !== 'none') add('menu', text(g), boxOf(g.querySelectorAll('rect')));
    });
    gd.querySelectorAll('.infolayer text[class$="title"]').forEach(t => {
      if (!t.classList.contains('gtitle') && !t.classList.contains('legendtitletext')) add('axis', text(t), boxOf([t]));
    });
    gd.querySelectorAll('.xaxislayer-above, .yaxislayer-above').forEach(g =>
      add('ticks', (g.querySelector('.xtick, .ytick') || g).getAttribute('class').split(' ')[0] + ' labels',
          boxOf(g.querySelectorAll('text'))));
    gd.querySelectorAll('.annotation').forEach(g =>
      add('annotation', text(g), boxOf(g.querySelectorAll('.annotation-text-g'))));
    return out;
  }

  // Where the data is drawn: points along every line (every 3 px) and every marker's box,
  // kept only inside a plotting area (Plotly clips what lies outside).
  function data(gd, plotAreas) {
    const points = [], boxes = [];
    const inside = (x, y) => plotAreas.some(a => x >= a.left && x <= a.right && y >= a.top && y <= a.bottom);
    gd.querySelectorAll('.scatterlayer .trace path.js-line').forEach(path => {
      const length = path.getTotalLength(), ctm = path.getScreenCTM();
      if (!ctm || !length) return;
      for (let s = 0; s <= length; s += 3) {
        const p = path.getPointAtLength(s).matrixTransform(ctm);
        if (inside(p.x, p.y)) points.push(p);
      }
    });
    gd.querySelectorAll('.scatterlayer .trace .points path.point, .barlayer .point path').forEach(m => {
      const b = m.getBoundingClientRect();
      if (b.width > 0 && inside((b.left + b.right) / 2, (b.top + b.bottom) / 2)) boxes.push(b);
    });
    return {points, boxes};
  }

  function check(gd, where) {
    const plotAreas = areas(gd);
    const found = parts(gd);
    const edge = gd.querySelector('.main-svg').getBoundingClientRect();  // Plotly cuts off what passes it
    for (const part of found) {
      const b = part.box;
      if (b.left < edge.left - 1 || b.right > edge.right + 1 || b.top < edge.top - 1 || b.bottom > edge.bottom + 1) {
        problems.push(`${where}: ${part.kind} "${part.name}" (${span(b)}) runs past the figure's edge (${span(edge)})`);
      }
    }
    const axisPart = p => p.kind === 'axis' || p.kind === 'ticks';
    for (let i = 0; i < found.length; i++) {
      for (let j = i + 1; j < found.length; j++) {
        const [a, b] = [found[i], found[j]];
        if (axisPart(a) && axisPart(b)) continue;
        if (overlap(a.box, b.box, GAP)) problems.push(`${where}: ${a.kind} "${a.name}" touches ${b.kind} "${b.name}"`);
      }
      const part = found[i];
      if (part.kind === 'annotation' || part.kind === 'ticks') continue;
      for (const area of plotAreas) {
        if (overlap(part.box, area)) {
          problems.push(`${where}: ${part.kind} "${part.name}" (${span(part.box)}) covers plotting area ${area.id} (${span(area)})`);
        }
      }
    }
    const labels = found.filter(p => p.kind === 'annotation').concat(
      Array.from(gd.querySelectorAll('.scatterlayer .textpoint text')).map(t => ({kind: 'readout', name: text(t),
        box: t.getBoundingClientRect()})).filter(p => p.box.width > 0));
    const inArea = box => plotAreas.some(a => overlap(box, a));
    const drawn = labels.some(l => inArea(l.box)) ? data(gd, plotAreas) : {points: [], boxes: []};
    for (const label of labels.filter(l => inArea(l.box))) {
      const b = label.box;
      const hit = drawn.points.some(p => p.x > b.left + 1 && p.x < b.right - 1 && p.y > b.top + 1 && p.y < b.bottom - 1)
        || drawn.boxes.some(m => overlap(m, b));
      if (hit) problems.push(`${where}: ${label.kind} "${label.name}" touches the data`);
    }
    for (let i = 0; i < labels.length; i++) {
      for (let j = i + 1; j < labels.length; j++) {
        if (labels[i].kind === 'readout' && overlap(labels[i].box, labels[j].box)) {
          problems.push(`${where}: ${labels[i].kind} "${labels[i].name}" overlaps "${labels[j].name}"`);
        }
      }
    }
  }

  // Each slider at each of its steps, the others where the page starts them. (Every
  // combination of a two-slider figure's 13 x 13 steps took 16 s a width.)
  function positions(sliders) {
    const start = sliders.map(s => s.active || 0);
    const out = [start];
    sliders.forEach((s, i) => s.steps.forEach((_, k) => {
      if (k !== start[i]) out.push(start.map((a, j) => j === i ? k : a));
    }));
    return out;
  }

  // Move the sliders as a reader would: run each moved slider's step, set it active, and
  // let the page's own listener (several sliders: site.js) apply the combination.
  async function moveTo(gd, combo) {
    const sliders = gd.layout.sliders;
    for (let i = 0; i < combo.length; i++) {
      if (sliders[i].active === combo[i]) continue;
      const step = sliders[i].steps[combo[i]];
      if (step.method && step.method !== 'skip') {
        const args = step.method === 'animate'
          ? [step.args[0], {mode: 'immediate', frame: {duration: 0, redraw: true}, transition: {duration: 0}}]
          : step.args;
        await Plotly[step.method](gd, ...args);
      }
      await Plotly.relayout(gd, {[`sliders[${i}].active`]: combo[i]});
      gd.emit('plotly_sliderchange', {slider: gd._fullLayout.sliders[i], step: gd._fullLayout.sliders[i].steps[combo[i]]});
    }
    await frame();
  }

  const live = Array.from(document.querySelectorAll('.dpo-figure__plot.js-plotly-plot'));
  // fitted to its box as site.js does: a figure drawn while its content tab was hidden had
  // no width then (site.js fits it when the reader opens the tab; here every tab is shown)
  for (const gd of live) {
    if (gd._fullLayout.width !== Math.round(gd.getBoundingClientRect().width)) await Plotly.Plots.resize(gd);
  }
  for (const gd of live) {
    const id = gd.dataset.figure;
    const sliders = gd.layout.sliders || [];
    const start = sliders.map(s => s.active || 0);
    if (!sliders.length) { check(gd, id); continue; }
    for (const combo of positions(sliders)) {
      await moveTo(gd, combo);
      check(gd, `${id} at slider positions ${combo.join(',')}`);
    }
    await moveTo(gd, start);
  }
  return problems;
}"""


@pytest.mark.parametrize("width", WIDTHS)
def test_no_figure_part_collides(browser, served, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    problems, figures = [], 0
    try:
        for path in figure_pages(served):
            page.goto(served.url.rstrip("/") + path)
            page.wait_for_function(READY, arg=path, timeout=30_000)
            page.add_style_tag(content=SHOW_EVERY_TAB)
            figures += page.evaluate(MAKE_LIVE)
            page.wait_for_function(ALL_LIVE, timeout=30_000)
            problems += [f"{path} at {width} px: {p}" for p in page.evaluate(MEASURE)]
    finally:
        context.close()
    assert not errors, errors
    assert figures >= 20  # the site's figures were measured, not none
    # a collision seen at many slider positions is listed once, at the first of them
    first: dict[str, str] = {}
    for problem in problems:
        where, what = problem.split(": ", 1)[0], problem.rsplit(": ", 1)[-1]
        first.setdefault(where.split(" at slider positions")[0] + what, problem)
    assert not problems, f"{len(problems)} collisions:\n" + "\n".join(first.values())


LEGEND_ABOVE_PLOT = """id => { const gd = document.getElementById(id);
  const legend = gd.querySelector('.legend rect.bg').getBoundingClientRect();
  const top = gd.querySelector('.main-svg').getBoundingClientRect().top + gd._fullLayout._size.t;
  return legend.width > 400 && legend.bottom <= top; }"""


def test_a_legend_stays_off_the_plot_when_the_window_widens(browser, served):
    """Drawn on a phone, then the window widened (a phone turned, a browser resized): the
    displacement figure's legend, five rows at 390 px, ends on two rows above the plot. A
    legend placed from the plot's edge stayed where the phone's margins had put it, over the
    data; one placed in the figure moves with it."""
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    try:
        page.goto(served.url.rstrip("/") + "/dpo-loss/")
        page.wait_for_function(READY, arg="/dpo-loss/", timeout=30_000)
        page.evaluate(MAKE_LIVE)
        page.wait_for_function(ALL_LIVE, timeout=30_000)
        page.set_viewport_size({"width": 1000, "height": 900})
        page.wait_for_function(LEGEND_ABOVE_PLOT, arg="plot-measured-displacement", timeout=10_000)
    finally:
        context.close()


# On a phone: what site.css does for code, wide tables and the Back to top button.
PHONE_CHECK = """() => {
  const shown = el => el.offsetParent !== null;
  const code = Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea-editor')).filter(shown)
    .map(el => Math.round(el.getBoundingClientRect().width));
  const wide = Array.from(document.querySelectorAll('.md-typeset__scrollwrap')).filter(shown)
    .filter(el => el.scrollWidth > el.clientWidth + 1);
  const faded = wide.filter(el => getComputedStyle(el).maskImage.includes('gradient'));
  const top = document.querySelector('.md-top');
  return {code, column: document.querySelector('.md-content__inner').getBoundingClientRect().width,
          wide: wide.length, faded: faded.length, top: top ? getComputedStyle(top).display : 'none'};
}"""

FIRST_WIDE_TABLE = (
    "Array.from(document.querySelectorAll('.md-typeset__scrollwrap'))"
    ".find(el => el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1)"
)
SCROLL_FIRST_WIDE_TABLE_TO_ITS_END = f"() => {{ const el = {FIRST_WIDE_TABLE}; el.scrollLeft = el.scrollWidth; }}"


def test_on_a_phone_code_gets_the_column_and_wide_tables_show_they_scroll(browser, served):
    """At 390 px an example's code cells span the text column (Jupyter's prompts took a third
    of it), a table wider than the screen fades at the edge it scrolls to, and "Back to top"
    is not drawn over the text and figures."""
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    try:
        for path in ("/examples/dpo_from_scratch/", "/bigger-picture/"):
            page.goto(served.url.rstrip("/") + path)
            page.wait_for_function(READY, arg=path, timeout=30_000)
            state = page.evaluate(PHONE_CHECK)
            assert state["top"] == "none", (path, state)
            if path.startswith("/examples/"):
                assert state["code"] and min(state["code"]) >= state["column"] - 2, state
            else:
                assert state["wide"] >= 1 and state["faded"] == state["wide"], state
                # scrolled to its end, a table fades at its start instead
                page.evaluate(SCROLL_FIRST_WIDE_TABLE_TO_ITS_END)
                page.wait_for_function(FIRST_WIDE_TABLE + ".dataset.dpoScroll === 'end'", timeout=10_000)
    finally:
        context.close()


# --------------------------------------------------------------------------- figure controls

SHOWN_NAMES = """id => (document.getElementById(id).data || [])
  .filter(t => t.visible === true && t.showlegend !== false).map(t => t.name)"""


def test_a_figure_menu_is_a_row_of_the_sites_buttons(browser, served):
    """The over-optimisation figure's method menu: buttons above the figure, one line high
    each; pressing one before the figure is live makes it live and shows that method's
    curves; nothing moves; Plotly draws neither its dropdown nor its toolbar."""
    figure_id = "plot-measured-overoptimisation"
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    try:
        page.goto(served.url.rstrip("/") + "/beta/")
        page.wait_for_function(READY, arg="/beta/", timeout=30_000)
        row = page.locator(f'.dpo-figure__menu[data-for="{figure_id}"]')
        choices = row.locator(".dpo-figure__choice")
        names = [choices.nth(i).text_content() for i in range(choices.count())]
        assert names[:1] == ["DPO"] and len(names) >= 3
        row.scroll_into_view_if_needed()
        boxes = [choices.nth(i).bounding_box() for i in range(len(names))]
        assert len({round(b["height"]) for b in boxes}) == 1  # every choice one line high
        figure = page.locator("#figure-measured-overoptimisation")
        before = (row.bounding_box()["height"], figure.bounding_box()["height"])
        choices.nth(1).click()
        page.wait_for_function(
            f"([id, name]) => ({SHOWN_NAMES})(id).some(n => n.startsWith(name + ','))", arg=[figure_id, names[1]]
        )
        shown = page.evaluate(SHOWN_NAMES, figure_id)
        assert not any(n.startswith(names[0] + ",") for n in shown), shown
        pressed = [choices.nth(i).get_attribute("aria-pressed") for i in range(len(names))]
        assert pressed == ["false", "true"] + ["false"] * (len(names) - 2)
        assert (row.bounding_box()["height"], figure.bounding_box()["height"]) == before
        assert page.locator(f"#{figure_id} .updatemenu-header-group").count() == 0
        assert page.locator(f"#{figure_id} .modebar-btn").count() == 0
    finally:
        context.close()
