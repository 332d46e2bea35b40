"""The diffusion room's modules import each other without a circle (issue #35: change_pair and style used to, style
reaching into change_pair inside its functions); every import counts, at the top of a module or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import changeanywhere_qgis.engine.diffusion as diffusion

ROOM = Path(diffusion.__file__).parent


def _imports(path: Path) -> set[str]:
    """The sibling modules a module imports (``from .name import ...`` anywhere in it)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_module_of_the_room_imports_itself_round_a_circle():
    graph = {p.stem: _imports(p) & {q.stem for q in ROOM.glob("*.py")} for p in ROOM.glob("*.py") if p.stem != "__init__"}
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for nxt in sorted(graph.get(name, ())):
            assert state.get(nxt) != "open", "import circle: " + " -> ".join(path + [nxt])
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[name] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert "change_pair" not in graph["style"]
