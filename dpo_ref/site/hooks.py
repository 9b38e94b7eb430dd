"""MkDocs hooks: what the build does beyond Markdown.

Registered in ``mkdocs.yml`` in two places:

* ``hooks: [dpo_ref/site/hooks.py]`` runs the ``on_*`` functions below;
* ``pymdownx.superfences`` calls :func:`figure_fence` for every ```` ```figure ```` block.

In the order of a build:

1. :func:`on_config`: load the typeset formulas; point mkdocs-jupyter's cache at a
   folder keyed by the code the examples run;
2. :func:`on_files`: publish ``examples/*.py`` as pages;
3. :func:`on_pre_page`: an example page is its recorded notebook while that is current;
4. :func:`on_page_markdown`: expand ``[[name path]]`` lines (:mod:`dpo_ref.site.directives`);
5. :func:`figure_fence`: every figure, drawn by :mod:`dpo_ref.figures` (a figure that
   fails to build fails the build; superfences would otherwise show the fence as code);
6. :func:`on_post_page`: formulas and figures' first views as SVG
   (:mod:`dpo_ref.site.prerendered_math`, :mod:`dpo_ref.site.prerendered_figures`; the
   first views of figures far down a page go to files of their own),
   each figure's JSON moved to a file of its own (:func:`dpo_ref.figures.html.move_specs_out`),
   plotly.js preloaded on pages with a figure not drawn ahead, mkdocstrings' stylesheet
   kept to the pages it styles, example pages finished (:mod:`dpo_ref.site.example_pages`);
7. :func:`on_post_build`: example scripts beside their pages; Material's palette
   stylesheet lightened (:func:`drop_switching_rule`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import sys
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url
from pymdownx.superfences import SuperFencesException

from dpo_ref import paths
from dpo_ref.figures.html import SPEC_FOLDER, move_specs_out
from dpo_ref.site import directives, example_pages, notebooks, prerendered_figures, prerendered_math

log = logging.getLogger("mkdocs.hooks.dpo_ref")
_math_store = prerendered_math.EMPTY  # loaded by on_config at every build
_figure_store = prerendered_figures.EMPTY  # likewise

# What site.js fetches for a page with a figure (its PLOTLY_SRC; a test checks they agree).
PLOTLY_JS = "assets/vendor/plotly/plotly-basic.min.js"


def figure_fence(source: str, language: str, class_name: str, options: dict, md, **kwargs) -> str:
    """Superfences formatter: the fence body is a figure id from ``dpo_ref.figures.FIGURES``."""
    figure_id = source.strip()
    try:
        from dpo_ref.figures import build_figure
        from dpo_ref.figures.html import embed

        return embed(figure_id, build_figure(figure_id), first_view=prerendered_figures.marker)
    except Exception as exc:  # superfences swallows anything else and prints the fence as code
        raise SuperFencesException(f"figure {figure_id!r} failed to build: {exc!r}") from exc


def on_pre_build(config, **kwargs) -> None:
    """Under ``mkdocs serve``, reload the figure modules so edits show up on rebuild."""
    for name in [m for m in sys.modules if m.startswith("dpo_ref.figures")]:
        del sys.modules[name]


def on_config(config, **kwargs):
    """Load the typeset formulas; give executed example pages a cache keyed by the code they run.

    mkdocs-jupyter keys its cache on the notebook's own text only, so an edit to the
    package would keep serving outputs the current code no longer produces. Each
    fingerprint of ``dpo_ref/`` and ``examples/`` gets its own cache folder.
    """
    global _math_store, _figure_store
    _math_store = prerendered_math.load()
    _figure_store = prerendered_figures.load()
    for key, value in notebooks.NOTEBOOK_ENV.items():  # the kernel inherits them
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
    root = paths.require_checkout("the site build")
    digest = hashlib.sha256()
    for folder in (root / "dpo_ref", paths.examples_dir()):
        for path in sorted(folder.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@event_priority(100)  # before mkdocs-jupyter turns matching files into notebook pages
def on_files(files, config, **kwargs):
    """Publish ``examples/*.py`` (outside docs/) as pages at ``examples/NAME/``."""
    root = paths.require_checkout("the site build")
    for script in notebooks.scripts():
        src_uri = f"examples/{script.name}"
        if files.get_file_from_path(src_uri) is None:
            files.append(
                File(
                    src_uri,
                    src_dir=str(root),
                    dest_dir=config["site_dir"],
                    use_directory_urls=config["use_directory_urls"],
                )
            )
    return files


def _is_example_page(page) -> bool:
    return page.file.src_uri.startswith("examples/") and page.file.src_uri.endswith(".py")


@event_priority(100)  # before mkdocs-jupyter reads the page's notebook
def on_pre_page(page, config, files, **kwargs):
    """An example page is made from its recorded notebook (outputs included, nothing run)
    while that recording is current; otherwise the build runs the script."""
    if not _is_example_page(page):
        return page
    script = paths.examples_dir() / Path(page.file.src_uri).name
    recorded = notebooks.current_recording(script)
    if recorded is not None:
        page.file.abs_src_path = str(recorded)  # mkdocs-jupyter renders this file instead
    else:
        log.info(
            "%s has no current recorded outputs: the build runs it (`make examples` records them)", page.file.src_uri
        )
    return page


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    """Expand ``[[name path]]`` lines; the path is relative to ``docs_dir``."""
    return directives.expand(markdown, Path(config["docs_dir"]), page.file.src_path)


def on_post_build(config, **kwargs) -> None:
    """Each example script beside its page, for the page's download link; Material's
    palette stylesheet without its rule for palette switches (:func:`drop_switching_rule`)."""
    for script in notebooks.scripts():
        target = Path(config["site_dir"]) / "examples" / script.stem / script.name
        if target.parent.is_dir():
            shutil.copyfile(script, target)
    drop_switching_rule(Path(config["site_dir"]))


# Material turns transitions off while the palette changes, with a rule on every element
# under <body data-md-color-switching>. Its script sets and removes that attribute once
# when each page loads, and a rule of that shape makes each change restyle the whole
# page: two full style passes at load, 90 of the 160 ms of style work Material's script
# forced on /key-insight/ (Chromium trace, unthrottled). The site's script turns
# transitions off itself when the reader switches palettes (site.js, site.css), and only then.
SWITCHING_RULE = (
    "[data-md-color-switching] *,[data-md-color-switching] :after,"
    "[data-md-color-switching] :before{transition-duration:0s!important}"
)
_SWITCHING_RULE_DROPPED = "/* rule for palette switches dropped: dpo_ref/site/hooks.py */"


def drop_switching_rule(site_dir: Path) -> None:
    """Remove :data:`SWITCHING_RULE` from Material's palette stylesheet in ``site_dir``.

    Raises ``RuntimeError`` if the stylesheet or the rule is not there (a Material
    upgrade that changed them must be looked at, not passed over).
    """
    sheets = sorted((site_dir / "assets" / "stylesheets").glob("palette.*.min.css"))
    text = sheets[0].read_text(encoding="utf-8") if len(sheets) == 1 else ""
    if _SWITCHING_RULE_DROPPED in text:  # a rebuild into the same folder
        return
    if SWITCHING_RULE not in text:
        raise RuntimeError(f"Material's palette stylesheet or its switching rule has changed: {sheets}")
    sheets[0].write_text(text.replace(SWITCHING_RULE, _SWITCHING_RULE_DROPPED), encoding="utf-8")


# A stylesheet the page must fetch before it can draw anything: kept only where it styles something.
_MKDOCSTRINGS_CSS = re.compile(r'<link rel="stylesheet" href="[^"]*assets/_mkdocstrings\.css">\s*')


def on_post_page(output: str, page, config, **kwargs) -> str:
    """Formulas as their stored SVG; a page with a figure starts downloading plotly.js as
    soon as its head is read; mkdocstrings' stylesheet only on pages with API docs;
    example pages: as :func:`dpo_ref.site.example_pages.finish` makes them."""
    if _is_example_page(page):
        script = paths.examples_dir() / Path(page.file.src_uri).name
        recorded = notebooks.current_recording(script)
        metadata = notebooks.recorded_metadata(recorded) if recorded is not None else None
        output = example_pages.finish(output, script, config.get("repo_url"), metadata)
    if 'class="doc doc-' not in output:  # mkdocstrings links its stylesheet into every page
        output = _MKDOCSTRINGS_CSS.sub("", output, count=1)
    folder_url = get_relative_url(SPEC_FOLDER, page.url)
    output = prerendered_figures.substitute(output, _figure_store, config["site_dir"], folder_url)
    output = move_specs_out(output, config["site_dir"], folder_url)
    # plotly.js is wanted at once only where a figure has no first view drawn ahead
    if output.count('class="dpo-figure__plot"') > output.count('<div class="dpo-figure__static"'):
        href = get_relative_url(PLOTLY_JS, page.url)
        output = output.replace("</head>", f'<link rel="preload" href="{href}" as="script"></head>', 1)
    return prerendered_math.substitute(output, _math_store)
