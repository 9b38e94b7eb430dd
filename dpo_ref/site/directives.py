"""Lines of the form ``[[name path]]`` in a page, expanded into Markdown at build time.

``[[preference-tabs data/alignment_examples.yml]]`` on a line of its own becomes one
content tab per example of the YAML file (prompt, preferred and rejected answers, why
people prefer one), so the examples are data a writer edits, not Markdown to repeat.
The path is relative to ``docs/``.
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import yaml

from dpo_ref.errors import UserError

# A line of its own such as  [[preference-tabs data/alignment_examples.yml]]
DIRECTIVE = re.compile(r"^\[\[(?P<name>[a-z-]+) (?P<arg>[^\]\s]+)\]\]\s*$", re.MULTILINE)


def preference_tabs(path: Path) -> str:
    """Markdown content tabs, one per prompt, preferred vs rejected answer side by side."""
    examples = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(examples, list) or not examples:
        raise UserError(f"{path}: expected a non-empty list of examples")
    parts = []
    for i, ex in enumerate(examples):
        for field in ("title", "prompt", "chosen", "rejected", "why"):
            if not isinstance(ex.get(field), str) or not ex[field].strip():
                raise UserError(f"{path}: example {i} needs a non-empty string field {field!r}")
        body = [
            f"**Prompt.** {ex['prompt'].strip()}",
            "",
            '<div class="grid cards dpo-pair" markdown>',
            "",
            "-   :material-thumb-up-outline: **Preferred** (y<sub>w</sub>)\n\n    ---\n\n"
            + _indent(ex["chosen"].strip(), 4),
            "-   :material-thumb-down-outline: **Rejected** (y<sub>l</sub>)\n\n    ---\n\n"
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


def expand(markdown: str, docs_dir: Path, page_path: str) -> str:
    """``markdown`` with every ``[[name path]]`` line replaced by what its directive makes."""

    def one(match: re.Match) -> str:
        name, arg = match["name"], match["arg"]
        if name not in DIRECTIVES:
            raise UserError(f"{page_path}: unknown directive [[{name} ...]]")
        return DIRECTIVES[name](docs_dir / arg)

    return DIRECTIVE.sub(one, markdown)
