"""Lines of the form ``[[name path]]`` in a page, expanded into Markdown at build time.

* ``[[preference-tabs data/alignment_examples.yml]]`` on a line of its own becomes one
  content tab per example of the YAML file (prompt, preferred and rejected answers, why
  people prefer one), so the examples are data a writer edits, not Markdown to repeat.
  The path is relative to ``docs/``.
* ``[[python-body dpo_ref/losses.py:dpo_loss]]`` becomes a Python code block with that
  function as it is in the file, signature and body, without its docstring: a page shows
  the code a reader runs and writes the maths as maths. The path is relative to the
  repository (the folder above ``docs/``).
"""

from __future__ import annotations

import ast
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


def python_body(target: Path) -> str:
    """A fenced block: the function ``FILE:NAME`` without its docstring (see the module docstring)."""
    path, _, name = str(target).rpartition(":")
    source = Path(path).read_text(encoding="utf-8")
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            start = (node.decorator_list[0] if node.decorator_list else node).lineno - 1
            body = node.body
            doc = (
                body[0]
                if body
                and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)
                else None
            )
            keep = (
                lines[start : doc.lineno - 1] + lines[doc.end_lineno : node.end_lineno]
                if doc
                else lines[start : node.end_lineno]
            )
            return "```python\n" + "\n".join(keep) + "\n```\n"
    raise UserError(f"{path}: no function named {name!r}")


DIRECTIVES = {"preference-tabs": preference_tabs, "python-body": python_body}
# where each directive's path is relative to: docs/ by default, the repository for code
RELATIVE_TO_REPOSITORY = {"python-body"}


def expand(markdown: str, docs_dir: Path, page_path: str) -> str:
    """``markdown`` with every ``[[name path]]`` line replaced by what its directive makes."""

    def one(match: re.Match) -> str:
        name, arg = match["name"], match["arg"]
        if name not in DIRECTIVES:
            raise UserError(f"{page_path}: unknown directive [[{name} ...]]")
        base = docs_dir.parent if name in RELATIVE_TO_REPOSITORY else docs_dir
        return DIRECTIVES[name](base / arg)

    return DIRECTIVE.sub(one, markdown)
