"""Each figure's first view, drawn once by Plotly at build time and shipped as SVG in the page.

Drawing a Plotly figure in the reader's browser means parsing plotly.js (about 1 MB) and
tens of milliseconds of layout per figure, all on the main thread: on a phone that held
the page up for one to two seconds. ``make prerender`` (``python -m
dpo_ref.site.prerendered_figures``) draws every figure of :data:`dpo_ref.figures.FIGURES`
with the site's own plotly.js in headless Chromium, exports the SVG that
``Plotly.toImage`` makes, and stores it in ``docs/results/figures.json``:

* keyed by the figure's content (a hash of the JSON the page carries, so a figure whose
  data, layout or palette changes is drawn again, and the test suite fails until it is);
* at two widths, :data:`WIDTHS` (phones, and everything wider): the page shows the one
  that fits, letterboxed to the figure's own height, so nothing moves when Plotly takes
  over;
* in one copy for both Material palettes: every colour that differs between the light
  and the dark drawing becomes a CSS custom property (``--dpo-c0``, ...), whose two
  values :func:`palette_stylesheet` writes once per page.

The build puts the SVG in each figure's box (:func:`substitute`, from
:func:`dpo_ref.site.hooks.on_post_page`) when the figure is near the top of its page;
further down, the SVG is a file of its own that ``site.js`` fetches as the reader nears
the figure. ``site.js`` makes a figure interactive (loads plotly.js and draws it for
real) when the reader touches it, hovers it, focuses it, or scrolls it into view after a
first interaction. A figure with no stored SVG is drawn by Plotly in the browser as before.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import sys
from pathlib import Path

from dpo_ref import paths
from dpo_ref.figures.html import SPEC_FOLDER
from dpo_ref.site.server import CHROMIUM, serve_directory

# Bump when the way figures are drawn changes (site.js's draw, the export, this module).
RENDER_VERSION = 1
# name -> width in CSS px the figure is drawn at; site.css shows "narrow" below 600 px.
WIDTHS = {"narrow": 380, "wide": 720}
PLOTLY_JS = "assets/vendor/plotly/plotly-basic.min.js"
# A figure whose box starts within this many characters of its page's text (a phone screen
# holds about 1,500) is on or near the reader's first screen: its first view is in the page.
# Every other first view is a file, fetched when the reader nears the figure: on the
# longest pages the drawings were two thirds of the HTML, parsed at every load before
# anything could be shown (/experimental-results/: 536 kB, 432 kB of it figures).
FIRST_SCREEN_CHARS = 2000
# What those files' names end with: pieces of a page, not pages.
VIEW_SUFFIX = ".first-view.html"

EMPTY: dict = {"version": RENDER_VERSION, "palette": {}, "figures": {}}


def store_path() -> Path:
    return paths.docs_dir() / "results" / "figures.json"


def figure_key(spec: dict) -> str:
    """A short hash of what the page carries for a figure (:func:`dpo_ref.figures.html.figure_spec`)."""
    text = json.dumps(spec, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    plotly = (paths.docs_dir() / PLOTLY_JS).read_bytes()
    digest = hashlib.sha256(f"v{RENDER_VERSION}|{sorted(WIDTHS.items())}|".encode() + text.encode())
    digest.update(hashlib.sha256(plotly).digest())
    return digest.hexdigest()[:20]


def load(path: Path | None = None) -> dict:
    path = path or store_path()
    if not path.is_file():
        return EMPTY
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != RENDER_VERSION or not isinstance(data.get("figures"), dict):
        return EMPTY
    return data


# --------------------------------------------------------------------------- the page


def marker(spec: dict) -> str:
    """What a figure's box holds in the Markdown's HTML: :func:`substitute` fills it."""
    return f'<div class="dpo-figure__static" data-key="{figure_key(spec)}"></div>'


_MARKER = re.compile(r'<div class="dpo-figure__static" data-key="(?P<key>[0-9a-f]+)"></div>')


def substitute(page_html: str, store: dict, site_dir: str | Path, folder_url: str) -> str:
    """``page_html`` with each figure's stored SVG in its box, and the palette's colours once.

    A figure within :data:`FIRST_SCREEN_CHARS` of the top has its SVG in the page; any
    other gets an empty box whose ``data-src`` names ``<figure id>.first-view.html``, written
    to ``site_dir/assets/figures/`` (``folder_url``: that folder relative to the page).
    """
    figures = store["figures"]
    used = []
    folder = Path(site_dir) / SPEC_FOLDER
    text_start = page_html.find("<article")

    def fill(match: re.Match) -> str:
        entry = figures.get(match["key"])
        if entry is None:
            return ""  # not drawn ahead: site.js draws it with Plotly
        used.append(match["key"])
        views = "".join(f'<div class="dpo-figure__svg dpo-figure__svg--{name}">{entry[name]}</div>' for name in WIDTHS)
        if _text_length(page_html[max(text_start, 0) : match.start()]) <= FIRST_SCREEN_CHARS:
            return f'<div class="dpo-figure__static" data-key="{match["key"]}">{views}</div>'
        folder.mkdir(parents=True, exist_ok=True)
        name = entry["id"] + VIEW_SUFFIX
        (folder / name).write_text(views, encoding="utf-8")
        return f'<div class="dpo-figure__static" data-key="{match["key"]}" data-src="{html.escape(folder_url)}/{name}"></div>'

    page_html = _MARKER.sub(fill, page_html)
    if used:
        page_html = page_html.replace(
            "</head>", f'<style id="dpo-figure-palette">{palette_stylesheet(store)}</style></head>', 1
        )
    return page_html


def _text_length(page_html: str) -> int:
    """How many characters of text ``page_html`` shows (runs of white space count as one)."""
    visible = re.sub(r"<(script|style)\b.*?</\1>", "", page_html, flags=re.S)
    return len(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", visible)))


def palette_stylesheet(store: dict) -> str:
    """The colours of the stored figures in Material's light (default) and dark (slate) palettes."""
    light = ";".join(f"--dpo-c{i}:{pair[0]}" for i, pair in enumerate(store["palette"].values()))
    dark = ";".join(f"--dpo-c{i}:{pair[1]}" for i, pair in enumerate(store["palette"].values()))
    return f"body{{{light}}}body[data-md-color-scheme=slate]{{{dark}}}"


# --------------------------------------------------------------------------- drawing


_DRAW_JS = """async ([spec, width, scheme]) => {
  const gd = document.createElement('div');
  gd.style.width = width + 'px';
  document.body.appendChild(gd);
  const fig = spec.figure;
  const layout = Object.assign({}, fig.layout, {width: width});
  await Plotly.newPlot(gd, fig.data, layout, Object.assign({}, spec.config, {responsive: false, staticPlot: false}));
  if (scheme !== 'default') {
    for (const [update, traces] of spec.restyles[scheme]) await Plotly.restyle(gd, update, traces);
    await Plotly.relayout(gd, spec.palettes[scheme]);
  }
  const url = await Plotly.toImage(gd, {format: 'svg', width: width, height: layout.height || 450});
  Plotly.purge(gd);
  gd.remove();
  return decodeURIComponent(url.slice(url.indexOf(',') + 1));
}"""


def draw(specs: dict[str, dict], *, chromium: str = CHROMIUM, browser=None) -> dict[str, dict[str, dict[str, str]]]:
    """``{figure_id: {width_name: {scheme: svg}}}``, drawn by the site's plotly.js in headless Chromium."""
    if browser is not None:
        with serve_directory(paths.docs_dir()) as base:
            return _draw_in(browser, base, specs)
    from playwright.sync_api import sync_playwright

    if not Path(chromium).exists():
        raise FileNotFoundError(f"{chromium} not found: drawing the figures needs Chromium (apt-get install chromium)")
    with serve_directory(paths.docs_dir()) as base, sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            return _draw_in(launched, base, specs)
        finally:
            launched.close()


def _draw_in(browser, base: str, specs: dict[str, dict]) -> dict:
    page = browser.new_page()
    try:
        page.goto(base)  # the served origin, so plotly.js loads as on the site
        page.set_content("<!doctype html><html><body></body></html>")
        page.add_script_tag(url=base + PLOTLY_JS)
        out = {}
        for figure_id, spec in specs.items():
            out[figure_id] = {
                name: {scheme: page.evaluate(_DRAW_JS, [spec, width, scheme]) for scheme in ("default", "slate")}
                for name, width in WIDTHS.items()
            }
        return out
    finally:
        page.close()


# Plotly's style declarations of colour: "fill: rgb(0, 0, 0)", "stroke-opacity: 0.87".
_COLOUR = re.compile(r"((?<![\w-])(?:fill|stroke|opacity)(?:-opacity)?): ([^;\"]+)")


def merge_palettes(light: str, dark: str, palette: dict[str, list[str]], uid: str) -> str:
    """One SVG for both palettes: colours that differ become ``var(--dpo-cN)`` entries of ``palette``.

    ``palette`` maps ``"property|light|dark"`` to ``[light, dark]`` and grows as new pairs
    appear; the N of a pair is its position there. ``uid`` replaces Plotly's random id.
    """
    light, dark = _stable_ids(light, uid), _stable_ids(dark, uid)
    light_parts, dark_parts = _COLOUR.split(light), _COLOUR.split(dark)
    if len(light_parts) != len(dark_parts) or light_parts[::3] != dark_parts[::3]:
        raise ValueError("the light and dark drawings of a figure differ in more than colour")
    out = [light_parts[0]]
    for i in range(1, len(light_parts), 3):
        prop, value_light, value_dark, rest = light_parts[i], light_parts[i + 1], dark_parts[i + 1], light_parts[i + 2]
        if prop != dark_parts[i]:
            raise ValueError("the light and dark drawings of a figure differ in more than colour")
        if value_light != value_dark:
            name = f"{value_light}|{value_dark}"
            palette.setdefault(name, [value_light, value_dark])
            value_light = f"var(--dpo-c{list(palette).index(name)})"
        out.append(f"{prop}: {value_light}{rest}")
    return "".join(out)


def _stable_ids(svg: str, uid: str) -> str:
    """Plotly's random ids (clip paths, legend patterns) replaced by ``uid`` and a counter."""
    svg = re.sub(r" trace[0-9a-f]{6}(?=\")", "", svg)  # a random class per trace, used by nothing
    ids = re.findall(r'id="([^"]*)"', svg)
    tokens = list(dict.fromkeys(t for i in ids for t in re.findall(r"(?<![0-9a-f])[0-9a-f]{6}(?![0-9a-f])", i)))
    for n, token in enumerate(tokens):
        svg = re.sub(r'((?:id="|#)[^"#)\s]*?)' + token, lambda m, n=n: f"{m[1]}{uid}{n}", svg)
    return svg


def finish(svg: str, figure_id: str, height: int, alt: str) -> str:
    """The exported SVG as it sits in a page: sized to the figure's box, named for a screen reader."""
    svg = svg.replace(
        '<svg class="main-svg"',
        '<svg class="main-svg dpo-static-svg" role="img" '
        f'aria-label="{html.escape(alt, quote=True)}" preserveAspectRatio="xMidYMid meet"',
        1,
    )
    return re.sub(
        r'(<svg class="main-svg[^>]*?) width="\d+" height="\d+" style=""',
        rf'\1 width="100%" height="{height}"',
        svg,
        count=1,
    )


# --------------------------------------------------------------------------- make prerender


def site_specs() -> dict[str, dict]:
    """The figure JSON of every Plotly figure in the registry (HTML diagrams need no drawing)."""
    import plotly.graph_objects as go

    from dpo_ref.figures import FIGURES, build_figure
    from dpo_ref.figures.html import figure_spec

    specs = {}
    for figure_id in FIGURES:
        fig = build_figure(figure_id)
        if isinstance(fig, go.Figure):
            specs[figure_id] = figure_spec(fig)
    return specs


def main(argv: list[str] | None = None) -> int:
    import argparse

    from dpo_ref.figures.html import figure_alt

    parser = argparse.ArgumentParser(
        prog="python -m dpo_ref.site.prerendered_figures", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--all", action="store_true", help="draw every figure again, not only changed ones")
    args = parser.parse_args(argv)
    specs = site_specs()
    keys = {figure_id: figure_key(spec) for figure_id, spec in specs.items()}
    old = EMPTY if args.all else load()
    todo = {figure_id: spec for figure_id, spec in specs.items() if keys[figure_id] not in old["figures"]}
    drawn = draw(todo) if todo else {}
    # Colours keep their numbers from one run to the next (new pairs are appended), so an
    # unchanged figure's stored SVG stays valid; --all renumbers from scratch.
    palette: dict[str, list[str]] = dict(old["palette"])
    figures = {}
    for figure_id, spec in specs.items():
        key = keys[figure_id]
        if figure_id not in drawn:
            figures[key] = old["figures"][key]
            continue
        height = int(spec["figure"]["layout"].get("height") or 450)
        alt = figure_alt(spec["figure"])
        entry = {"id": figure_id}
        for name in WIDTHS:
            both = drawn[figure_id][name]
            merged = merge_palettes(both["default"], both["slate"], palette, f"{key[:8]}{name[0]}")
            entry[name] = finish(merged, figure_id, height, alt)
        figures[key] = entry
    store = {"version": RENDER_VERSION, "palette": palette, "figures": dict(sorted(figures.items()))}
    path = store_path()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(store, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    dropped = len(set(old["figures"]) - set(figures))
    print(f"{len(specs)} figures: {len(todo)} drawn now, {dropped} no longer used dropped -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
