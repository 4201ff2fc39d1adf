"""The shape of the code: no import cycles inside nas/, cheap CLI and readers, attr names only in
nas.record, and the report built on public APIs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from nas.record import PHASE_NAMES, PHASE_SUFFIXES, TRIAL_GROUPS, Study, fields

ROOT = Path(__file__).resolve().parents[1]
NAS = ROOT / "nas"


def _modules() -> dict[str, Path]:
    out = {}
    for path in NAS.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every ``nas...`` module imported anywhere in the file (lazy imports too), except under
    ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, node.lineno))
            out += [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
    return [(m, line) for m, line in out if m == "nas" or m.startswith("nas.")]


def _unit(module: str) -> str:
    """``nas.compression.step`` -> ``nas.compression``: a subpackage or top-level module."""
    return ".".join(module.split(".")[:2])


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_packages_inside_nas() -> None:
    modules = _modules()
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        for target, _ in _imports(path):
            if target in modules and _unit(target) != _unit(name):
                edges.setdefault(_unit(name), set()).add(_unit(target))
    assert _cycles(edges) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_import_nas_is_cheap_and_its_front_door_loads_no_torch() -> None:
    code = (
        "import sys\n"
        "import nas\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'optuna')))\n"
        "nas.__version__, nas.list_studies(), nas.load_config('quickstart')\n"
        "nas.run_search, nas.load_study, nas.pareto_front, nas.trial_records, nas.TrialRecord\n"
        "nas.export_trial, nas.train_trial, nas.Config, nas.BadInputError\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == ["[]", "[]"]


def test_front_door_names_are_documented_and_resolve() -> None:
    import nas

    for name in nas.__all__:
        assert getattr(nas, name) is not None
        if name != "__version__":
            assert name in (nas.__doc__ or "") or name in {
                "Config",
                "SearchResult",
                "EconasError",
                "BadInputError",
                "ConfigError",
                "list_studies",
            }, name
    try:
        nas.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("unknown attribute did not raise")


def test_help_config_and_readers_import_no_torch() -> None:
    code = (
        "import sys\n"
        "import nas.cli\n"
        "nas.cli.build_parser()\n"
        "from nas.config import load_config\n"
        "load_config('studies/quickstart.toml')\n"
        "load_config('studies/compression.toml')\n"
        "import nas.pareto, nas.record, nas.report, nas.sections\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def _attr_names() -> set[str]:
    names = {str(f) for g in (*TRIAL_GROUPS, Study) for f in fields(g)}
    names |= {f"{p}_{s}" for p in PHASE_NAMES for s in PHASE_SUFFIXES}
    return names


_ACCESSORS = {"get", "set_user_attr", "setdefault", "pop", "set_trial_user_attr", "num", "json"}


def test_attr_names_are_spelled_only_in_the_record_module() -> None:
    """Reading or writing a trial/study attr by a string literal outside ``nas/record``."""
    names = _attr_names()
    found = []
    for path in NAS.rglob("*.py"):
        if "record" in path.relative_to(NAS).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            keys: list[object] = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                receiver = ast.unparse(node.func.value)
                on_attrs = "attrs" in receiver or receiver.split(".")[-1] in ("rec", "record")
                if node.func.attr in _ACCESSORS and (on_attrs or "set_" in node.func.attr):
                    args = node.args[1:] if node.func.attr == "set_trial_user_attr" else node.args
                    if args and isinstance(args[0], ast.Constant):
                        keys.append(args[0].value)
                if node.func.attr == "update" and "attrs" in ast.unparse(node.func.value):
                    keys += [k.arg for k in node.keywords]  # attrs.update(accuracy=...)
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                if "attrs" in ast.unparse(node.value):
                    keys.append(node.slice.value)
            for key in keys:
                if isinstance(key, str) and key in names:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {key}")
    assert found == []


def test_the_report_imports_only_public_apis() -> None:
    private = []
    for path in (NAS / "report").glob("*.py"):
        for module, line in _imports(path):
            if module.startswith("nas.report"):
                continue
            if any(part.startswith("_") for part in module.split(".")):
                private.append(f"{path.name}:{line}: {module}")
    assert private == []
