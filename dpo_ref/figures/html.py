"""Turn a figure into HTML: embedded in a site page, or as a standalone file.

On the site a figure is an empty ``div`` with a stable id, followed by a one-line
script that registers its Plotly JSON in ``window.dpoFigures``; the site's JavaScript
draws it (after instant navigation too) with the layout of the current Material
palette, so nothing here depends on when plotly.js arrives. A plain script, not
``type="application/json"``: Material's instant navigation re-runs the scripts of a new
page as JavaScript, dropping their type. Same figure, same bytes: no random ids.
"""

from __future__ import annotations

import json
from html import escape

import plotly.graph_objects as go
import plotly.io as pio

from dpo_ref.figures.theme import PLOTLY_CONFIG, dark_copy, palette_updates


def _safe_json(value) -> str:
    """JSON that can sit inside a ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def figure_spec(fig: go.Figure) -> dict:
    """What the page script needs: the figure, its config, and a restyle per palette."""
    return {
        "figure": json.loads(pio.to_json(fig, validate=True)),
        "config": PLOTLY_CONFIG,
        "palettes": palette_updates(fig),
    }


def embed(figure_id: str, obj) -> str:
    """HTML for one figure inside a page; ``obj`` is a Plotly figure or an HTML string."""
    if isinstance(obj, str):
        return f'<div class="dpo-figure dpo-figure--html" id="figure-{escape(figure_id)}">{obj}</div>'
    if not isinstance(obj, go.Figure):
        raise TypeError(f"figure {figure_id!r} returned {type(obj).__name__}, not a plotly Figure or HTML string")
    height = obj.layout.height or 450
    return (
        f'<div class="dpo-figure" id="figure-{escape(figure_id)}">'
        f'<div class="dpo-figure__plot" id="plot-{escape(figure_id)}" data-figure="{escape(figure_id)}" '
        f'style="min-height:{int(height)}px"></div>'
        f"<script>(window.dpoFigures=window.dpoFigures||{{}})[{_safe_json(figure_id)}]="
        f"{_safe_json(figure_spec(obj))};</script>"
        "</div>"
    )


# Enough layout for an HTML diagram outside the site (the site styles it in site.css).
_STANDALONE_CSS = (
    "body{font-family:system-ui,sans-serif;margin:1.5em}"
    ".dpo-pipeline__name{font-weight:700;color:var(--dpo-accent)}"
    ".dpo-pipeline__stages{display:flex;flex-wrap:wrap;gap:1.5em;list-style:none;padding:0}"
    ".dpo-pipeline__stage{flex:1 1 14em;display:flex;flex-direction:column;gap:.2em;"
    "border:2px solid var(--dpo-accent);border-top-width:6px;border-radius:4px;padding:.6em}"
    ".dpo-pipeline__line em{font-style:normal;opacity:.6;margin-right:.4em}"
)


def write_standalone(figure_id: str, obj, out_dir, *, dark: bool = False):
    """Write ``<figure_id>.html`` into ``out_dir``; Plotly figures share one ``plotly.min.js`` there.

    Returns the path written. Works offline: plotly.js is copied next to the files.
    """
    from pathlib import Path

    path = Path(out_dir) / f"{figure_id}.html"
    if isinstance(obj, str):
        path.write_text(
            f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(figure_id)}</title>"
            f"<style>{_STANDALONE_CSS}</style></head><body>{obj}</body></html>\n",
            encoding="utf-8",
        )
        return path
    fig = dark_copy(obj) if dark else obj
    if dark:
        fig.update_layout(paper_bgcolor="#1e2129", plot_bgcolor="#1e2129")
    pio.write_html(
        fig,
        str(path),
        full_html=True,
        include_plotlyjs="directory",
        div_id=f"plot-{figure_id}",
        auto_play=False,
        config=PLOTLY_CONFIG,
    )
    return path
