"""The shape of the code: no import cycle between the files of nas/ and search_spaces/ (nor
between the packages inside nas/), no private module imported from another package, leaf
packages that stay leaves, cheap CLI and readers, attr names only in nas.record, and the
report built on public APIs."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

from nas.record import PHASE_NAMES, PHASE_SUFFIXES, TRIAL_GROUPS, StudyAttrs, fields

ROOT = Path(__file__).resolve().parents[1]
NAS = ROOT / "nas"
PACKAGES = ("nas", "search_spaces")


@dataclass(frozen=True)
class _Import:
    importer: str  # module name of the importing file
    name: str  # what it imports, dotted: ``nas.carbon._live.Points``
    target: str | None  # the module file that import loads (None: not one of ours)
    line: int


def _files(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Module name -> file for every ``.py`` under the packages (``pkg/__init__.py`` -> ``pkg``)."""
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _file_imports(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[_Import]:
    """Every import statement of every file: at module level, in functions, under
    ``if TYPE_CHECKING:``; relative ones resolved. ``target`` is the file the statement names
    (``from a.b import c`` loads ``a/b/c.py`` when that is a module, else ``a/b/__init__.py``);
    the parent packages Python also runs are not counted (they would tie every file to its
    ``__init__``)."""
    files = _files(root, packages)
    out = []
    for module, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                pairs = [(a.name, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = _package_of(module, path).split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                pairs = [(base if a.name == "*" else f"{base}.{a.name}", base) for a in node.names]
            else:
                continue
            for name, fallback in pairs:
                if name.split(".")[0] not in packages:
                    continue
                target = name if name in files else fallback if fallback in files else None
                out.append(_Import(module, name, target, node.lineno))
    return out


def _file_graph(imports: list[_Import]) -> dict[str, dict[str, int]]:
    """importer -> {imported file's module: line of its first import}."""
    edges: dict[str, dict[str, int]] = {}
    for imp in imports:
        if imp.target is not None and imp.target != imp.importer:
            edges.setdefault(imp.importer, {}).setdefault(imp.target, imp.line)
    return edges


def _cycle_paths(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """One shortest cycle (``[a, b, ..., a]``) through the first node of every strongly
    connected component with more than one node."""
    plain = {v: set(ws) for v, ws in edges.items()}
    out = []
    for comp in _cycles(plain):
        inside, start = set(comp), comp[0]
        parent: dict[str, str] = {}
        queue, seen = deque([start]), {start}
        while queue:
            v = queue.popleft()
            if start in plain.get(v, ()):  # back at the start: the cycle is found
                path = [v]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                out.append([*reversed(path), start])
                break
            for w in sorted(plain.get(v, ())):
                if w in inside and w not in seen:
                    seen.add(w)
                    parent[w] = v
                    queue.append(w)
    return out


def _describe(cycle: list[str], edges: dict[str, dict[str, int]], root: Path) -> str:
    """``a.py:12 -> b.py:30 -> a.py``: each file with the line importing the next."""

    files = _files(root)

    def rel(module: str) -> str:
        return str(files[module].relative_to(root)) if module in files else module

    hops = [f"{rel(a)}:{edges[a][b]}" for a, b in zip(cycle, cycle[1:], strict=False)]
    return " -> ".join([*hops, rel(cycle[-1])])


def _private_imports(imports: list[_Import], root: Path) -> list[str]:
    """Imports of a ``_private`` module (or name) owned by a package the importer is not in."""
    files = _files(root)
    found = []
    for imp in imports:
        parts = imp.name.split(".")
        private = next(
            (i for i, p in enumerate(parts) if p.startswith("_") and not p.startswith("__")),
            None,
        )
        if private is None:
            continue
        owner = ".".join(parts[:private])
        if owner in files and files[owner].name != "__init__.py":  # a module's private name
            owner = owner.rpartition(".")[0]
        package = _package_of(imp.importer, files[imp.importer])
        if package != owner and not package.startswith(owner + "."):
            where = files[imp.importer].relative_to(root)
            found.append(f"{where}:{imp.line}: {imp.name} (private to {owner})")
    return found


def test_no_import_cycle_between_files() -> None:
    """Any import counts: TYPE_CHECKING, function-local, relative. A failure names the chain."""
    edges = _file_graph(_file_imports(ROOT))
    cycles = [_describe(c, edges, ROOT) for c in _cycle_paths(edges)]
    assert cycles == [], "import cycles between files:\n" + "\n".join(cycles)


def test_no_module_imports_another_packages_private_module() -> None:
    found = _private_imports(_file_imports(ROOT), ROOT)
    assert found == [], "private imports across packages:\n" + "\n".join(found)


def _write_package(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_file_checks_see_every_kind_of_import_and_name_the_cycle(tmp_path: Path) -> None:
    _write_package(
        tmp_path,
        {
            "nas/__init__.py": "",
            "nas/a.py": "import typing\nif typing.TYPE_CHECKING:\n    from nas import b\n",
            "nas/b.py": "\n\ndef f():\n    from .c import g\n",
            "nas/c.py": "import nas.a\n",
            "nas/d.py": "import nas.a\n",
            "nas/pkg/__init__.py": "from nas.pkg._impl import x\n",
            "nas/pkg/_impl.py": "x = 1\n",
            "nas/pkg/sub.py": "from nas.pkg import _impl\n",  # its own package: fine
            "nas/e.py": "from nas.pkg._impl import x\nfrom nas.c import _helper\n",
            "search_spaces/__init__.py": "",
        },
    )
    imports = _file_imports(tmp_path)
    edges = _file_graph(imports)
    [cycle] = _cycle_paths(edges)
    assert _describe(cycle, edges, tmp_path) == "nas/a.py:3 -> nas/b.py:4 -> nas/c.py:1 -> nas/a.py"
    assert _private_imports(imports, tmp_path) == [
        "nas/e.py:1: nas.pkg._impl.x (private to nas.pkg)"
    ]


def test_the_cycle_paths_are_shortest_and_one_per_component() -> None:
    edges = {"a": {"b": 1, "d": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}, "e": {"a": 5}}
    assert _cycle_paths(edges) == [["a", "d", "a"]]
    assert _cycle_paths({"a": {"b": 1}, "b": {}}) == []


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("search_spaces", ("search_spaces",)),
        ("nas.carbon", ("nas.carbon", "nas.errors")),
        ("nas.energy", ("nas.energy", "nas.errors")),
    ],
)
def test_leaf_packages_know_nothing_above_them(package: str, allowed: tuple[str, ...]) -> None:
    """search_spaces imports nothing from nas (nas.errors re-exports search_spaces.errors);
    carbon and energy import only themselves and nas.errors of econas, and never Optuna."""
    found = []
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                ours = name.split(".")[0] in PACKAGES
                if name.split(".")[0] == "optuna" and package != "search_spaces":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
                elif ours and not any(name == a or name.startswith(a + ".") for a in allowed):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert found == []


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
    names = {str(f) for g in (*TRIAL_GROUPS, StudyAttrs) for f in fields(g)}
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
