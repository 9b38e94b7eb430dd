"""The pipeline diagram of "The RLHF pipeline" page, drawn as plain HTML at build time.

The stages are data (``PIPELINES``); :func:`pipeline_diagram` turns them into boxes and
arrows that the site's stylesheet lays out in a row on wide screens and in a column on
a phone. No diagram library, nothing fetched by the browser. Each box is a button that
selects the content tab named by its stage's ``tab`` (the page's "Each stage in
detail" tabs; the site's script does the selecting, a browser test checks every box).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from dpo_ref.methods import DPO, PPO


@dataclass(frozen=True)
class Stage:
    name: str
    data: str  # what the stage trains on
    trains: str  # what it produces
    in_memory: str  # models held while it runs
    tab: str  # title of the page's content tab that details this stage


@dataclass(frozen=True)
class Pipeline:
    name: str
    method: str  # the method whose colour (METHOD_COLOURS) accents its row
    stages: tuple[Stage, ...]


SFT = Stage(
    "Supervised fine-tuning",
    "demonstrations (prompt, good answer)",
    "SFT policy π_SFT",
    "1 model: the policy",
    "1. Supervised fine-tuning",
)

PIPELINES: tuple[Pipeline, ...] = (
    Pipeline(
        "RLHF",
        PPO,
        (
            SFT,
            Stage(
                "Reward modelling",
                "preference pairs (x, y_w, y_l)",
                "reward model r_φ (Bradley-Terry)",
                "1 model: the reward model",
                "2. Reward modelling",
            ),
            Stage(
                "RL fine-tuning (PPO)",
                "prompts only; answers sampled from the policy",
                "policy π_θ maximising r_φ − β·KL",
                "4 models: policy, reference, reward model, value model",
                "3. RL fine-tuning (PPO)",
            ),
        ),
    ),
    Pipeline(
        "DPO",
        DPO,
        (
            SFT,
            Stage(
                "DPO",
                "preference pairs (x, y_w, y_l)",
                "policy π_θ, trained by a classification loss",
                "2 models: policy and frozen reference",
                "DPO, in one stage",
            ),
        ),
    ),
)


def _html(text: str) -> str:
    """Escape ``text`` and write ``a_b`` subscripts (``y_w``, ``π_ref``) as HTML."""
    return re.sub(r"(?<=[^\W_])_([^\W_]+)", r"<sub>\1</sub>", escape(text))


def pipeline_diagram(pipelines: tuple[Pipeline, ...] = PIPELINES) -> str:
    """HTML for the stages of each pipeline as numbered boxes joined by arrows."""
    from dpo_ref.figures.theme import METHOD_COLOURS

    rows = []
    for pipeline in pipelines:
        boxes = []
        for number, stage in enumerate(pipeline.stages, start=1):
            boxes.append(
                f'<li><button type="button" class="dpo-pipeline__stage" data-dpo-tab="{escape(stage.tab)}" '
                'aria-pressed="false">'
                f'<span class="dpo-pipeline__step">{number}</span>'
                f'<strong class="dpo-pipeline__title">{_html(stage.name)}</strong>'
                f'<span class="dpo-pipeline__line"><em>data</em> {_html(stage.data)}</span>'
                f'<span class="dpo-pipeline__line"><em>gives</em> {_html(stage.trains)}</span>'
                f'<span class="dpo-pipeline__line"><em>memory</em> {_html(stage.in_memory)}</span>'
                f'<span class="dpo-pipeline__hint">details ↓</span>'
                "</button></li>"
            )
        colour = METHOD_COLOURS[pipeline.method]
        rows.append(
            f'<div class="dpo-pipeline__row" style="--dpo-accent: {colour}">'
            f'<p class="dpo-pipeline__name">{escape(pipeline.name)}: {len(pipeline.stages)} training stages</p>'
            f'<ol class="dpo-pipeline__stages">{"".join(boxes)}</ol>'
            "</div>"
        )
    label = "; ".join(f"{p.name}: " + " then ".join(s.name for s in p.stages) for p in pipelines)
    return f'<div class="dpo-pipeline" role="figure" aria-label="{escape(label)}">{"".join(rows)}</div>'
