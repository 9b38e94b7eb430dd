"""Where things live in a checkout of the repository: the one module that knows its layout.

The package itself (losses, trainer, worlds, experiments) needs no checkout. Three
things do, and read their folders from here:

* results files: ``dpo-ref reproduce`` writes them and the figures read them
  (:data:`RESULTS_DIR`, ``docs/results/data``);
* the site tooling in :mod:`dpo_ref.site` (the pages, the example scripts, the typeset
  formulas), which only makes sense next to ``mkdocs.yml``;
* provenance, which records the checkout's git commit.

In a checkout (an editable install, ``pip install -e .``) the folders are found beside
the package. Installed from a wheel, results go to ``./docs/results/data`` under the
working directory, and the site tooling says in one line that it needs a checkout.
"""

from __future__ import annotations

from pathlib import Path

from dpo_ref.errors import UserError

__all__ = [
    "checkout_root",
    "require_checkout",
    "results_dir",
    "RESULTS_DIR",
    "docs_dir",
    "examples_dir",
    "recorded_examples_dir",
    "math_store",
]

_PACKAGE = Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The repository folder holding this package (it has ``mkdocs.yml``), or None for a wheel."""
    root = _PACKAGE.parent
    return root if (root / "mkdocs.yml").is_file() and (root / "docs").is_dir() else None


def require_checkout(what: str) -> Path:
    """The checkout's root; a one-line :class:`~dpo_ref.errors.UserError` naming ``what`` outside one."""
    root = checkout_root()
    if root is None:
        raise UserError(
            f"{what} needs a checkout of the dpo_ref repository (mkdocs.yml, docs/, examples/); "
            "clone it and install it with `pip install -e .`"
        )
    return root


def results_dir() -> Path:
    """``docs/results/data`` of the checkout, or of the working directory outside one."""
    root = checkout_root()
    return (root if root is not None else Path.cwd()) / "docs" / "results" / "data"


# docs/results/data: where `dpo-ref reproduce` writes results files and the figures read them
RESULTS_DIR = results_dir()


# --------------------------------------------------------------------------- the site's folders


def docs_dir() -> Path:
    """``docs/``: the site's pages and assets."""
    return require_checkout("the site tooling") / "docs"


def examples_dir() -> Path:
    """``examples/``: the copy-runnable scripts, also pages of the site."""
    return require_checkout("the site tooling") / "examples"


def recorded_examples_dir() -> Path:
    """``docs/results/examples/``: the example scripts' recorded outputs (``dpo-ref examples``)."""
    return docs_dir() / "results" / "examples"


def math_store() -> Path:
    """``docs/results/math.json``: the pages' formulas typeset as SVG (``dpo-ref math``)."""
    return docs_dir() / "results" / "math.json"
