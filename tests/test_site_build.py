"""The site builds with ``mkdocs build --strict`` and the built HTML keeps its promises.

The build runs once per test session (tests/site_support.py caches it) and is shared
with tests/test_browser.py.
"""

from __future__ import annotations

import filecmp
import json
import re
from html.parser import HTMLParser

import pytest
import yaml
from pymdownx.superfences import SuperFencesException
from site_support import ROOT, BuiltSite, build_site, built_site_once, page_paths, page_weight

from dpo_ref.figures import FIGURES
from dpo_ref.site import directives, docstrings
from dpo_ref.site import hooks as site_hooks

NAV_PAGES = [
    "/",
    "/conventions/",
    "/alignment-problem/",
    "/rlhf-pipeline/",
    "/reward-modelling/",
    "/ppo-problem/",
    "/key-insight/",
    "/dpo-loss/",
    "/beta/",
    "/dpo-vs-rlhf/",
    "/experimental-results/",
    "/bigger-picture/",
    "/further-resources/",
    "/troubleshooting/",
    "/api/",
]


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> BuiltSite:
    return built_site_once(tmp_path_factory.getbasetemp())


def read(site: BuiltSite, path: str) -> str:
    return (site.path / path.lstrip("/") / "index.html").read_text(encoding="utf-8")


class _Refs(HTMLParser):
    """Every URL the browser would fetch by itself: scripts, stylesheets, images, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "audio", "video", "source") and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href") and attrs.get("rel") not in ("canonical", "alternate"):
            self.urls.append(attrs["href"])


def test_every_page_is_built(built_site):
    assert set(NAV_PAGES) <= set(page_paths(built_site))


def test_no_page_loads_anything_from_another_host(built_site):
    for path in page_paths(built_site):
        parser = _Refs()
        parser.feed(read(built_site, path))
        remote = [u for u in parser.urls if re.match(r"^(https?:)?//", u) and not u.startswith(built_site.url)]
        assert not remote, f"{path} loads {remote}"


def test_vendored_scripts_are_served_with_their_licences(built_site):
    vendor = built_site.path / "assets" / "vendor"
    for name in ("plotly/plotly-basic.min.js", "plotly/LICENSE", "mathjax/tex-svg.js", "mathjax/LICENSE"):
        assert (vendor / name).is_file(), name
    html = read(built_site, "/beta/")
    # site.js fetches MathJax only for formulas left in TeX, and plotly.js once, when the
    # reader reaches a figure: the figures arrive drawn, so no page names plotly.js
    assert "tex-svg.js" not in html
    assert re.findall(r"<[^>]*plotly-basic[^>]*>", html) == []
    assert "plotly" not in read(built_site, "/further-resources/")
    site_js = (built_site.path / "assets/javascripts/site.js").read_text()
    assert '"../vendor/plotly/plotly-basic.min.js"' in site_js and '"../vendor/mathjax/tex-svg.js"' in site_js
    assert site_hooks.PLOTLY_JS == "assets/vendor/plotly/plotly-basic.min.js"


def test_every_formula_arrives_typeset(built_site):
    """Each page's formulas are SVG from docs/results/math.json, with the glyphs they use."""
    from dpo_ref.site import prerendered_math

    left = {p: sorted(prerendered_math.raw_formulas(read(built_site, p)))[:3] for p in page_paths(built_site)}
    left = {p: keys for p, keys in left.items() if keys}
    assert not left, f"formulas not in docs/results/math.json (run `make math`): {left}"
    html = read(built_site, "/key-insight/")
    assert html.count('class="dpo-math-glyphs"') == 1 and html.count('id="dpo-mathjax-svg"') == 1
    defined = set(re.findall(r'<path id="(MJX-DPO-[^"]+)"', html))
    used = set(re.findall(r'href="#(MJX-DPO-[^"]+)"', html))
    assert used and used == defined


# A figure's two drawings (phone width, then wide), as they sit in its first-view box.
_VIEWS = (
    r'<div class="dpo-figure__svg dpo-figure__svg--narrow"><svg class="main-svg dpo-static-svg".*?</svg></div>'
    r'<div class="dpo-figure__svg dpo-figure__svg--wide"><svg class="main-svg dpo-static-svg"[^>]*>.*?</svg></div>'
)


def test_every_figure_arrives_drawn(built_site):
    """Each Plotly figure of each page carries its first view as SVG from docs/results/figures.json,
    drawn from the figure as it is now (the store is keyed by the figure's content): in the
    page near the top, in a file of its own further down."""
    missing, lazy = {}, 0
    for path in page_paths(built_site):
        html = read(built_site, path)
        plots = re.findall(r'<div class="dpo-figure__plot" id="plot-([^"]+)"', html)
        inline = set(
            re.findall(
                r'<div class="dpo-figure__static" data-key="[0-9a-f]+">'
                + _VIEWS
                + r'</div><div class="dpo-figure__plot" id="plot-([^"]+)"',
                html,
                re.DOTALL,
            )
        )
        fetched = set()
        for src, figure_id in re.findall(
            r'<div class="dpo-figure__static" data-key="[0-9a-f]+" data-src="([^"]+)">'
            r'</div><div class="dpo-figure__plot" id="plot-([^"]+)"',
            html,
        ):
            view = (built_site.path / path.strip("/") / src).resolve()
            if view.is_file() and re.fullmatch(_VIEWS, view.read_text(encoding="utf-8"), re.DOTALL):
                fetched.add(figure_id)
        lazy += len(fetched)
        if set(plots) - inline - fetched:
            missing[path] = sorted(set(plots) - inline - fetched)
    assert not missing, f"figures not drawn ahead, or drawn from an older version (run `make figures`): {missing}"
    assert lazy > 10  # the long pages keep most drawings out of their HTML
    html = read(built_site, "/dpo-loss/")
    assert html.count('id="dpo-figure-palette"') == 1  # the colours of its figures' first views, in or out of the page
    views = [(built_site.path / "dpo-loss" / src).read_text() for src in re.findall(r'data-src="([^"]+)"', html)]
    assert "var(--dpo-c0)" in html + "".join(views)
    assert 'rel="preload"' not in html  # no plotly.js to fetch before the reader reaches a figure


def test_first_views_near_the_top_stay_in_the_page(built_site):
    """The home page's figure, on the first screen, is drawn in the page; on the longest
    page, the figures far down are files, and its HTML is a fraction of what it was
    with every drawing inline (536 kB)."""
    home = read(built_site, "/")
    assert 'class="main-svg dpo-static-svg"' in home and 'data-src="' not in home
    html = read(built_site, "/experimental-results/")
    assert html.count('data-src="') >= 5
    assert len(html.encode()) < 250_000


def test_palette_switching_rule_is_dropped(built_site, tmp_path):
    """Material's rule that made each page load restyle everything twice is gone from the
    built stylesheet; a stylesheet without it fails the build, so an upgrade is noticed."""
    sheets = list((built_site.path / "assets" / "stylesheets").glob("palette.*.min.css"))
    assert len(sheets) == 1
    text = sheets[0].read_text(encoding="utf-8")
    assert "data-md-color-switching" not in text and "data-md-color-scheme=slate" in text
    site_hooks.drop_switching_rule(built_site.path)  # a second build into the same folder is fine
    (tmp_path / "assets" / "stylesheets").mkdir(parents=True)
    unknown = text.replace(site_hooks._SWITCHING_RULE_DROPPED, "")  # as if Material had changed the rule
    (tmp_path / "assets" / "stylesheets" / sheets[0].name).write_text(unknown, encoding="utf-8")
    with pytest.raises(RuntimeError, match="switching rule has changed"):
        site_hooks.drop_switching_rule(tmp_path)


def test_figure_store_is_keyed_by_content(tmp_path):
    """Changing anything a page carries for a figure changes its key, so a stale drawing is never used."""
    from dpo_ref.figures import build_figure
    from dpo_ref.figures.html import figure_spec
    from dpo_ref.site import prerendered_figures as pf

    spec = figure_spec(build_figure("dpo-loss-margin"))
    key = pf.figure_key(spec)
    spec["figure"]["layout"]["height"] += 1
    assert pf.figure_key(spec) != key and len(key) == 20
    store = {
        "version": pf.RENDER_VERSION,
        "palette": {"a|b": ["a", "b"]},
        "figures": {key: {"narrow": "<svg>N</svg>", "wide": "<svg>W</svg>"}},
    }
    store["figures"][key]["id"] = "dpo-loss-margin"
    box, unknown = (
        f'<div class="dpo-figure__static" data-key="{key}"></div>',
        f'<div class="dpo-figure__static" data-key="{"0" * 20}"></div>',
    )
    page = f"<html><head></head><body><article><p>Some text.</p>{box}{unknown}</article></body></html>"
    out = pf.substitute(page, store, tmp_path, "../assets/figures")
    assert (
        "<svg>N</svg>" in out and "<svg>W</svg>" in out and out.count("dpo-figure__static") == 1
    )  # the unknown one is dropped
    assert "--dpo-c0:a" in out and "[data-md-color-scheme=slate]{--dpo-c0:b}" in out
    assert not (tmp_path / "assets").exists()  # near the top: in the page, no file
    # further down the page than the first screen's text: a file, which the box names
    page = page.replace("Some text.", "word " * (pf.FIRST_SCREEN_CHARS // 5 + 1))
    out = pf.substitute(page, store, tmp_path, "../assets/figures")
    assert "<svg>N</svg>" not in out
    assert f'data-key="{key}" data-src="../assets/figures/dpo-loss-margin.first-view.html"></div>' in out
    view = (tmp_path / "assets" / "figures" / "dpo-loss-margin.first-view.html").read_text()
    assert "<svg>N</svg>" in view and "<svg>W</svg>" in view


# The trace types of plotly.js's "basic" partial bundle, the one the site vendors.
BASIC_BUNDLE_TRACES = {"scatter", "bar", "pie"}


def test_every_trace_type_is_in_the_vendored_plotly_bundle(built_site):
    """A trace type outside the bundle would draw nothing: a figure needing one needs a bigger bundle."""
    used = set()
    for spec in (built_site.path / "assets" / "figures").glob("*.json"):
        used |= {trace.get("type", "scatter") for trace in json.loads(spec.read_text())["figure"]["data"]}
    assert used and used <= BASIC_BUNDLE_TRACES, used - BASIC_BUNDLE_TRACES
    assert "scatter" in used


def test_every_plot_names_its_figure_file_and_inlines_none(built_site):
    """The figures' JSON lives in files fetched when a figure becomes interactive, not in the pages."""
    named, diagrams = set(), set()
    for path in page_paths(built_site):
        html = read(built_site, path)
        assert "window.dpoFigures" not in html, path
        page_dir = built_site.path / path.strip("/")
        for figure_id, url in re.findall(
            r'class="dpo-figure__plot" id="plot-[^"]*" data-figure="([^"]+)" '
            r'data-spec="([^"]+)"',
            html,
        ):
            spec = json.loads((page_dir / url).resolve().read_text())
            assert url.endswith(f"/{figure_id}.json") and spec["figure"]["data"] and "palettes" in spec
            named.add(figure_id)
        assert html.count('class="dpo-figure__plot"') == html.count("data-spec="), path
        diagrams |= set(re.findall(r'<div class="dpo-figure dpo-figure--html" id="figure-([\w-]+)"', html))
    assert named and named == set(FIGURES) - diagrams


def test_every_figure_is_on_a_page_once(built_site):
    seen: dict[str, str] = {}
    for path in page_paths(built_site):
        for figure_id in re.findall(r'<div class="dpo-figure[^"]*" id="figure-([\w-]+)"', read(built_site, path)):
            assert figure_id not in seen, f"{figure_id} on {seen.get(figure_id)} and {path}"
            seen[figure_id] = path
    assert set(seen) == set(FIGURES)


def test_no_directive_or_fence_is_left_unrendered(built_site):
    for path in page_paths(built_site):
        html = read(built_site, path)
        assert "[[preference-tabs" not in html and "[[python-body" not in html
        assert 'class="language-figure' not in html
        if not path.startswith("/examples/"):  # example scripts show their own snippet markers
            assert "--8&lt;--" not in html and "--8<--" not in html


def test_code_is_included_from_the_package(built_site):
    html = read(built_site, "/dpo-loss/")
    for name in ("dpo_loss", "implicit_rewards", "sequence_logps"):
        assert re.search(
            rf'<span class="k">def</span>(<span class="w"> </span>| )<span class="nf">{name}</span>', html
        ), name
    # the function without its docstring: the page writes the maths as maths, not escaped TeX
    assert "\\\\frac" not in html and "logsigmoid" in html and ".. math::" not in html


def test_function_bodies_come_from_the_file_without_docstrings(tmp_path):
    source = 'def f(x):\n    """Doc.\n\n    More.\n    """\n    y = x + 1\n    return y\n\n\ndef g():\n    return 2\n'
    (tmp_path / "m.py").write_text(source)
    block = directives.python_body(tmp_path / "m.py:f")
    assert block == "```python\ndef f(x):\n    y = x + 1\n    return y\n```\n"
    with pytest.raises(ValueError, match="no function named 'h'"):
        directives.python_body(tmp_path / "m.py:h")


def test_alignment_tabs_come_from_the_data_file(built_site):
    examples = yaml.safe_load((ROOT / "docs/data/alignment_examples.yml").read_text())
    html = read(built_site, "/alignment-problem/")
    assert len(examples) >= 5 and any("lock" in e["title"].lower() for e in examples)
    labels = re.findall(r'<label for="__tabbed_1_\d+">([^<]+)</label>', html)
    assert labels == [e["title"] for e in examples]


def test_paper_betas_are_stated_correctly(built_site):
    # formulas arrive typeset: their text is the MathML that screen readers read
    text = re.sub(r"<[^>]+>", "", read(built_site, "/beta/"))
    assert re.search(r"uses β=0\.1 by default", text)
    assert re.search(r"and β=0\.5 for TL;DR", text)


class _HandWritten(HTMLParser):
    """The text of a page's article that a writer typed: outside its figure blocks (generated), the
    numbers and verdicts the macros took from the results files, the collapsed provenance blocks,
    scripts and SVG."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, bool]] = []  # (tag, whether its content is generated or not text)
        self.in_article = False
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        self.in_article |= tag == "article"
        if tag not in VOID_TAGS:
            # a figure, its menu's buttons (written from the figure), numbers and verdicts from the macros
            generated = {"dpo-figure", "dpo-figure__menu", "dpo-number", "dpo-verdict"} & set(
                classes
            ) or tag == "details"
            self.open.append((tag, tag in ("script", "style", "svg") or bool(generated)))

    def handle_endtag(self, tag):
        while self.open and self.open.pop()[0] != tag:
            pass
        self.in_article &= tag != "article"

    def handle_data(self, data):
        if self.in_article and not any(skipped for _, skipped in self.open):
            self.text.append(data)


VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

# The numbers the results page quotes from the DPO paper, each with its source in the paper:
# TL;DR win rates (Figure 2, right), CNN/DailyMail (Table 1) with its temperatures, the
# betas of Appendix B, Best of 128, Pythia-2.8B, the arXiv id.
ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}")
PAPER_NUMBERS = {quote["text"] for quote in yaml.safe_load((ROOT / "docs/data/paper_facts.yml").read_text())["quoted"]}


def test_numbers_on_the_results_page_are_the_papers_or_the_results_files(built_site):
    """Hand-written text quotes only the paper's confirmed numbers; every measured number is in a
    figure block, built from the committed results files, or came from a results file through the macros."""
    from dpo_ref.figures import build_figure
    from dpo_ref.figures.html import SPEC_FOLDER, embed, figure_spec

    html = read(built_site, "/experimental-results/")
    parser = _HandWritten()
    parser.feed(html)
    numbers = re.findall(r"\d+(?:\.\d+)*%?", " ".join(parser.text))
    # beside the quotes: section, figure and table numbers, the paper's setup (2 to 8 tokens,
    # 4 samples, 6 pairs) and model names (GPT-2, GPT-4): small integers
    # arXiv identifiers are citations and 95% the level every interval is drawn at: neither is a measurement
    invented = {
        n
        for n in numbers
        if n not in PAPER_NUMBERS and n != "95%" and not ARXIV_ID.fullmatch(n) and not (n.isdigit() and int(n) <= 10)
    }
    assert not invented, (
        f"numbers in the page's own text that neither the paper nor a results file gives: {sorted(invented)}"
    )
    figure_ids = re.findall(r'<div class="dpo-figure[^"]*" id="figure-([\w-]+)"', html)
    assert len(figure_ids) >= 8
    charts = ""
    for figure_id in figure_ids:  # each figure as built from the files: its JSON file, or a table in the page
        figure = build_figure(figure_id)
        if isinstance(figure, str):
            assert embed(figure_id, figure) in html, figure_id
            continue
        shipped = json.loads((built_site.path / SPEC_FOLDER / f"{figure_id}.json").read_text())
        assert shipped == json.loads(json.dumps(figure_spec(figure))), figure_id
        charts += json.dumps(shipped)
    # every quoted paper number is on the page: in its text, or in the chart of the paper's results
    assert not {n for n in PAPER_NUMBERS if n not in numbers and n not in html and n not in charts}
    assert "not been run yet" not in html  # no placeholder on a reader's page


PAGE_BUDGET = {"raw": 5_000_000, "gzipped": 1_600_000}  # bytes a first visit downloads


def test_every_page_fits_the_budget(built_site):
    over = {}
    for path in page_paths(built_site):
        weight = dict(zip(("raw", "gzipped"), page_weight(built_site, path)))
        over.update({f"{path} {kind}": size for kind, size in weight.items() if size >= PAGE_BUDGET[kind]})
    assert not over, f"over the budget {PAGE_BUDGET}: {over}"


def test_two_builds_are_byte_identical(built_site, tmp_path):
    again = tmp_path / "again"
    result = build_site(again, built_site.url)
    assert result.returncode == 0, result.stderr
    html_files = sorted(p.relative_to(built_site.path) for p in built_site.path.rglob("*.html"))
    _, mismatch, errors = filecmp.cmpfiles(built_site.path, again, html_files, shallow=False)
    assert not mismatch and not errors


# --------------------------------------------------------------------------- the hooks themselves


def test_broken_figure_fails_the_build():
    with pytest.raises(SuperFencesException, match="no-such-figure"):
        site_hooks.figure_fence("no-such-figure\n", "figure", "dpo-figure", {}, None)


def test_preference_tabs_validate_their_data(tmp_path):
    data = tmp_path / "examples.yml"
    data.write_text("- {title: T, prompt: P, chosen: C, rejected: '', why: W}\n")
    with pytest.raises(ValueError, match="example 0 needs a non-empty string field 'rejected'"):
        directives.preference_tabs(data)


def test_docstring_maths_becomes_arithmatex():
    text = "Loss.\n\n.. math::\n\n    a = b\n\nUses :math:`\\beta` and :func:`dpo_loss` on ``(B,)``.\n"
    out = docstrings.rst_to_markdown(text)
    assert "$$\na = b\n$$" in out and "\\(\\beta\\)" in out and "`dpo_loss`" in out and "`(B,)`" in out
    shared = "Args:\n    a, b: the same.\n        More.\n"
    assert (
        docstrings.split_shared_params(shared)
        == "Args:\n    a: the same.\n        More.\n    b: the same.\n        More.\n"
    )


def test_example_pages_say_how_to_run_them(built_site):
    """Each example page: the exact command, the script and notebook to download (their
    order on the page and the Colab links: tests/test_example_pages.py)."""
    for script in sorted((ROOT / "examples").glob("*.py")):
        name = script.stem
        html = read(built_site, f"/examples/{name}/")
        box = re.search(r'<div class="admonition example dpo-run">(.*?)</div>', html, re.DOTALL)
        assert box, name
        box = box[1]
        assert re.search(rf"<code>([^<]*\n)?python examples/{name}\.py\s", box), (name, box[:300])
        for download in (f"{name}.py", f"{name}.ipynb"):
            assert f'href="{download}" download' in box and (built_site.path / "examples" / name / download).is_file()
    assert (built_site.path / "examples/dpo_from_scratch/dpo_from_scratch.py").read_bytes() == (
        ROOT / "examples/dpo_from_scratch.py"
    ).read_bytes()


def test_every_measured_figure_has_a_one_sentence_takeaway_above_it(built_site):
    """A measured plot on a page (not in a collapsed block) is led by one sentence that says what it shows."""
    figure = re.compile(r'<div class="dpo-figure[^"]*" id="figure-((?:measured|sentiment)-[\w-]+)"')
    found = 0
    for path in page_paths(built_site):
        html = read(built_site, path)
        for match in figure.finditer(html):
            before = html[: match.start()]
            if match.group(1).endswith("-table") or before.count("<details") > before.count("</details>"):
                continue
            found += 1
            before = re.sub(r'(<div class="dpo-figure__menu".*?</div>\s*)+$', "", before, flags=re.S)  # its menu row
            lead = re.search(r'<p class="dpo-takeaway">((?:(?!<p[ >]).)*?)</p>\s*$', before, re.S)
            assert lead, f"{match.group(1)} on {path} has no takeaway paragraph just above it"
            text = re.sub(r"<[^>]+>", "", lead.group(1)).strip()
            assert text.endswith(".") and not re.search(r"[.!?]\s+[A-Z]", text), f"{path}: not one sentence: {text}"
    assert found >= 15  # every results page has its measured figures
