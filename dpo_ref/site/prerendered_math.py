"""The site's formulas, typeset once by MathJax and shipped as SVG in the pages.

Typesetting in the reader's browser meant a 2 MB MathJax script on every page and most
of the time before a page was drawn. ``dpo-ref math`` (``make math``) builds the site,
collects every formula that pymdownx.arithmatex wrote (``\\(...\\)`` inline, ``\\[...\\]``
display), typesets each with the vendored MathJax in headless Chromium, exactly as the
page script would, and stores the SVG in ``docs/results/math.json``. The build puts that
SVG in place of the TeX (:func:`dpo_ref.site.hooks.on_post_page`), in the example pages too
(their notebooks' ``$`` and ``$$`` are written as arithmatex's containers first,
:mod:`dpo_ref.site.example_pages`); a formula that is not stored yet (one just written)
is typeset in the browser as before, with MathJax fetched on demand. ``tests/test_site_build.py`` fails
while a formula of the pages is missing from the store.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from dpo_ref import paths
from dpo_ref.errors import MissingFileError, UserError
from dpo_ref.site.server import CHROMIUM, serve_directory

DISABLE_ENV = "DPO_SITE_PRERENDERED_MATH"  # "false": leave every formula to the browser

# What pymdownx.arithmatex (generic mode) writes for a formula.
ARITHMATEX = re.compile(r'<(?P<tag>span|div) class="arithmatex">(?P<tex>.*?)</(?P=tag)>', re.DOTALL)


def formula_key(tag: str, escaped_tex: str) -> str:
    """``inline:TEX`` or ``display:TEX``, TeX without its delimiters, as the store keys it."""
    tex = html.unescape(escaped_tex).strip()
    if tex[:2] in ("\\(", "\\[") and tex[-2:] in ("\\)", "\\]"):
        tex = tex[2:-2].strip()
    return f"{'display' if tag == 'div' else 'inline'}:{tex}"


def raw_formulas(page_html: str) -> set[str]:
    """Keys of the formulas of a page that are still TeX."""
    return {formula_key(m["tag"], m["tex"]) for m in ARITHMATEX.finditer(page_html) if "<mjx-container" not in m["tex"]}


EMPTY = {"stylesheet": "", "glyphs": {}, "formulas": {}}
# A formula's SVG draws its characters with <use href="#MJX-DPO-TEX-..."> from glyph
# shapes that each page holds once (a page repeats the same few dozen glyphs).
GLYPH_PREFIX = "MJX-DPO-"
_SVG_HEIGHT = re.compile(r'<svg [^>]*?height="([0-9.]+)ex"')  # a display formula's height, margins aside
_GLYPH_USE = re.compile(r'href="#(' + GLYPH_PREFIX + r'[^"]+)"')


def load(path: Path | None = None) -> dict:
    """The store: ``{"stylesheet": css, "glyphs": {id: path data}, "formulas": {key: svg}}``."""
    path = path or paths.math_store()
    if os.environ.get(DISABLE_ENV, "").lower() in ("0", "false", "no") or not path.is_file():
        return EMPTY
    data = json.loads(path.read_text(encoding="utf-8"))
    if not all(isinstance(data.get(k), type(v)) for k, v in EMPTY.items()):
        raise UserError(f"{path}: expected an object with {', '.join(EMPTY)}; rerun `make math`")
    return data


def substitute(page_html: str, store: dict) -> str:
    """``page_html`` with every stored formula as its SVG: the glyphs it uses once, hidden,
    before the first formula, and MathJax's stylesheet in ``<head>``."""
    formulas = store["formulas"]
    first: list[int] = []

    def typeset(match: re.Match) -> str:
        svg = formulas.get(formula_key(match["tag"], match["tex"]))
        if svg is None:
            return match[0]
        first.append(match.start())
        if match["tag"] == "div":  # its height while site.css's content-visibility skips drawing it
            height = _SVG_HEIGHT.search(svg)
            size = f' style="contain-intrinsic-size:auto calc({height[1]}ex + 2em)"' if height else ""
            return f'<div class="arithmatex"{size}>{svg}</div>'
        return f'<{match["tag"]} class="arithmatex">{svg}</{match["tag"]}>'

    typeset_html = ARITHMATEX.sub(typeset, page_html)
    if not first:
        return page_html
    glyphs = sorted(set(_GLYPH_USE.findall(typeset_html)))
    defs = "".join(f'<path id="{g}" d="{store["glyphs"][g.removeprefix(GLYPH_PREFIX)]}"></path>' for g in glyphs)
    hidden = f'<svg class="dpo-math-glyphs" style="display:none" aria-hidden="true"><defs>{defs}</defs></svg>'
    at = first[0]  # ARITHMATEX.sub leaves everything before the first formula where it was
    typeset_html = typeset_html[:at] + hidden + typeset_html[at:]
    return typeset_html.replace("</head>", f'<style id="dpo-mathjax-svg">{store["stylesheet"]}</style></head>', 1)


# --------------------------------------------------------------------------- typesetting


_TYPESET_JS = """async (keys) => {
  const out = {};
  for (const key of keys) {
    const display = key.startsWith('display:');
    MathJax.texReset();
    const node = await MathJax.tex2svgPromise(key.slice(key.indexOf(':') + 1), {display});
    out[key] = MathJax.startup.adaptor.outerHTML(node);
  }
  return {formulas: out, stylesheet: MathJax.startup.adaptor.textContent(MathJax.svgStylesheet())};
}"""


def typeset(keys: list[str], *, chromium: str = CHROMIUM, browser=None) -> dict:
    """SVG for each key, from the site's own MathJax and settings in headless Chromium.

    MathJax writes each formula with its own glyph shapes (``fontCache: 'local'``); they
    move to ``glyphs``, shared by name, and a page holds each once (:func:`substitute`).
    The right-click menu is off: it needs MathJax's script on the page. ``browser``: a
    running Playwright browser to use instead of launching ``chromium``.
    """
    if browser is not None:
        with serve_directory(paths.docs_dir()) as base:
            result = _typeset_in(browser, base, keys)
    else:
        from playwright.sync_api import sync_playwright

        if not Path(chromium).exists():
            raise MissingFileError(
                f"{chromium} not found: typesetting the formulas needs Chromium (apt-get install chromium)"
            )
        with serve_directory(paths.docs_dir()) as base, sync_playwright() as pw:
            launched = pw.chromium.launch(
                executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            try:
                result = _typeset_in(launched, base, keys)
            finally:
                launched.close()
    formulas, glyphs = {}, {}
    for key, svg in result["formulas"].items():
        if 'data-mml-node="merror"' in svg:
            raise UserError(f"MathJax cannot typeset {key!r}: fix the TeX in the page that has it")
        formulas[key] = _share_glyphs(key, svg, glyphs)
    return {"stylesheet": result["stylesheet"], "glyphs": glyphs, "formulas": formulas}


def _typeset_in(browser, base: str, keys: list[str]) -> dict:
    page = browser.new_page()
    try:
        page.add_script_tag(url=base + "assets/javascripts/mathjax-config.js")
        page.evaluate("() => { MathJax.svg = {fontCache: 'local'}; MathJax.options = {enableMenu: false}; }")
        page.add_script_tag(url=base + "assets/vendor/mathjax/tex-svg.js")
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise.then(() => null)")
        return page.evaluate(_TYPESET_JS, keys)
    finally:
        page.close()


_DEFS = re.compile(r"<defs>(.*?)</defs>", re.DOTALL)
_GLYPH = re.compile(r'<path id="MJX-\d+-(TEX-[^"]+)" d="([^"]*)"></path>')


def _share_glyphs(key: str, svg: str, glyphs: dict[str, str]) -> str:
    """The formula without its own glyph shapes, which go to ``glyphs`` (shared by name)."""
    defs = _DEFS.search(svg)
    if defs is None:
        return svg
    if _GLYPH.sub("", defs[1]).strip():
        raise ValueError(f"MathJax wrote something other than glyph paths in the defs of {key!r}")
    for name, shape in _GLYPH.findall(defs[1]):
        if glyphs.setdefault(name, shape) != shape:
            raise ValueError(f"glyph {name} has two shapes (in {key!r}); the store cannot share it")
    svg = svg[: defs.start()] + svg[defs.end() :]
    return re.sub(r'href="#MJX-\d+-TEX-', f'href="#{GLYPH_PREFIX}TEX-', svg)


def site_formulas(timeout: float = 600) -> set[str]:
    """Every formula of the built site (built here with the store off, examples not run)."""
    root = paths.require_checkout("dpo-ref math")
    env = {
        **os.environ,
        DISABLE_ENV: "false",
        "DPO_SITE_EXECUTE_EXAMPLES": "false",
        "NO_MKDOCS_2_WARNING": "1",
        "HF_HUB_OFFLINE": "1",
    }
    with tempfile.TemporaryDirectory() as tmp:
        env["DPO_SITE_NOTEBOOK_CACHE"] = str(Path(tmp) / "notebook-cache")
        done = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(Path(tmp) / "site")],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError("mkdocs build failed:\n" + "\n".join(done.stderr.strip().splitlines()[-10:]))
        keys: set[str] = set()
        for page in (Path(tmp) / "site").rglob("*.html"):
            keys |= raw_formulas(page.read_text(encoding="utf-8"))
    return keys


def write(store: dict, path: Path | None = None) -> None:
    path = path or paths.math_store()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(
        {
            "stylesheet": store["stylesheet"],
            "glyphs": dict(sorted(store["glyphs"].items())),
            "formulas": dict(sorted(store["formulas"].items())),
        },
        indent=1,
        ensure_ascii=False,
    )
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)


# --------------------------------------------------------------------------- dpo-ref math


def add_arguments(parser) -> None:
    parser.add_argument("--all", action="store_true", help="typeset every formula again, not only new ones")
    from dpo_ref.cli import output_file

    parser.add_argument(
        "--store",
        default=None,
        type=output_file,
        help="the JSON file of typeset formulas to update (default: docs/results/math.json)",
    )


def main(args) -> int:
    out = Path(args.store) if args.store else paths.math_store()
    keys = site_formulas()
    old = load(out) if out.is_file() and not args.all else EMPTY
    missing = sorted(k for k in keys if k not in old["formulas"])
    new = typeset(missing) if missing else EMPTY
    formulas = {k: v for k, v in old["formulas"].items() if k in keys} | new["formulas"]
    used = {g.removeprefix(GLYPH_PREFIX) for svg in formulas.values() for g in _GLYPH_USE.findall(svg)}
    glyphs = {g: d for g, d in (old["glyphs"] | new["glyphs"]).items() if g in used}
    write({"stylesheet": new["stylesheet"] or old["stylesheet"], "glyphs": glyphs, "formulas": formulas}, out)
    dropped = len(set(old["formulas"]) - keys)
    print(f"{len(keys)} formulas on the site: {len(missing)} typeset now, {dropped} no longer used dropped -> {out}")
    return 0
