"""Tooling that builds the site from a checkout of the repository; not part of the library.

* :mod:`~dpo_ref.site.hooks`: the MkDocs hooks (``hooks:`` in ``mkdocs.yml``): figures
  into pages, example pages from their recordings, typeset formulas, data-driven tabs;
* :mod:`~dpo_ref.site.directives`: the ``[[name path]]`` lines a page can hold;
* :mod:`~dpo_ref.site.docstrings`: reST maths in the package's docstrings, for mkdocstrings;
* :mod:`~dpo_ref.site.notebooks`: ``dpo-ref examples``, the example scripts' recorded outputs;
* :mod:`~dpo_ref.site.prerendered_math`: ``dpo-ref math``, the formulas typeset ahead of time;
* :mod:`~dpo_ref.site.server`: a folder served on 127.0.0.1 for a headless browser.

Each reads the repository's folders from :mod:`dpo_ref.paths`; installed from a wheel,
the commands that need the checkout say so in one line.
"""
