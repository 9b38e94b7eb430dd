"""Turn a figure into HTML: embedded in a site page, or as a standalone file.

On the site a figure is an empty ``div`` with a stable id, followed by a one-line
script that registers its Plotly JSON in ``window.dpoFigures``; the site's JavaScript
draws it with the layout of the current Material palette, so nothing here depends on
when plotly.js arrives. A plain script, not ``type="application/json"``: Material's
instant navigation, where a site turns it on, re-runs the scripts of a new page as
JavaScript, dropping their type. Same figure, same bytes: no random ids.

The site build then moves each script's JSON into a file of its own
(:func:`move_specs_out`): the page names it in the plot's ``data-spec`` and the page
script fetches it when the figure becomes interactive, so a reader who only reads never
downloads or parses it. A standalone page keeps the script.
"""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from dpo_ref.figures.theme import PLOTLY_CONFIG, dark_copy, palette_restyles, palette_updates


def _safe_json(value) -> str:
    """JSON that can sit inside a ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def figure_spec(fig: go.Figure) -> dict:
    """What the page script needs: the figure, its config, and its updates per palette.

    A dropdown menu is hidden in the figure: the page shows its choices as buttons of its
    own above the plot (:func:`menu_buttons`). Plotly's dropdown opened over the lines it
    was choosing between.
    """
    figure = json.loads(pio.to_json(fig, validate=True))
    for menu in figure.get("layout", {}).get("updatemenus", []):
        if menu.get("type") == "dropdown":
            menu["visible"] = False
    return {
        "figure": figure,
        "config": PLOTLY_CONFIG,
        "palettes": palette_updates(fig),
        "restyles": palette_restyles(fig),
    }


def menu_buttons(figure_id: str, fig: go.Figure) -> str:
    """Each dropdown menu of ``fig`` as a row of HTML buttons, one per choice (``site.js``
    runs the choice's Plotly command when one is pressed). A prefix every choice shares
    ("method: DPO", "method: IPO") is said once, before the row."""
    rows = []
    for m, menu in enumerate(fig.layout.updatemenus or ()):
        if menu.type != "dropdown":
            continue
        labels = [_plain(button.label) for button in menu.buttons]
        prefix = labels[0].split(": ", 1)[0] + ": " if ": " in labels[0] else ""
        if not prefix or not all(label.startswith(prefix) for label in labels):
            prefix = ""
        active = menu.active or 0
        choices = "".join(
            f'<button type="button" class="dpo-figure__choice" data-menu="{m}" data-choice="{k}" '
            f'aria-pressed="{str(k == active).lower()}">{escape(label.removeprefix(prefix))}</button>'
            for k, label in enumerate(labels)
        )
        name = prefix.rstrip(": ") or "shown"
        rows.append(
            f'<div class="dpo-figure__menu" role="group" aria-label="{escape(name)}" data-for="plot-{escape(figure_id)}">'
            f"{f'<span class=dpo-figure__menu-name>{escape(name)}</span>' if prefix else ''}{choices}</div>"
        )
    return "".join(rows)


def _plain(text) -> str:
    """A Plotly label as plain text: no HTML tags, no line breaks."""
    if isinstance(text, dict):
        text = text.get("text")
    return re.sub(r"\s+", " ", re.sub(r"<br\s*/?>", " ", re.sub(r"</?(?!br)[a-z]+[^>]*>", "", str(text or "")))).strip()


def figure_alt(figure: dict) -> str:
    """A text alternative for a figure (its JSON): what is plotted against what, and what its controls do.

    Written from the figure's own labels, so it stays true when the figure changes; the
    sentences around the figure on its page say what it shows.
    """
    layout = figure.get("layout", {})
    names = []
    for trace in figure.get("data", []):
        name = _plain(trace.get("name"))
        if name and name not in names and trace.get("showlegend", True) is not False:
            names.append(name)
    axes = []
    for key in sorted(k for k in layout if re.fullmatch(r"[xy]axis\d*", k)):
        title = _plain(layout[key].get("title"))
        if title and title not in axes:
            axes.append(title)
    parts = ["Interactive chart"]
    if axes:
        parts.append("axes: " + "; ".join(axes))
    if names:
        parts.append("shows: " + "; ".join(names[:8]))
    for slider in layout.get("sliders", []):
        prefix = _plain((slider.get("currentvalue") or {}).get("prefix")).rstrip(": ")
        if prefix:
            parts.append(f"a slider sets {prefix}")
    for menu in layout.get("updatemenus", []):
        labels = [_plain(b.get("label")) for b in menu.get("buttons", [])]
        if labels:
            parts.append("buttons: " + ", ".join(labels[:6]))
    return ". ".join(parts) + "."


def embed(figure_id: str, obj, *, first_view=None) -> str:
    """HTML for one figure inside a page; ``obj`` is a Plotly figure or an HTML string.

    ``first_view(spec) -> html``: what the figure's box shows before Plotly draws it
    (the site puts a marker there that the build fills with the figure drawn ahead of
    time as SVG, :mod:`dpo_ref.site.prerendered_figures`).
    """
    if isinstance(obj, str):
        return f'<div class="dpo-figure dpo-figure--html" id="figure-{escape(figure_id)}">{obj}</div>'
    if not isinstance(obj, go.Figure):
        raise TypeError(f"figure {figure_id!r} returned {type(obj).__name__}, not a plotly Figure or HTML string")
    spec = figure_spec(obj)
    height = obj.layout.height or 450
    alt = figure_alt(spec["figure"])
    return menu_buttons(figure_id, obj) + (
        f'<div class="dpo-figure" id="figure-{escape(figure_id)}" role="figure" aria-label="{escape(alt)}" '
        f'style="contain-intrinsic-size:auto {int(height)}px">'
        f"{first_view(spec) if first_view else ''}"
        f'<div class="dpo-figure__plot" id="plot-{escape(figure_id)}" data-figure="{escape(figure_id)}" '
        f'style="min-height:{int(height)}px"></div>'
        f"<script>(window.dpoFigures=window.dpoFigures||{{}})[{_safe_json(figure_id)}]="
        f"{_safe_json(spec)};</script>"
        "</div>"
    )


_SPEC_SCRIPT = re.compile(
    r'(?P<plot><div class="dpo-figure__plot" id="plot-[^"]*" data-figure="(?P<id>[^"]+)")'
    r"(?P<rest>[^>]*></div>)<script>\(window\.dpoFigures=window\.dpoFigures\|\|\{\}\)\[[^\]]*\]=(?P<spec>.*?);</script>"
)
SPEC_FOLDER = "assets/figures"  # in the built site, one <figure id>.json per figure


def move_specs_out(page_html: str, site_dir: str | Path, folder_url: str) -> str:
    """``page_html`` with each figure's JSON written to ``site_dir/assets/figures/<id>.json``
    and named in the plot's ``data-spec`` instead of inlined in a script; ``folder_url`` is
    that folder's URL relative to the page, e.g. ``"../assets/figures"``."""
    folder = Path(site_dir) / SPEC_FOLDER
    folder.mkdir(parents=True, exist_ok=True)

    def move(match: re.Match) -> str:
        figure_id = match["id"]
        spec = json.loads(match["spec"].replace("<\\!--", "<!--"))  # JSON but for that one escape of _safe_json
        (folder / f"{figure_id}.json").write_text(
            json.dumps(spec, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
        )
        return f'{match["plot"]} data-spec="{escape(folder_url)}/{escape(figure_id)}.json"{match["rest"]}'

    return _SPEC_SCRIPT.sub(move, page_html)


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
