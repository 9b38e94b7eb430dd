"""The example scripts' pages (dpo_ref/site/example_pages.py): their first screen, their
formulas typeset at build time, their code, and the repository links.

The unit tests run on small HTML; the others read the site that tests/site_support.py
builds once per session (shared with test_site_build.py and test_browser.py), and open
it in Chromium where layout matters.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from site_support import CHROMIUM_ARGS, ROOT, BuiltSite, built_site_once

from dpo_ref.site import example_pages
from dpo_ref.site.server import CHROMIUM

EXAMPLES = sorted(path.stem for path in (ROOT / "examples").glob("*.py"))
SCRIPT = ROOT / "examples" / "dpo_from_scratch.py"
RECORDING = {"date": "2026-11-30T17:04:01+00:00", "wall_time_s": 13.1}

DOCSTRING_CELL = (
    '<div class="jp-Cell jp-CodeCell jp-Notebook-cell"><div class="jp-Cell jp-CodeCell jp-Notebook-cell" id="cell-id=a">'
    '<div class="clipboard-copy-txt" id="cell-1">"""Docstring.\n\n    python examples/x.py\n"""</div>'
    "<div class=\"jp-OutputArea\"><pre>'Docstring.\\n'</pre></div></div></div>"
)
CODE_CELL = (
    '<div class="jp-Cell jp-CodeCell jp-Notebook-cell"><div class="jp-Cell jp-CodeCell jp-Notebook-cell" id="cell-id=b">'
    '<div class="clipboard-copy-txt" id="cell-2">import torch\n"""not only a string"""</div></div></div>'
)


def markdown_cell(inner: str) -> str:
    return f'<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown jp-MarkdownOutput" data-mime-type="text/markdown">{inner}</div>'


# --------------------------------------------------------------------------- on small HTML


def test_the_docstring_cell_is_dropped_and_nothing_else():
    page = "<article>" + DOCSTRING_CELL + markdown_cell("<h1>T</h1>") + CODE_CELL + "</article>"
    out = example_pages.drop_docstring_cell(page)
    assert out == "<article>" + markdown_cell("<h1>T</h1>") + CODE_CELL + "</article>"
    # a first code cell that does more than hold a string stays
    assert example_pages.drop_docstring_cell(CODE_CELL + DOCSTRING_CELL) == CODE_CELL + DOCSTRING_CELL


def test_markdown_maths_becomes_arithmatex_containers_but_code_does_not():
    cell = markdown_cell(
        "<p>policy $\\pi_\\theta$ and <code>cost = $5 or $6</code></p>\n<p>$$a &lt; b$$</p><p>mid $$x$$ paragraph</p>"
    )
    out = example_pages.typesettable_maths("<p>outside $y$</p>" + cell)
    assert '<span class="arithmatex">\\(\\pi_\\theta\\)</span>' in out
    assert '<div class="arithmatex">\\[a &lt; b\\]</div>' in out and "<p><div" not in out
    assert "<code>cost = $5 or $6</code>" in out  # code is never maths
    assert out.startswith("<p>outside $y$</p>")  # only the Markdown cells hold notebook maths
    assert "mid $$x$$ paragraph" in out  # left to the browser rather than made a <div> inside a <p>


def test_docstring_parts_split_summary_commands_and_description():
    summary, description, commands, runtime = example_pages.docstring_parts(SCRIPT)
    assert summary.startswith("DPO from scratch: log-probs")
    assert commands.splitlines()[0].startswith("python examples/dpo_from_scratch.py ")
    assert "--smoke" in commands.splitlines()[1]
    assert runtime == "about 15 s on a 2-core CPU (measured 13 s)"
    assert description[0].startswith("Builds a tiny GPT-2") and not any("python examples" in p for p in description)


def test_a_docstring_without_command_and_runtime_is_a_clear_error(tmp_path):
    script = tmp_path / "nameless.py"
    script.write_text('"""Does things.\n\nMore words.\n"""\n')
    with pytest.raises(ValueError, match=r"nameless\.py: its docstring must start with the command and its runtime"):
        example_pages.docstring_parts(script)


def test_first_screen_order_and_links_with_a_repository():
    box = example_pages.first_screen(SCRIPT, "DPO from scratch", "https://github.com/someone/dpo-fork/", RECORDING)
    what = box.index("Log-probs, implicit rewards")  # the title is not said twice
    time = box.index("How long:")
    run = box.index('class="admonition example dpo-run"')
    assert what < time < run
    assert "13.1 s as a notebook" in box and "30 November 2026" in box and "(measured 13 s)" in box
    colab = "https://colab.research.google.com/github/someone/dpo-fork/blob/main/docs/results/examples/dpo_from_scratch.ipynb"
    assert f'href="{colab}"' in box
    assert '!pip install "dpo_ref @ git+https://github.com/someone/dpo-fork"' in box


def test_no_repository_no_colab_or_install_links():
    box = example_pages.first_screen(SCRIPT, "DPO from scratch", None, None)
    assert "colab" not in box.lower() and "git+" not in box
    assert "recorded on" not in box  # a page the build ran itself has no recording to speak of
    assert 'href="dpo_from_scratch.py" download' in box and 'href="dpo_from_scratch.ipynb" download' in box
    # an address that is not a GitHub repository gives no Colab link either
    assert example_pages.colab_url("https://gitlab.com/a/b", "x.ipynb") is None


def test_the_repository_address_comes_from_the_environment_the_pages_workflow_sets():
    from mkdocs.config import load_config

    saved = os.environ.pop("DPO_REPO_URL", None)
    try:
        assert load_config(str(ROOT / "mkdocs.yml"))["repo_url"] is None
        os.environ["DPO_REPO_URL"] = "https://github.com/someone/dpo-fork"
        assert load_config(str(ROOT / "mkdocs.yml"))["repo_url"] == "https://github.com/someone/dpo-fork"
    finally:
        os.environ.pop("DPO_REPO_URL", None)
        if saved is not None:
            os.environ["DPO_REPO_URL"] = saved
    workflow = yaml.safe_load((ROOT / ".github/workflows/pages.yml").read_text())
    build = next(step for step in workflow["jobs"]["build"]["steps"] if "mkdocs build" in step.get("run", ""))
    assert build["env"]["DPO_REPO_URL"] == "${{ github.server_url }}/${{ github.repository }}"


# --------------------------------------------------------------------------- the built site


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> BuiltSite:
    return built_site_once(tmp_path_factory.getbasetemp())


def _page(site: BuiltSite, name: str) -> str:
    return (site.path / "examples" / name / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_every_example_page_opens_with_title_what_time_and_run_box(built_site):
    for name in EXAMPLES:
        html = _page(built_site, name)
        article = html[html.index('<article class="md-content__inner') :]
        marks = [
            article.find(m)
            for m in ("<h1", 'class="dpo-example-intro"', "How long:", 'class="admonition example dpo-run"')
        ]
        assert -1 not in marks and marks == sorted(marks), (name, marks)
        first_code = article.find('<div class="jp-Cell jp-CodeCell')
        assert first_code > marks[-1], name  # no code cell above the title and the box
        assert "\\n" not in re.sub(r"<[^>]+>", "", article[: marks[-1]]), name  # no escaped docstring
        assert re.search(r"How long:</strong> [^<]*(measured [\d.]+ s|\d+ s)", article), name
        assert (built_site.path / "examples" / name / f"{name}.py").is_file()
        assert (built_site.path / "examples" / name / f"{name}.ipynb").is_file()


@pytest.mark.slow
def test_a_build_without_a_repository_address_links_to_none(built_site):
    for name in EXAMPLES:
        html = _page(built_site, name)
        assert "colab.research.google.com" not in html and "git+https" not in html, name
        assert 'class="md-source"' not in html, name  # nor does the header


@pytest.mark.slow
def test_example_pages_formulas_arrive_typeset(built_site):
    for name in EXAMPLES:
        html = _page(built_site, name)
        cells = re.findall(r'jp-MarkdownOutput"[^>]*>(.*?)</div>\s*</div>', html, re.DOTALL)
        text = re.sub(r"<code>.*?</code>|<[^>]+>", "", "".join(cells), flags=re.DOTALL)
        assert not re.search(r"\$[^$\s][^$]*\$", text), (name, re.search(r"\$[^$\s][^$]*\$", text))
        assert not re.search(r"\\\(|\\\[", text), name  # every container got its SVG
    assert _page(built_site, "dpo_from_scratch").count('<div class="arithmatex"') >= 1


# --------------------------------------------------------------------------- in Chromium

browser_only = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason=f"{CHROMIUM} not found"
)

# Every code block of the page that is wider than its box: it must be a box that scrolls
# sideways with a scrollbar shown (not clipped by an ancestor, not scrollbar-width: none).
CUT_CODE = """() => {
  const out = [];
  const blocks = document.querySelectorAll('.md-content .highlight-ipynb, .md-content pre > code, .md-content .jp-OutputArea pre');
  for (const block of blocks) {
    if (block.offsetParent === null || block.scrollWidth <= block.clientWidth + 1) continue;
    const style = getComputedStyle(block);
    const scrolls = ['auto', 'scroll'].includes(style.overflowX) && style.scrollbarWidth !== 'none';
    if (!scrolls) out.push(`${block.className || block.tagName}: ${block.scrollWidth} px in ${block.clientWidth}, overflow-x ${style.overflowX}`);
  }
  // and a scrolling box must itself be whole: no ancestor inside the content cuts it
  for (const block of blocks) {
    const box = block.getBoundingClientRect();
    for (let up = block.parentElement; up && !up.classList.contains('md-content'); up = up.parentElement) {
      const frame = up.getBoundingClientRect();
      if (getComputedStyle(up).overflowX !== 'visible' && box.right > frame.right + 1) {
        out.push(`${block.className || block.tagName} cut by ${up.className}: right ${box.right} > ${frame.right}`);
        break;
      }
    }
  }
  return out;
}"""


@pytest.fixture(scope="module")
def browser(built_site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@browser_only
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("width", [390, 1280])
def test_example_pages_load_no_mathjax_and_cut_no_code(browser, built_site, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    problems = []
    try:
        for name in EXAMPLES:
            path = f"/examples/{name}/"
            page.goto(built_site.url.rstrip("/") + path)
            page.wait_for_function("p => window.dpoSite && window.dpoSite.readyPath === p", arg=path, timeout=30_000)
            problems += [f"{path}: {p}" for p in page.evaluate(CUT_CODE)]
            typeset = page.evaluate(
                "document.querySelectorAll('.jp-MarkdownOutput .arithmatex mjx-container svg').length"
            )
            if not typeset:
                problems.append(f"{path}: no typeset formula in its Markdown cells")
    finally:
        context.close()
    # (mathjax-config.js, its few settings, is on every page; the TeX engine is vendor/mathjax/)
    assert not [url for url in requested if "/vendor/mathjax/" in url], "an example page fetched MathJax"
    assert not problems, "\n".join(problems)


def test_only_the_stylesheet_rules_that_can_match_the_page_are_kept():
    page = '<div class="jupyter-wrapper"><div class="jp-Cell jp-CodeCell">x</div></div>'
    css = (
        ".jupyter-wrapper{--a:1}"
        ".jupyter-wrapper :root{--b:2}"  # the root is no element's descendant
        ".jupyter-wrapper .jp-Cell{color:red}"
        ".jupyter-wrapper .jp-Toolbar{color:blue}"  # no toolbar on the page
        ".jp-Toolbar,.jp-CodeCell>.x,.jp-CodeCell{margin:0}"  # one selector of three can match
        ".jp-Cell:not(.jp-mod-active){opacity:1}"  # :not() of a class the page lacks still matches
        ".jp-Cell:is(.a,.b){top:0}"  # kept: what :is() names is not read
        "@media (max-width:10px){.jp-Cell{left:0}.jp-Slider{left:1px}}"
        "@media print{.jp-Slider{left:1px}}"  # nothing left in it
        "@keyframes spin{from{top:0}to{top:1px}}"
    )
    kept = example_pages.used_css(css, page)
    assert ".jupyter-wrapper{--a:1}" in kept and ":root" not in kept
    assert ".jupyter-wrapper .jp-Cell{color:red}" in kept and "color:blue" not in kept
    assert ".jp-Toolbar,.jp-CodeCell>.x,.jp-CodeCell{margin:0}" in kept
    assert ".jp-Cell:not(.jp-mod-active){opacity:1}" in kept and ".jp-Cell:is(.a,.b){top:0}" in kept
    assert "@media (max-width:10px){.jp-Cell{left:0}}" in kept and "print" not in kept
    assert "@keyframes spin" in kept
