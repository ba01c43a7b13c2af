"""The module graph: reports read run folders and import no pipeline code; no import circles."""

import ast
from pathlib import Path

import selfexplain

ROOT = Path(selfexplain.__file__).parent
PIPELINE = {"api", "cli", "experiments", "study", "pipeline", "rejudge", "evaluation", "attribution", "construction",
            "training", "rl", "rewards", "backends", "cot"}
# Floors, top down: a module imports only from its own floor or below.  Everything not named is the ground floor
# (models, styles, store, tasks, words, stats, reports, ...).
FLOORS = {"cli": 6, "experiments": 5, "study": 5, "api": 4, "pipeline": 3, "rejudge": 3, "evaluation": 2,
          "attribution": 2, "construction": 2, "training": 2, "rl": 2, "rewards": 2, "cot": 2, "backends": 1}
# models/ (catalogue, GGUF, resolution, loading, prompt and label tokens) is on the ground floor, below backends:
# backends, training and the pipeline all reach it.


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["selfexplain", *parts])


def _imports(path: Path) -> set[str]:
    """Every selfexplain module this file imports, at any depth (functions included), except under TYPE_CHECKING."""
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
            for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out |= {n for n in names if n.startswith("selfexplain")}
    return out


def _graph() -> dict[str, set[str]]:
    """Module -> modules it imports; a package loading its own submodules (registries) is not an edge."""
    files = {_module(p): p for p in ROOT.rglob("*.py")}
    return {m: {t for t in _imports(p) if t in files and t != m and not t.startswith(m + ".")} for m, p in files.items()}


def test_reports_import_no_pipeline_module():
    for mod, targets in _graph().items():
        if mod.startswith("selfexplain.reports"):
            bad = {t for t in targets if t.count(".") and t.split(".")[1] in PIPELINE}
            assert not bad, f"{mod} imports {sorted(bad)}"


def test_no_import_circles():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                cycle = path[path.index(t):] + [t]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def _floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS.get(parts[1], 0) if len(parts) > 1 else 0


def test_every_import_points_down_a_floor_or_stays_on_it():
    bad = [f"{m} (floor {_floor(m)}) imports {t} (floor {_floor(t)})"
           for m, targets in _graph().items() for t in targets if _floor(t) > _floor(m)]
    assert not bad, bad
