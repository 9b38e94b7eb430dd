"""The look of every site figure: one template, Material's two palettes, one colour per method.

Import ``METHOD_COLOURS`` (and ``style``) from here whenever a figure shows a method, so
DPO is the same blue on every page. A method's colour is its registry entry's
(:attr:`dpo_ref.methods.Method.colour`); the few curves that are not methods have theirs here.

The template is written for Material's light palette (``default``). The site's
JavaScript restyles each figure for the slate (dark) palette with the layout updates
from :func:`palette_updates` and the trace updates from :func:`palette_restyles`, so
the two palettes are defined here, once.
"""

from __future__ import annotations

import copy

import plotly.graph_objects as go
import plotly.io as pio

from dpo_ref.methods import METHODS

# One colour per method (the registry's, dpo_ref.methods), and the few curves that are not methods.
METHOD_COLOURS: dict[str, str] = {
    **{name: method.colour for name, method in METHODS.items()},
    "reward_model": "#EE7733",  # Tol vibrant orange
    "sft": "#888888",  # neutral grey: the reference / SFT policy
    "reference": "#888888",
    "optimal": "#888888",  # drawn dashed: the closed-form optimum
}

# Display names, so legends say the same thing everywhere: each method's label from the
# registry (dpo_ref.methods), and the few curves that are not methods.
METHOD_LABELS: dict[str, str] = {
    **{name: method.label for name, method in METHODS.items()},
    "reward_model": "reward model",
    "sft": "SFT",
    "reference": "reference π<sub>ref</sub>",
    "optimal": "optimum π*",
}

# An ordered parameter (beta, say) as an ordered colour: ColorBrewer's Blues from light to
# dark, the four steps whose relative luminance (0.09 to 0.38) keeps 2:1 against both backgrounds.
ORDERED_COLOURS: tuple[str, ...] = ("#6BAED6", "#4292C6", "#2171B5", "#08519C")

# The band of relative luminance an ordered shade keeps: 2:1 against both backgrounds.
SHADE_LUMINANCE = (0.38, 0.09)


def ordered_shades(base: str, n: int) -> list[str]:
    """``n`` shades of the colour ``base`` (``#rrggbb``), light to dark: an ordered parameter
    (beta, say) of one method, in that method's hue, whose steps are told apart by lightness.

    Each shade is ``base`` mixed with white or black until its relative luminance reaches its
    place in :data:`SHADE_LUMINANCE`, evenly spaced, so every shade keeps 2:1 against both
    Material backgrounds.
    """
    if n < 1:
        raise ValueError(f"ordered_shades needs at least one shade, got n={n}")
    if not (len(base) == 7 and base.startswith("#")):
        raise ValueError(f"ordered_shades needs a colour written #rrggbb, got {base!r}")
    rgb = [int(base[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    light, dark = SHADE_LUMINANCE
    targets = [light] if n == 1 else [light + (dark - light) * k / (n - 1) for k in range(n)]
    return [_shade_at(rgb, target) for target in targets]


def _shade_at(rgb: list[float], target: float) -> str:
    """``rgb`` mixed with white (t < 0) or black (t > 0), bisected on t until its luminance is ``target``."""

    def mix(t: float) -> list[float]:
        end = 0.0 if t > 0 else 1.0
        return [c + abs(t) * (end - c) for c in rgb]

    low, high = -1.0, 1.0  # luminance falls as t rises
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if _luminance(mix(mid)) > target else (low, mid)
    return "#" + "".join(f"{round(c * 255):02X}" for c in mix((low + high) / 2))


def _luminance(rgb: list[float]) -> float:
    """WCAG relative luminance of sRGB components in 0..1."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


# Colours of quantities that are not methods, named for the quantity, never for a method whose colour
# it happens to share: each is a colour of the same colour-blind-safe palettes, which keeps 2:1 against
# both backgrounds.
QUANTITY_COLOURS: dict[str, str] = {
    # two rewards on one plot
    "proxy_reward": METHOD_COLOURS["reward_model"],
    "true_reward": "#009988",  # Tol vibrant teal
    # classes of answers (where the probability mass sits), and the rewards of a run's chosen and rejected
    # answers, the margin between them and how often it is positive
    "chosen": "#009E73",  # Okabe-Ito bluish green
    "rejected": "#EE3377",  # Tol magenta
    "both": "#E69F00",  # Okabe-Ito orange: answers chosen in one pair, rejected in another
    "unseen": "#0072B2",  # Okabe-Ito blue: answers in no pair
    "unseen_low_reward": "#D55E00",  # Okabe-Ito vermillion: ...and worse than the reference's mean
    "margin": "#0072B2",  # Okabe-Ito blue
    "accuracy": "#0072B2",  # Okabe-Ito blue, drawn dotted on a panel of its own
    # a policy's KL from the reference, beside its rewards
    "kl": "#D55E00",  # Okabe-Ito vermillion
    # the benchmarks' two length regimes
    "short_pairs": "#0072B2",  # Okabe-Ito blue
    "chat_pairs": "#D55E00",  # Okabe-Ito vermillion
}

# Material for MkDocs' palettes (its CSS custom properties, written out).
PALETTES: dict[str, dict[str, str]] = {
    "default": {
        "fg": "rgba(0, 0, 0, 0.87)",
        "fg_light": "rgba(0, 0, 0, 0.54)",
        "fg_lighter": "rgba(0, 0, 0, 0.32)",
        "fg_lightest": "rgba(0, 0, 0, 0.07)",
        "bg": "#ffffff",
        "accent_bg": "rgba(0, 0, 0, 0.07)",
        "link": "#3949ab",  # the site's link colour (site.css), that of its buttons' labels and borders
    },
    "slate": {
        "fg": "hsla(232, 75%, 90%, 0.82)",
        "fg_light": "hsla(232, 75%, 90%, 0.56)",
        "fg_lighter": "hsla(232, 75%, 90%, 0.32)",
        "fg_lightest": "hsla(232, 75%, 90%, 0.12)",
        "bg": "hsla(232, 15%, 14%, 1)",
        "accent_bg": "hsla(232, 75%, 90%, 0.12)",
        "link": "#8fa4f5",
    },
}

FONT_FAMILY = '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, Helvetica, Arial, sans-serif'

# Figures must fit a 375 px phone: small margins, legend below the plot.
DEFAULT_HEIGHT = 460

# No toolbar: on hover it sat over the top of every plot and its labels. What a reader
# needs of it stays: drag to zoom, double-click to zoom back out.
PLOTLY_CONFIG = {
    "responsive": True,
    "displayModeBar": False,
}

# At the top of the figure, a legend only pushes the plot down as it grows a row on a phone.
# Below the plot, it ran into the axis title and the slider under it (paper-relative
# positions that fit one width and not another). Placed in the figure ("container"), not
# just above the plot ("paper"): a paper-placed legend kept its old place when the plot
# was resized, and lay over the data after a phone was turned or a window widened.
LEGEND_ABOVE = dict(orientation="h", x=0, xanchor="left", y=1, yanchor="top", yref="container")


def _template(palette: dict[str, str]) -> go.layout.Template:
    axis = dict(
        gridcolor=palette["fg_lightest"],
        zerolinecolor=palette["fg_lighter"],
        linecolor=palette["fg_lighter"],
        tickcolor=palette["fg_lighter"],
        showline=True,
        ticks="outside",
        automargin=True,
        title=dict(standoff=8),
    )
    return go.layout.Template(
        layout=dict(
            font=dict(family=FONT_FAMILY, size=13, color=palette["fg"]),
            paper_bgcolor="rgba(0,0,0,0)",
            plot_bgcolor="rgba(0,0,0,0)",
            colorway=list(METHOD_COLOURS.values()),
            xaxis=axis,
            yaxis=axis,
            legend=dict(LEGEND_ABOVE, font=dict(size=12)),
            margin=dict(l=56, r=16, t=40, b=40),
            hoverlabel=dict(font=dict(family=FONT_FAMILY)),
            height=DEFAULT_HEIGHT,
        )
    )


TEMPLATE = _template(PALETTES["default"])
pio.templates["dpo_ref"] = TEMPLATE  # also usable as template="dpo_ref"


def style(fig: go.Figure, *, height: int | None = None) -> go.Figure:
    """Apply the site template (light palette) and the phone-friendly layout to ``fig``."""
    fig.update_layout(template=TEMPLATE)
    # The legend at the top, set on the figure itself so every output (site, CLI) has it
    # (Plotly buttons above the plot go between it and the plot).
    fig.update_layout(legend=LEGEND_ABOVE)
    if height is not None:
        fig.update_layout(height=height)
    # No grid lines along the categories of a bar chart; set explicitly, because restyling
    # an axis's grid colour for the dark palette would otherwise switch them on.
    for trace in fig.data:
        if trace.type == "bar":
            category_axis = "yaxis" if trace.orientation == "h" else "xaxis"
            ref = (trace.yaxis if trace.orientation == "h" else trace.xaxis) or category_axis[0]
            name = category_axis + ref[1:]
            if fig.layout[name].showgrid is None:
                fig.layout[name].showgrid = False
    # Log axes: one labelled tick per power of ten (0.01, 0.1, 1, 10) and unlabelled minor
    # ticks between. Plotly's default labels the 2s and 5s with a bare digit, which reads
    # as "5 2 10 5 2 1": on a log axis a "5" could be 0.05 or 5.
    for name, axis in fig.layout.to_plotly_json().items():
        if name.startswith(("xaxis", "yaxis")) and axis.get("type") == "log" and axis.get("dtick") is None:
            fig.layout[name].update(dtick=1, tickformat="~g", minor=dict(dtick="D1", ticks="outside", ticklen=3))
    for slider in fig.layout.sliders or ():
        _style_slider(slider, PALETTES["default"])
    for menu in fig.layout.updatemenus or ():
        _style_menu(menu, PALETTES["default"])
    return fig


def _style_slider(slider, palette: dict[str, str]) -> None:
    """A slider in the site's link colour: its rail's and grip's outline, and the grip while dragged."""
    slider.update(
        bgcolor=palette["accent_bg"],
        activebgcolor=palette["link"],
        bordercolor=palette["link"],
        tickcolor=palette["fg_lighter"],
        font=dict(color=palette["fg"]),
        currentvalue=dict(font=dict(color=palette["fg"])),
    )


def _style_menu(menu, palette: dict[str, str]) -> None:
    """Plotly's buttons drawn as the site's: no fill, a border and label in the link colour."""
    menu.update(bgcolor=palette["bg"], bordercolor=palette["link"], font=dict(color=palette["link"]))


def palette_updates(fig: go.Figure) -> dict[str, dict]:
    """For each Material palette, the ``Plotly.relayout`` update that restyles ``fig``.

    Keys are Material's scheme names (``default``, ``slate``), the value of the page's
    ``data-md-color-scheme`` attribute.
    """
    axes = [name for name in fig.layout.to_plotly_json() if name.startswith(("xaxis", "yaxis"))] or ["xaxis", "yaxis"]
    updates: dict[str, dict] = {}
    for scheme, palette in PALETTES.items():
        update: dict = {"font.color": palette["fg"]}
        for axis in axes:
            update[f"{axis}.gridcolor"] = palette["fg_lightest"]
            update[f"{axis}.zerolinecolor"] = palette["fg_lighter"]
            update[f"{axis}.linecolor"] = palette["fg_lighter"]
            update[f"{axis}.tickcolor"] = palette["fg_lighter"]
        for i, _ in enumerate(fig.layout.sliders or ()):
            update[f"sliders[{i}].bgcolor"] = palette["accent_bg"]
            update[f"sliders[{i}].activebgcolor"] = palette["link"]
            update[f"sliders[{i}].bordercolor"] = palette["link"]
            update[f"sliders[{i}].tickcolor"] = palette["fg_lighter"]
            update[f"sliders[{i}].font.color"] = palette["fg"]
            update[f"sliders[{i}].currentvalue.font.color"] = palette["fg"]
        for i, _ in enumerate(fig.layout.updatemenus or ()):
            update[f"updatemenus[{i}].bgcolor"] = palette["bg"]
            update[f"updatemenus[{i}].bordercolor"] = palette["link"]
            update[f"updatemenus[{i}].font.color"] = palette["link"]
        for i, annotation in enumerate(fig.layout.annotations or ()):
            key = _palette_key(annotation.font.color if annotation.font else None)
            if key:
                update[f"annotations[{i}].font.color"] = palette[key]
        for i, shape in enumerate(fig.layout.shapes or ()):
            key = _palette_key(shape.line.color if shape.line else None)
            if key:
                update[f"shapes[{i}].line.color"] = palette[key]
        updates[scheme] = update
    return updates


def palette_restyles(fig: go.Figure) -> dict[str, list]:
    """For each Material palette, the ``Plotly.restyle`` calls, ``[update, trace indices]``,
    that recolour traces drawn in a palette colour.

    A marker outlined in the background colour stands out from the curve under it; in
    the dark palette its outline must be the dark background, not a white ring.
    """
    roles: dict[str, list[int]] = {}  # palette role of the outline -> traces
    for i, trace in enumerate(fig.data):
        line = getattr(getattr(trace, "marker", None), "line", None)
        key = _palette_key(line.color if line is not None and isinstance(line.color, str) else None)
        if key:
            roles.setdefault(key, []).append(i)
    return {
        scheme: [[{"marker.line.color": palette[key]}, traces] for key, traces in roles.items()]
        for scheme, palette in PALETTES.items()
    }


def _palette_key(colour: str | None) -> str | None:
    """Which light-palette role (``fg``, ``fg_light``, ...) a colour plays, if any."""
    for key, value in PALETTES["default"].items():
        if colour == value:
            return key
    return None


def dark_copy(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` in the slate palette (for standalone HTML files)."""
    dark = copy.deepcopy(fig)
    dark.update_layout(palette_updates(fig)["slate"])
    for update, traces in palette_restyles(fig)["slate"]:
        for i in traces:
            for path, value in update.items():
                dark.data[i][path] = value
    return dark


def slider(
    *,
    label: str,
    steps: list[dict],
    active: int,
    y: float = -0.32,
) -> dict:
    """A Plotly slider whose current-value label says what it changes."""
    return dict(
        active=active,
        steps=steps,
        x=0,
        len=1,
        y=y,
        yanchor="top",
        pad=dict(t=8, b=4),
        currentvalue=dict(prefix=f"{label}: ", xanchor="left", font=dict(size=13)),
        font=dict(size=11),
    )
