"""Formulas typeset at build time: keys, substitution into pages, shared glyphs.

The typesetting itself needs Chromium and runs in tests/test_browser.py; the site's use
of the store in tests/test_site_build.py.
"""

from __future__ import annotations

import json

import pytest

from dpo_ref.paths import math_store
from dpo_ref.site import prerendered_math as pm


def svg(*glyphs: str) -> str:
    uses = "".join(f'<use href="#{pm.GLYPH_PREFIX}{g}"></use>' for g in glyphs)
    return f'<mjx-container class="MathJax" jax="SVG"><svg>{uses}</svg></mjx-container>'


STORE = {
    "stylesheet": "mjx-container{direction:ltr}",
    "glyphs": {"TEX-I-1D465": "M1 1", "TEX-N-32": "M2 2", "TEX-N-33": "M3 3"},
    "formulas": {"inline:x^2": svg("TEX-I-1D465", "TEX-N-32"), "display:x < 2": svg("TEX-I-1D465", "TEX-N-32")},
}


def test_keys_drop_delimiters_and_html_escapes():
    assert pm.formula_key("span", r"\(x^2\)") == "inline:x^2"
    assert pm.formula_key("div", "\\[\n  x &lt; 2\n\\]") == "display:x < 2"
    assert pm.formula_key("div", r"\begin{aligned}a\end{aligned}") == r"display:\begin{aligned}a\end{aligned}"


def test_stored_formulas_replace_their_tex_and_bring_their_glyphs_once():
    page = (
        '<html><head><title>t</title></head><body><p>Intro</p><p>See <span class="arithmatex">\\(x^2\\)</span>'
        ' and</p><div class="arithmatex">\\[x &lt; 2\\]</div><span class="arithmatex">\\(y\\)</span></body></html>'
    )
    out = pm.substitute(page, STORE)
    assert out.count("<mjx-container") == 2
    assert '<span class="arithmatex">\\(y\\)</span>' in out  # not stored: left for MathJax in the browser
    assert pm.raw_formulas(out) == {"inline:y"}
    assert out.count('class="dpo-math-glyphs"') == 1
    assert out.index('class="dpo-math-glyphs"') < out.index("<mjx-container")  # defined before first use
    assert out.index("<p>Intro</p>") < out.index('class="dpo-math-glyphs"')  # and in the page's content
    assert out.count('<path id="MJX-DPO-TEX-I-1D465" d="M1 1">') == 1 and "TEX-N-33" not in out
    assert '<style id="dpo-mathjax-svg">mjx-container{direction:ltr}</style></head>' in out


def test_a_page_without_stored_formulas_is_unchanged():
    page = '<html><head></head><body><span class="arithmatex">\\(z\\)</span></body></html>'
    assert pm.substitute(page, STORE) == page
    assert pm.substitute(page, pm.EMPTY) == page


def test_glyph_shapes_are_shared_by_name_and_must_agree():
    local = (
        '<mjx-container><svg><defs><path id="MJX-7-TEX-N-32" d="M2 2"></path></defs>'
        '<use xlink:href="#MJX-7-TEX-N-32"></use></svg></mjx-container>'
    )
    glyphs: dict[str, str] = {}
    shared = pm._share_glyphs("inline:2", local, glyphs)
    assert glyphs == {"TEX-N-32": "M2 2"}
    assert "<defs>" not in shared and 'xlink:href="#MJX-DPO-TEX-N-32"' in shared
    with pytest.raises(ValueError, match="two shapes"):
        pm._share_glyphs("inline:2", local.replace("M2 2", "M9 9"), glyphs)
    with pytest.raises(ValueError, match="other than glyph paths"):
        pm._share_glyphs("inline:3", local.replace("</defs>", "<clipPath></clipPath></defs>"), {})


def test_a_malformed_store_names_itself(tmp_path, monkeypatch):
    monkeypatch.delenv(pm.DISABLE_ENV, raising=False)
    bad = tmp_path / "math.json"
    bad.write_text(json.dumps({"formulas": {}}))
    with pytest.raises(ValueError, match=r"math.json: expected an object with stylesheet, glyphs, formulas"):
        pm.load(bad)
    assert pm.load(tmp_path / "missing.json") == pm.EMPTY
    monkeypatch.setenv(pm.DISABLE_ENV, "false")
    assert pm.load(math_store()) == pm.EMPTY


def test_the_committed_store_is_consistent():
    store = pm.load(math_store())
    used = {g.removeprefix(pm.GLYPH_PREFIX) for s in store["formulas"].values() for g in pm._GLYPH_USE.findall(s)}
    assert store["formulas"] and used == set(store["glyphs"])
    assert all(s.startswith("<mjx-container") and "<defs>" not in s for s in store["formulas"].values())


def test_a_display_formula_keeps_its_height_while_the_browser_skips_drawing_it():
    """site.css lets the browser skip off-screen display formulas; their box keeps the SVG's height."""
    tall = '<mjx-container jax="SVG" display="true"><svg width="100%" height="8.5ex"></svg></mjx-container>'
    store = {**STORE, "formulas": {"display:x": tall, "inline:y": svg("TEX-N-32")}}
    page = (
        '<html><head></head><body><div class="arithmatex">\\[x\\]</div><span class="arithmatex">\\(y\\)</span></body>'
    )
    out = pm.substitute(page, store)
    assert '<div class="arithmatex" style="contain-intrinsic-size:auto calc(8.5ex + 2em)"><mjx-container' in out
    assert '<span class="arithmatex"><mjx-container' in out  # inline formulas are drawn with their line
