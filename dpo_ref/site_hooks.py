"""MkDocs glue: figures into pages at build time, data-driven tabs, docstring maths,
example pages from recorded notebooks, and formulas typeset ahead of time.

Registered in ``mkdocs.yml`` in three places:

* ``hooks: [dpo_ref/site_hooks.py]`` runs the ``on_*`` functions below;
* ``pymdownx.superfences`` calls :func:`figure_fence` for every ```` ```figure ```` block;
* mkdocstrings loads :class:`RstMath` so the package's reST-style maths renders.

A figure that fails to build fails the site build: superfences would otherwise show
the fence as plain code and ``--strict`` would still pass.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import sys
from html import escape
from pathlib import Path

import griffe
import yaml
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url
from pymdownx.superfences import SuperFencesException

from dpo_ref import prerendered_math
from dpo_ref.example_notebooks import EXAMPLES_DIR, NOTEBOOK_ENV, current_recording
from dpo_ref.example_notebooks import scripts as example_scripts

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("mkdocs.hooks.dpo_ref")
_math_store = prerendered_math.EMPTY  # loaded by on_config at every build

# --------------------------------------------------------------------------- figures


def figure_fence(source: str, language: str, class_name: str, options: dict, md, **kwargs) -> str:
    """Superfences formatter: the fence body is a figure id from ``dpo_ref.figures.FIGURES``."""
    figure_id = source.strip()
    try:
        from dpo_ref.figures import build_figure
        from dpo_ref.figures.html import embed

        return embed(figure_id, build_figure(figure_id))
    except Exception as exc:  # superfences swallows anything else and prints the fence as code
        raise SuperFencesException(f"figure {figure_id!r} failed to build: {exc!r}") from exc


def on_pre_build(config, **kwargs) -> None:
    """Under ``mkdocs serve``, reload the figure modules so edits show up on rebuild."""
    for name in [m for m in sys.modules if m.startswith("dpo_ref.figures")]:
        del sys.modules[name]


# --------------------------------------------------------------------------- example pages

def on_config(config, **kwargs):
    """Example pages: recorded outputs where current, else the script runs in its fast mode.

    See :mod:`dpo_ref.example_notebooks` for the recordings. A script that runs here is
    cached until the code it runs changes: mkdocs-jupyter keys its cache on the
    notebook's own text only, so an edit to the package would keep serving outputs the
    current code no longer produces. Each fingerprint of ``dpo_ref/`` and ``examples/``
    gets its own cache folder.
    """
    import os

    global _math_store
    _math_store = prerendered_math.load()
    for key, value in NOTEBOOK_ENV.items():  # the kernel inherits them
        os.environ.setdefault(key, value)
    jupyter = config.plugins.get("mkdocs-jupyter")
    if jupyter is not None and jupyter.config.get("cache"):
        base = Path(jupyter.config["cache_dir"])
        current = base / code_fingerprint()
        if base.is_dir():  # outputs of older code are never read again
            for stale in base.iterdir():
                if stale.is_dir() and stale != current:
                    shutil.rmtree(stale, ignore_errors=True)
        jupyter.config["cache_dir"] = str(current)
    return config


def code_fingerprint() -> str:
    """A short hash of every Python file the executed examples can reach."""
    digest = hashlib.sha256()
    for folder in (ROOT / "dpo_ref", EXAMPLES_DIR):
        for path in sorted(folder.rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@event_priority(100)  # before mkdocs-jupyter turns matching files into notebook pages
def on_files(files, config, **kwargs):
    """Publish ``examples/*.py`` (outside docs/) as pages at ``examples/NAME/``."""
    for script in example_scripts():
        src_uri = f"examples/{script.name}"
        if files.get_file_from_path(src_uri) is None:
            files.append(File(src_uri, src_dir=str(ROOT), dest_dir=config["site_dir"],
                              use_directory_urls=config["use_directory_urls"]))
    return files


@event_priority(100)  # before mkdocs-jupyter reads the page's notebook
def on_pre_page(page, config, files, **kwargs):
    """An example page is made from its recorded notebook (outputs included, nothing run)
    while that recording is current; otherwise the build runs the script."""
    if not (page.file.src_uri.startswith("examples/") and page.file.src_uri.endswith(".py")):
        return page
    script = EXAMPLES_DIR / Path(page.file.src_uri).name
    recorded = current_recording(script)
    if recorded is not None:
        page.file.abs_src_path = str(recorded)  # mkdocs-jupyter renders this file instead
    else:
        log.info("%s has no current recorded outputs: the build runs it (`make examples` records them)",
                 page.file.src_uri)
    return page


# nbconvert puts a MathJax 2 block and a mermaid loader, both from CDNs, into notebook pages.
_NOTEBOOK_CDN = re.compile(
    r"<script[^>]*src=\"https?://[^\"]*\"[^>]*>\s*</script>"
    r"|<script[^>]*>(?:(?!</script>).)*?(?:MathJax\.Hub|cdn\.jsdelivr|unpkg\.com|mermaid)(?:(?!</script>).)*?</script>",
    re.DOTALL,
)


# jupytext gives every cell a random id when it reads a .py file; recorded notebooks have
# their own ids. Either way the page numbers its cells.
_CELL_ID = re.compile(r'id="cell-id=[\w-]+"')


# What site.js fetches for a page with a figure (its PLOTLY_SRC; a test checks they agree).
PLOTLY_JS = "assets/vendor/plotly/plotly-basic.min.js"


def on_post_page(output: str, page, config, **kwargs) -> str:
    """Formulas as their stored SVG (:mod:`dpo_ref.prerendered_math`); a page with a figure
    starts downloading plotly.js as soon as its head is read; notebook pages: strip
    nbconvert's CDN scripts, and number cells so builds are reproducible."""
    if page.file.src_uri.startswith("examples/") and page.file.src_uri.endswith(".py"):
        output = _NOTEBOOK_CDN.sub("", output)
        counter = iter(range(1, 1_000_000))
        output = _CELL_ID.sub(lambda _: f'id="cell-id={next(counter)}"', output)
    if 'class="dpo-figure__plot"' in output:
        href = get_relative_url(PLOTLY_JS, page.url)
        output = output.replace("</head>", f'<link rel="preload" href="{href}" as="script"></head>', 1)
    return prerendered_math.substitute(output, _math_store)


# --------------------------------------------------------------------------- data-driven tabs

# A line of its own such as  [[preference-tabs data/alignment_examples.yml]]
DIRECTIVE = re.compile(r"^\[\[(?P<name>[a-z-]+) (?P<arg>[^\]\s]+)\]\]\s*$", re.MULTILINE)


def preference_tabs(path: Path) -> str:
    """Markdown content tabs, one per prompt, preferred vs rejected answer side by side."""
    examples = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(examples, list) or not examples:
        raise ValueError(f"{path}: expected a non-empty list of examples")
    parts = []
    for i, ex in enumerate(examples):
        for field in ("title", "prompt", "chosen", "rejected", "why"):
            if not isinstance(ex.get(field), str) or not ex[field].strip():
                raise ValueError(f"{path}: example {i} needs a non-empty string field {field!r}")
        body = [
            f"**Prompt.** {ex['prompt'].strip()}",
            "",
            '<div class="grid cards dpo-pair" markdown>',
            "",
            f"-   :material-thumb-up-outline: **Preferred** (y<sub>w</sub>)\n\n    ---\n\n"
            + _indent(ex["chosen"].strip(), 4),
            f"-   :material-thumb-down-outline: **Rejected** (y<sub>l</sub>)\n\n    ---\n\n"
            + _indent(ex["rejected"].strip(), 4),
            "",
            "</div>",
            "",
            f"**Why people prefer it.** {ex['why'].strip()}",
        ]
        parts.append(f'=== "{escape(ex["title"].strip())}"\n\n' + _indent("\n".join(body), 4))
    return "\n\n".join(parts) + "\n"


def _indent(text: str, n: int) -> str:
    pad = " " * n
    return "\n".join(pad + line if line.strip() else "" for line in text.splitlines())


DIRECTIVES = {"preference-tabs": preference_tabs}


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    """Expand ``[[name path]]`` lines; the path is relative to ``docs_dir``."""
    docs_dir = Path(config["docs_dir"])

    def expand(match: re.Match) -> str:
        name, arg = match["name"], match["arg"]
        if name not in DIRECTIVES:
            raise ValueError(f"{page.file.src_path}: unknown directive [[{name} ...]]")
        return DIRECTIVES[name](docs_dir / arg)

    return DIRECTIVE.sub(expand, markdown)


# --------------------------------------------------------------------------- docstrings

_MATH_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*\n(?P<body>(?:[ \t]*\n|(?P=indent)[ \t]+\S.*\n?)+)", re.MULTILINE)
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_XREF_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data):`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


_SHARED_PARAM = re.compile(r"^(?P<indent>[ \t]+)(?P<names>\w+(?:, \w+)+): (?P<desc>.*)$")


def split_shared_params(text: str) -> str:
    """Google-style ``a, b: text`` (one entry for several parameters) as one entry per name."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _SHARED_PARAM.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent = match["indent"]
        block = [match["desc"]]
        i += 1
        while i < len(lines) and lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) > len(indent):
            block.append(lines[i])
            i += 1
        for name in match["names"].split(", "):
            out.append(f"{indent}{name}: {block[0]}")
            out.extend(block[1:])
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def rst_to_markdown(text: str) -> str:
    """The reST bits the package's docstrings use, as Markdown that arithmatex understands."""
    text = split_shared_params(text)

    def block(match: re.Match) -> str:
        lines = [line.strip() for line in match["body"].strip("\n").splitlines()]
        pad = match["indent"]
        body = "\n".join(pad + line for line in lines if line)
        return f"{pad}$$\n{body}\n{pad}$$\n\n"

    text = _MATH_BLOCK.sub(block, text)
    text = _MATH_ROLE.sub(lambda m: f"\\({m[1]}\\)", text)
    text = _XREF_ROLE.sub(lambda m: f"`{m[1]}`", text)
    return _LITERAL.sub(lambda m: f"`{m[1]}`", text)


class RstMath(griffe.Extension):
    """Griffe extension: rewrite reST maths and roles in docstrings before mkdocstrings parses them."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
