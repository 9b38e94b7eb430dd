"""The example scripts' pages: what mkdocs-jupyter renders, made to read like the sections.

mkdocs-jupyter turns each ``examples/NAME.py`` (or its recorded notebook) into a page
through nbconvert. :func:`finish` (called by :func:`dpo_ref.site.hooks.on_post_page`)
then, on that page's HTML:

* drops nbconvert's CDN scripts (MathJax 2, mermaid) and an empty ``<script src="">``;
* drops the module docstring's code cell, which jupytext makes the first cell and which
  printed the docstring again as an escaped string above the page's title;
* puts the docstring where a reader looks first, under the title: what the script
  does, how long it takes (the docstring's measured runtime and the recording's own
  wall time), and a box to run it, download it or open it in Colab;
* writes the Markdown cells' ``$...$`` and ``$$...$$`` as pymdownx.arithmatex writes
  the sections' formulas, so the build puts the typeset SVG in their place
  (:mod:`dpo_ref.site.prerendered_math`) and the page never fetches MathJax;
* numbers the cells (jupytext's ids are random) and mends the table of contents' links;
* keeps of JupyterLab's stylesheet, which nbconvert puts into every page (570 kB, four
  fifths of the page), only the rules that can style the page (:func:`used_css`).

The Colab and install links name the repository the site was built from
(``repo_url`` in ``mkdocs.yml``, set from ``DPO_REPO_URL`` by the Pages workflow); a
build without one shows neither.
"""

from __future__ import annotations

import ast
import datetime
import html
import re
from pathlib import Path

import markdown
import tinycss2

from dpo_ref.site.docstrings import rst_to_markdown

# nbconvert puts a MathJax 2 block and a mermaid loader, both from CDNs, into notebook
# pages, and a MathJax <script src=""> when no MathJax address is configured.
_NOTEBOOK_CDN = re.compile(
    r"<script[^>]*src=\"(?:https?://[^\"]*)?\"[^>]*>\s*</script>"
    r"|<script[^>]*>(?:(?!</script>).)*?(?:MathJax\.Hub|cdn\.jsdelivr|unpkg\.com|mermaid)(?:(?!</script>).)*?</script>",
    re.DOTALL,
)

# jupytext gives every cell a random id when it reads a .py file; recorded notebooks have
# their own ids. Either way the page numbers its cells.
_CELL_ID = re.compile(r'id="cell-id=[\w-]+"')

_CODE_CELL = '<div class="jp-Cell jp-CodeCell jp-Notebook-cell">'
_MARKDOWN_OUTPUT = re.compile(r'<div class="[^"]*\bjp-MarkdownOutput\b[^"]*"[^>]*>')
_COPY_TEXT = re.compile(r'<div class="clipboard-copy-txt"[^>]*>(.*?)</div>', re.DOTALL)
_DIV_TAG = re.compile(r"<(/?)div\b[^>]*>")

# The command and runtime an example's docstring gives first, e.g.
#     python examples/dpo_from_scratch.py            # about 15 s on a 2-core CPU (measured 13 s)
_RUN_LINE = re.compile(r"^\s+(?P<command>python examples/\S+\.py)\s+#\s*(?P<runtime>.*?)\s*$", re.M)


def finish(page_html: str, script: Path, repo_url: str | None, recording: dict | None) -> str:
    """The rendered page of ``script`` as the site shows it (see the module docstring).

    ``recording``: the ``dpo_ref`` metadata of the recorded notebook the page shows, or
    None when the build ran the script itself.
    """
    page_html = _NOTEBOOK_CDN.sub("", page_html)
    page_html = drop_docstring_cell(page_html)
    counter = iter(range(1, 1_000_000))
    page_html = _CELL_ID.sub(lambda _: f'id="cell-id={next(counter)}"', page_html)
    page_html = _fix_toc_links(page_html)
    page_html = typesettable_maths(page_html)
    page_html = _JUPYTER_STYLE.sub(lambda m: m[1] + used_css(m[2], page_html) + m[3], page_html)
    article = page_html.find('<article class="md-content__inner')
    title_end = page_html.find("</h1>", article) if article >= 0 else -1
    if title_end < 0:
        raise ValueError(f"{script.name}: its page has no title (the first Markdown cell must start with `# Title`)")
    title = re.sub(r"<[^>]+>", "", page_html[page_html.rfind("<h1", 0, title_end) : title_end])
    title = html.unescape(re.sub(r"^[^>]*>", "", title)).removesuffix("¶").strip()
    at = title_end + len("</h1>")
    return page_html[:at] + first_screen(script, title, repo_url, recording) + page_html[at:]


def _element_end(text: str, start: int) -> int:
    """The index just past the ``</div>`` that closes the ``<div`` at ``start``."""
    depth = 0
    for tag in _DIV_TAG.finditer(text, start):
        depth += -1 if tag[1] else 1
        if depth == 0:
            return tag.end()
    raise ValueError(f"unbalanced <div> from offset {start}")


def drop_docstring_cell(page_html: str) -> str:
    """The page without its first code cell if that cell is only the module's docstring."""
    start = page_html.find(_CODE_CELL)
    if start < 0:
        return page_html
    end = _element_end(page_html, start)
    source = _COPY_TEXT.search(page_html, start, end)
    text = html.unescape(source[1]).strip() if source else ""
    try:
        only_a_string = isinstance(ast.literal_eval(text), str) if text else False
    except (ValueError, SyntaxError):
        only_a_string = False
    return page_html[:start] + page_html[end:] if only_a_string else page_html


# Display maths as a paragraph of its own; inline maths between single dollars. Code
# (inline or a block) is left as it is.
_DISPLAY = re.compile(r"<p>\s*\$\$(?P<tex>.+?)\$\$\s*</p>", re.DOTALL)
_INLINE = re.compile(r"(?<![\\$])\$(?P<tex>[^$<>]+?)(?<!\\)\$")
_CODE = re.compile(r"(<code\b.*?</code>|<pre\b.*?</pre>)", re.DOTALL)


def typesettable_maths(page_html: str) -> str:
    """Jupyter's ``$...$`` and ``$$...$$`` in the Markdown cells, as arithmatex's containers.

    pymdownx.arithmatex (generic mode) writes ``<span class="arithmatex">\\(...\\)</span>``
    and ``<div class="arithmatex">\\[...\\]</div>``; :func:`dpo_ref.site.prerendered_math.substitute`
    replaces those by their typeset SVG, and ``dpo-ref math`` collects them to typeset.
    ``$$`` in the middle of a paragraph is left as TeX (site.js typesets it in the browser).
    """
    out: list[str] = []
    position = 0
    for opening in _MARKDOWN_OUTPUT.finditer(page_html):
        if opening.start() < position:  # a Markdown output inside one already done
            continue
        end = _element_end(page_html, opening.start())
        out.append(page_html[position : opening.end()])
        out.append(_cell_maths(page_html[opening.end() : end]))
        position = end
    out.append(page_html[position:])
    return "".join(out)


def _cell_maths(cell: str) -> str:
    parts = _CODE.split(cell)
    for i in range(0, len(parts), 2):  # the odd parts are code
        text = _DISPLAY.sub(lambda m: f'<div class="arithmatex">\\[{m["tex"].strip()}\\]</div>', parts[i])
        parts[i] = _INLINE.sub(lambda m: f'<span class="arithmatex">\\({m["tex"].strip()}\\)</span>', text)
    return "".join(parts)


# mkdocs-jupyter's table of contents slugs a heading only up to its first inline code
# ("## The same numbers from `dpo_ref`" -> "#the-same-numbers-from"), while the heading's
# id has it all ("the-same-numbers-from-dpo_ref"): point such links at the one id they begin.
def _fix_toc_links(output: str) -> str:
    ids = set(re.findall(r'\sid="([^"]+)"', output))

    def fix(match: re.Match) -> str:
        fragment = match[1]
        if fragment in ids:
            return match[0]
        longer = [i for i in ids if i.startswith(fragment + "-")]
        return f'href="#{longer[0]}"' if len(longer) == 1 else match[0]

    return re.sub(r'href="#([^"]+)"', fix, output)


# JupyterLab's stylesheet as nbconvert's "lab" template writes it into the page.
_JUPYTER_STYLE = re.compile(r'(<style type="text/css">\s*@charset "UTF-8";)(\.jupyter-wrapper.*?)(</style>)', re.DOTALL)
# Pseudo-classes whose arguments may match elements of classes the page does not have.
_OPAQUE_PSEUDO = {"is", "where", "has", "matches", "-webkit-any", "-moz-any"}


def used_css(css: str, page_html: str) -> str:
    """The rules of ``css`` that can match an element of ``page_html``.

    A selector needs every class it names (outside ``:not()``) on the page; a selector
    with ``:is()``, ``:where()`` or ``:has()`` is kept whatever it names, and one with
    ``:root`` after another part (``.jupyter-wrapper :root``, most of JupyterLab's
    variables) matches nothing. ``@media`` blocks keep their matching rules; other
    at-rules (keyframes) stay whole. The pages are static: no script adds a class that
    the built HTML does not have.
    """
    classes = set(" ".join(re.findall(r'class="([^"]*)"', page_html)).split())
    rules = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    return "".join(_kept_rule(rule, classes) for rule in rules)


def _kept_rule(rule, classes: set[str]) -> str:
    if rule.type == "qualified-rule":
        if not any(_may_match(selector, classes) for selector in _selectors(rule.prelude)):
            return ""
        return tinycss2.serialize(rule.prelude).strip() + "{" + tinycss2.serialize(rule.content) + "}"
    if rule.type == "at-rule" and rule.lower_at_keyword == "charset":
        return ""  # ignored inside <style>
    if rule.type == "at-rule" and rule.lower_at_keyword == "media" and rule.content is not None:
        inner = tinycss2.parse_rule_list(rule.content, skip_comments=True, skip_whitespace=True)
        body = "".join(_kept_rule(r, classes) for r in inner)
        return "@media" + tinycss2.serialize(rule.prelude) + "{" + body + "}" if body else ""
    return rule.serialize()


def _selectors(prelude: list) -> list[list]:
    """A selector list's selectors, each as its tokens (split at the top-level commas)."""
    selectors: list[list] = [[]]
    for token in prelude:
        if token.type == "literal" and token.value == ",":
            selectors.append([])
        else:
            selectors[-1].append(token)
    return selectors


def _may_match(tokens: list, classes: set[str]) -> bool:
    tokens = [t for t in tokens if t.type != "comment"]
    for i, token in enumerate(tokens):
        if token.type == "function" and token.lower_name in _OPAQUE_PSEUDO:
            return True
        is_class = (
            token.type == "literal" and token.value == "." and i + 1 < len(tokens) and tokens[i + 1].type == "ident"
        )
        if is_class and tokens[i + 1].value not in classes:
            return False
        # ":root" after a combinator: the root element is no element's descendant or sibling
        previous = tokens[i - 1] if i > 0 else None
        after_combinator = previous is not None and (
            previous.type == "whitespace" or (previous.type == "literal" and previous.value in (">", "+", "~"))
        )
        if (
            token.type == "literal"
            and token.value == ":"
            and after_combinator
            and i + 1 < len(tokens)
            and tokens[i + 1].type == "ident"
            and tokens[i + 1].lower_value == "root"
        ):
            return False
    return True


# --------------------------------------------------------------------------- the first screen


def colab_url(repo_url: str | None, notebook: str) -> str | None:
    """Colab's address for a notebook of a GitHub repository (``main`` branch), if the site names one."""
    match = re.match(r"https://github\.com/([^/]+)/([^/#?]+?)(?:\.git)?/?$", repo_url or "")
    if not match:
        return None
    return f"https://colab.research.google.com/github/{match[1]}/{match[2]}/blob/main/{notebook}"


def docstring_parts(script: Path) -> tuple[str, list[str], str, str]:
    """``(summary, description paragraphs, command lines, runtime of the first command)``
    from the module docstring of ``script``.

    The docstring is the summary line, then the commands (indented, each with a ``#``
    comment; the first says how long it runs), then what the script does.
    """
    docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    found = _RUN_LINE.search(docstring or "")
    if found is None:
        raise ValueError(
            f"{script}: its docstring must start with the command and its runtime "
            "(`    python examples/NAME.py    # about N s on a 2-core CPU`)"
        )
    paragraphs = [p for p in re.split(r"\n\s*\n", docstring) if p.strip()]
    commands = [p for p in paragraphs[1:] if all(line.startswith((" ", "\t")) for line in p.splitlines())]
    description = [p for p in paragraphs[1:] if p not in commands]
    command_lines = "\n".join(
        line[4:] if line.startswith("    ") else line.lstrip() for c in commands for line in c.splitlines()
    )
    return paragraphs[0].strip(), description, command_lines, found["runtime"]


def first_screen(script: Path, title: str, repo_url: str | None, recording: dict | None) -> str:
    """What goes under an example page's title: what the script does, how long it takes, how to run it."""
    summary, description, commands, runtime = docstring_parts(script)
    esc = html.escape
    # "DPO from scratch: log-probs, ..." under the title "DPO from scratch" says it once
    if summary.lower().startswith(title.lower() + ":"):
        summary = summary[len(title) + 1 :].strip()
        summary = summary[:1].upper() + summary[1:]
    what = markdown.markdown("\n\n".join([summary, *(rst_to_markdown(p) for p in description)]))
    time = f"<strong>How long:</strong> {esc(runtime)}."
    if recording is not None:
        day = datetime.datetime.fromisoformat(recording["date"]).strftime("%-d %B %Y")
        time += (
            f" The outputs below are from its fast mode (<code>--smoke</code>), recorded on {day}: "
            f"{recording['wall_time_s']:g} s as a notebook."
        )
    name = script.stem
    links = [
        f'<a href="{name}.py" download>the script ({name}.py)</a>',
        f'<a href="{name}.ipynb" download>the notebook ({name}.ipynb)</a>',
    ]
    colab = colab_url(repo_url, f"docs/results/examples/{name}.ipynb")
    install = ""
    if colab:
        links.append(f'<a href="{esc(colab)}">open it in Colab</a>')
        install = (
            f' In Colab, run <code>!pip install "dpo_ref @ git+{esc(repo_url.rstrip("/"))}"</code> in a first '
            "cell: the notebook imports the package."
        )
    return (
        f'<div class="dpo-example-intro">{what}<p class="dpo-example-intro__time">{time}</p></div>'
        '<div class="admonition example dpo-run">'
        '<p class="admonition-title">Run it yourself</p>'
        f'<pre class="dpo-run__command"><code>{esc(commands)}</code></pre>'
        f"<p>Download {', '.join(links[:-1])} or {links[-1]}. Run the command from a checkout of the "
        f"repository after <code>pip install -e .</code>; add <code>--smoke</code> for its fast mode.{install}</p>"
        "</div>"
    )
