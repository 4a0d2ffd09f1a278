"""No import cycle among the project's modules, counting imports inside functions too (a
cycle there still ties two layers together), and the TensorFlow-free packages stay free of it.

Static (ast): nothing is imported to build the graph, so it runs in a second.
"""

import ast
import os
import subprocess
import sys

from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from tests.helpers import REPO_ROOT

PACKAGES = ("dynabert_tf", "mobile", "train")


def project_modules():
    """{dotted module name: path} of every module of PACKAGES (a package as its name)."""
    found = {}
    for package in PACKAGES:
        for directory, _, names in os.walk(os.path.join(REPO_ROOT, package)):
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    dotted = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
                    found[dotted.removesuffix(".__init__")] = path
    return found


def imports_of(module, path, known):
    """The project modules `module` imports anywhere in its file (the nearest known parent
    of each imported name)."""
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


def cycles(graph):
    """Strongly connected groups of more than one module (package __init__s aside: a
    package importing its own modules is not a layering cycle)."""
    names = sorted(graph)
    index = {name: i for i, name in enumerate(names)}
    rows, cols = [], []
    for source, targets in graph.items():
        for target in targets:
            rows.append(index[source])
            cols.append(index[target])
    matrix = csr_matrix(([1] * len(rows), (rows, cols)), shape=(len(names), len(names)))
    _, labels = connected_components(matrix, directed=True, connection="strong")
    groups = {}
    for name, label in zip(names, labels):
        groups.setdefault(label, []).append(name)
    return [group for group in groups.values() if len(group) > 1]


def _graph(drop_packages=True):
    known = project_modules()
    graph = {m: imports_of(m, p, known) for m, p in known.items()}
    if drop_packages:
        packages = {m for m, p in known.items() if p.endswith("__init__.py")}
        graph = {m: t - packages for m, t in graph.items() if m not in packages}
    return graph


def test_no_import_cycle():
    assert cycles(_graph()) == []


def test_a_cycle_is_found():
    # The check itself: a two-module loop and a three-module loop are reported.
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(sorted(g) for g in cycles(graph)) == [["a", "b"], ["c", "d", "e"]]


def test_models_import_neither_io_nor_presets_loader_cycle():
    graph = _graph()
    assert not [m for m in graph if m.startswith("dynabert_tf.models")
                for t in graph[m] if t.startswith("dynabert_tf.io")]
    assert not [m for m in graph if m.startswith("dynabert_tf.core")
                for t in graph[m] if not t.startswith("dynabert_tf.core")]


def test_core_runtime_and_preflight_import_no_tensorflow():
    code = ("import sys, importlib, pkgutil, dynabert_tf.core as core\n"
            "for info in pkgutil.iter_modules(core.__path__):\n"
            "    importlib.import_module('dynabert_tf.core.' + info.name)\n"
            "import train.preflight, mobile.runtime, mobile.selection\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
