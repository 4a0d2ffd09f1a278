"""mobile/ is a library with thin command-line modules on top (static checks, no TensorFlow).

* The command-line modules are named here: every package's `__main__`, `benchmark`,
  `select`, `serve` and their plumbing `cli`. Only they define flags; no library module
  imports one of them (the library never depends on a tool).
* No module under mobile/ calls (or imports) another project module's underscore-private
  function: what is shared is public, or lives where it is used.
"""

import ast
import os

import pytest
from tests.helpers import REPO_ROOT

PROJECT = ("mobile", "dynabert_tf", "train")
CLI_MODULES = {"mobile.benchmark", "mobile.select", "mobile.serve", "mobile.cli"}


def is_cli(name):
    """True for a command-line module (flags, printing, exit codes)."""
    return name in CLI_MODULES or name.rsplit(".", 1)[-1] == "__main__"


def modules(root=REPO_ROOT, package="mobile"):
    """{module name: path} of every .py file under root/package (a package by its name)."""
    found = {}
    for directory, _, names in os.walk(os.path.join(root, package)):
        for file_name in sorted(names):
            if file_name.endswith(".py"):
                path = os.path.join(directory, file_name)
                name = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                found[name.removesuffix(".__init__")] = path
    return found


def parse(path):
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read(), path)


def _base(node, module, is_package):
    """The absolute module name an ImportFrom reads from."""
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[:len(parts) - node.level + 1]
    return ".".join(parts + ([node.module] if node.module else []))


def imports(tree, module, is_package=False):
    """[(imported name, bound name, source module)] of every import, function-level ones
    included: `import a.b as c` -> ("a.b", "c", "a.b"); `from a import b as c` ->
    ("a.b", "c", "a") (b may be a module or a name defined in a)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, alias.asname or alias.name.split(".")[0],
                              alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = _base(node, module, is_package)
            for alias in node.names:
                found.append((f"{base}.{alias.name}", alias.asname or alias.name, base))
    return found


def _is_private(name):
    return name.startswith("_") and not name.startswith("__")


def _is_project(name):
    return name.split(".")[0] in PROJECT


def cli_imports(found):
    """["library module imports cli module"] for every library module that imports a
    command-line module."""
    problems = []
    for module, path in sorted(found.items()):
        if is_cli(module):
            continue
        for imported, _, source in imports(parse(path), module, path.endswith("__init__.py")):
            for name in {imported, source}:
                if name in found and is_cli(name):
                    problems.append(f"{module} imports command-line module {name}")
    return sorted(set(problems))


def private_uses(found):
    """["module: line: what"] for every call of another project module's private function
    (`x._name(...)` with x bound by an import) and every import of a private name."""
    problems = []
    for module, path in sorted(found.items()):
        tree = parse(path)
        bound = {}
        for imported, name, source in imports(tree, module, path.endswith("__init__.py")):
            if not _is_project(source):
                continue
            last = imported.rsplit(".", 1)[-1]
            if _is_private(last) and source != module:
                problems.append(f"{module} imports the private {imported}")
            bound[name] = imported
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and _is_private(node.func.attr)):
                continue
            owner = node.func.value
            while isinstance(owner, ast.Attribute):
                owner = owner.value
            if isinstance(owner, ast.Name) and owner.id in bound:
                problems.append(f"{module}:{node.lineno} calls {ast.unparse(node.func)} "
                                f"({bound[owner.id]})")
    return problems


def flag_modules(found):
    """Modules that define absl flags or run an absl app."""
    defining = set()
    for module, path in found.items():
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Attribute) and node.attr.startswith("DEFINE_") or (
                    isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "run" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "app"):
                defining.add(module)
    return defining


@pytest.fixture(scope="module")
def mobile_modules():
    return modules()


def test_only_command_line_modules_define_flags(mobile_modules):
    assert sorted(m for m in flag_modules(mobile_modules) if not is_cli(m)) == []


def test_no_library_module_imports_a_command_line_module(mobile_modules):
    assert cli_imports(mobile_modules) == []


def test_no_module_calls_another_modules_private_function(mobile_modules):
    assert private_uses(mobile_modules) == []


def test_the_tools_are_thin_and_the_library_is_packaged(mobile_modules):
    for tool in ("mobile.export.__main__", "mobile.search.__main__", "mobile.benchmark",
                 "mobile.select"):
        assert tool in mobile_modules
        tree = parse(mobile_modules[tool])
        functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert {"define_flags", "main"} <= {f.name for f in functions}, tool
        assert all(f.end_lineno - f.lineno < 60 for f in functions), tool
    for package in ("mobile.export", "mobile.search", "mobile.litert"):
        assert mobile_modules[package].endswith("__init__.py")


def test_the_checks_catch_what_they_forbid(tmp_path):
    """The old shape: a library module importing a tool, calling its private helpers."""
    package = tmp_path / "mobile"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "benchmark.py").write_text(
        "from absl import flags\nflags.DEFINE_integer('runs', 1, '')\n"
        "def _bar(total):\n    return None\n")
    (package / "export.py").write_text("def _sha256(path):\n    return ''\n")
    (package / "latency_measure.py").write_text(
        "from mobile import benchmark as benchmark_lib\nfrom mobile import export as export_lib\n"
        "from mobile.export import _sha256\n"
        "def measure():\n    benchmark_lib._bar(3)\n    return export_lib._sha256('x')\n")
    found = modules(str(tmp_path))
    assert cli_imports(found) == ["mobile.latency_measure imports command-line module "
                                  "mobile.benchmark"]
    problems = private_uses(found)
    assert any("benchmark_lib._bar" in p for p in problems)
    assert any("export_lib._sha256" in p for p in problems)
    assert any("imports the private mobile.export._sha256" in p for p in problems)
    assert flag_modules(found) == {"mobile.benchmark"}
