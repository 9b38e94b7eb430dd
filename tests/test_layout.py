"""The repository's structure, as ARCHITECTURE.md states it: the package's layers and no
import circles, documents that name only files that exist, and nothing cited from outside.

Imports are read from the source (every ``import`` statement, those inside functions and
``if TYPE_CHECKING:`` blocks included), not by importing: a circle that only a lazy import
hides is still a circle.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dpo_ref"

# ARCHITECTURE.md, "Layers": each top-level module or subpackage of dpo_ref, bottom up.
LAYERS = {
    "foundations": ["errors", "validation", "runtime", "paths", "results", "cli"],
    "maths": ["logps", "losses", "models"],
    "mechanics": ["packing", "sampling", "data", "batching", "evaluate", "analysis"],
    "training": ["train", "distributed"],
    "registry": ["methods"],
    "worlds": ["worlds", "playground"],
    "experiments": ["experiments"],
    "presentation": ["figures", "site", "train_cli", "scripts"],
}
LAYER_OF = {name: level for level, names in enumerate(LAYERS.values()) for name in names}


def _module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


MODULES = _module_names()


def _imported(module: str, path: Path) -> set[str]:
    """The dpo_ref modules that ``module`` imports (a name imported from a package counts as
    the submodule when it is one, else as the package)."""

    def known(name: str) -> str:
        while name not in MODULES:
            name = name.rpartition(".")[0]
        return name

    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {known(a.name) for a in node.names if a.name.split(".")[0] == "dpo_ref"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            if base.split(".")[0] == "dpo_ref":
                found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else known(base) for a in node.names}
    return found - {module}


GRAPH = {module: _imported(module, path) for module, path in MODULES.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_circles():
    assert _circles(GRAPH) == []


def _layer(module: str) -> int | None:
    top = module.split(".")[1] if "." in module else None
    return LAYER_OF.get(top) if top else None


def test_every_module_has_a_layer():
    unplaced = sorted({m.split(".")[1] for m in MODULES if "." in m and _layer(m) is None})
    assert unplaced == [], "add these to LAYERS here and to the table in ARCHITECTURE.md"


def test_no_module_imports_from_a_layer_above_its_own():
    names = list(LAYERS)
    upward = [
        f"{module} ({names[_layer(module)]}) imports {target} ({names[_layer(target)]})"
        for module, targets in GRAPH.items()
        for target in targets
        if _layer(module) is not None and _layer(target) is not None and _layer(target) > _layer(module)
    ]
    assert upward == []


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    skipped = ("docs/assets/vendor/", "docs/results/")  # third-party code; generated data
    suffixes = {".py", ".md", ".yml", ".yaml", ".toml", ".cfg", ".txt", ".js", ".css", ".html", ""}
    return [
        ROOT / name
        for name in listed.splitlines()
        if not name.startswith(skipped) and Path(name).suffix in suffixes and (ROOT / name).is_file()
    ]


# How a citation of a document outside the repository looks: the design notes, style guide and
# fact sheet that its authors kept beside it.
OUTSIDE = re.compile(r"DESIGN section|DESIGN:|STYLE habit|\bFACTS\.md|\.\./shared|/work/shared|SITE_NOTES|USERS\.md")


def test_no_file_cites_a_document_outside_the_repository():
    me = Path(__file__).resolve()
    cited = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _tracked_text_files()
        if path.resolve() != me
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert cited == []


@pytest.mark.parametrize("document", ["ARCHITECTURE.md", "CONTRIBUTING.md"])
def test_the_design_documents_name_only_files_that_exist(document):
    text = (ROOT / document).read_text(encoding="utf-8")
    named = set(re.findall(r"`([\w./-]+\.(?:py|md|yml|json|toml|txt)|[\w./-]+/)`", text))
    assert len(named) >= 10, "the document should point at the real files"

    def exists(name: str) -> bool:
        candidates = [ROOT / name, PACKAGE / name, ROOT / "docs" / name]
        return any(c.exists() for c in candidates) or "<" in name

    assert sorted(n for n in named if not exists(n)) == []


def test_the_readme_links_the_design_documents():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](ARCHITECTURE.md)" in readme and "](CONTRIBUTING.md)" in readme


def _quoted_method_names(text: str) -> list[str]:
    from dpo_ref.methods import METHODS

    names = "|".join(re.escape(name) for name in METHODS)
    spelled = re.compile(rf"""(["'])({names})\1""")
    return [match.group(0) for match in spelled.finditer(text)]


def test_the_name_finder_finds_a_quoted_name():
    assert _quoted_method_names("""x = grids["ppo-gt"] + 'dpo' + "dpo_ref" + "ppo_runs" """) == ['"ppo-gt"', "'dpo'"]


def test_no_module_but_the_registry_spells_a_method_name_in_quotes():
    """A method lives in dpo_ref/methods.py: elsewhere code names one through the registry's constants
    (``methods.DPO``), so a misspelling fails at import; grids and results are data files."""
    spelled = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "methods.py" or path.parent != PACKAGE
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _quoted_method_names(line)
    ]
    assert spelled == []
