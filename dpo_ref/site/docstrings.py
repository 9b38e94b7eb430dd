"""The package's docstrings on the API page: reST maths and roles as Markdown.

The docstrings are written for Sphinx-style readers (``.. math::`` blocks, ``:math:``,
``:func:`` roles, double back-quotes); mkdocstrings reads Google-style Markdown.
:class:`RstMath` (a griffe extension, listed in ``mkdocs.yml``) rewrites the first into
the second before mkdocstrings parses a docstring, so the formulas render as maths.
"""

from __future__ import annotations

import re

import griffe

_MATH_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)\.\. math::[ \t]*\n(?P<body>(?:[ \t]*\n|(?P=indent)[ \t]+\S.*\n?)+)", re.MULTILINE
)
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
