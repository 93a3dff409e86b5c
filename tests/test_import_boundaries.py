"""The runtime never reaches into training: no TensorFlow, Keras or gancomp.training import.

compress, decompress, info, compare and bench run on the runtime dependencies alone (the
``train`` extra brings TensorFlow). Every module of the installed package except
``gancomp/training/`` and ``gancomp/commands/train.py`` is runtime, the CLI included: the
``train`` command's module is the one allowed to import training, lazily, inside the command
(its import is checked by the subprocess test below). The static check reads every import
statement, at any depth (imports inside functions included), resolves relative imports, and
also catches ``importlib.import_module("...")`` and ``__import__("...")`` with a literal name.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import gancomp

PACKAGE_DIR = Path(gancomp.__file__).resolve().parent
FORBIDDEN = ("tensorflow", "keras", "gancomp.training")
# Not runtime: training itself, the `train` command, the refining efforts' bridge
# (compress --effort fast/max) and the realism measures' critic, which import it on demand.
NOT_RUNTIME = (
    "gancomp.training",
    "gancomp.commands.train",
    "gancomp.refine",
    "gancomp.evaluation.realism",
)
# Rooms that must be among the checked modules (so the walk cannot silently find nothing).
RUNTIME_ROOMS = (
    "gancomp",
    "gancomp.commands",
    "gancomp.io",
    "gancomp.runtime",
    "gancomp.coding",
    "gancomp.evaluation",
)


def module_name(path: Path, package_dir: Path) -> str:
    """``.../gancomp/runtime/codec.py`` -> ``gancomp.runtime.codec`` (a package is its
    ``__init__``)."""
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def imported_names(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, the source of ``module``.

    ``from a import b`` yields ``a`` and ``a.b`` (``b`` may be a submodule).
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                origin = f"{base}.{node.module}" if node.module else base
            else:
                origin = node.module or ""
            found.append((node.lineno, origin))
            found.extend((node.lineno, f"{origin}.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func, first = node.func, node.args[0]
            dynamic = (isinstance(func, ast.Name) and func.id == "__import__") or (
                isinstance(func, ast.Attribute) and func.attr == "import_module"
            )
            if dynamic and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value))
    return found


def forbidden_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    """``"module:line imports name"`` for every TensorFlow, Keras or training import."""
    return [
        f"{module}:{line} imports {name}"
        for line, name in imported_names(source, module, is_package)
        if _is_forbidden(name)
    ]


def runtime_modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        name = module_name(path, package_dir)
        if not any(name == n or name.startswith(n + ".") for n in NOT_RUNTIME):
            modules[name] = path
    return modules


def boundary_violations(package_dir: Path = PACKAGE_DIR) -> list[str]:
    found = []
    for name, path in runtime_modules(package_dir).items():
        found += forbidden_imports(path.read_text(), name, path.name == "__init__.py")
    return found


def test_no_runtime_module_imports_training_tensorflow_or_keras():
    modules = runtime_modules()
    assert set(RUNTIME_ROOMS) <= set(modules), sorted(modules)
    assert "gancomp.runtime.codec" in modules and "gancomp.coding.entropy" in modules
    assert "gancomp.cli" in modules and "gancomp.commands.evaluate" in modules
    offenders = boundary_violations()
    assert not offenders, "runtime modules import training code:\n" + "\n".join(offenders)


def test_the_walk_finds_a_violation_in_a_package(tmp_path):
    """A copy of the package layout where one runtime module imports the trainer inside a
    function, relatively, and the CLI, the train command and training import what they may."""
    pkg = tmp_path / "gancomp"
    for rel, source in {
        "__init__.py": "",
        "cli.py": "from gancomp.commands.train import train\n",
        "commands/__init__.py": "",
        "commands/train.py": "def train():\n    from gancomp.training import trainer\n",
        "training/__init__.py": "",
        "training/trainer.py": "import tensorflow as tf\n",
        "runtime/__init__.py": "",
        "runtime/codec.py": "import numpy as np\n",
        "runtime/tiling.py": "import numpy as np\n\n\ndef plan():\n    from ..training import trainer\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(source)
    assert sorted(runtime_modules(pkg)) == [
        "gancomp",
        "gancomp.cli",
        "gancomp.commands",
        "gancomp.runtime",
        "gancomp.runtime.codec",
        "gancomp.runtime.tiling",
    ]
    assert boundary_violations(pkg) == [
        "gancomp.runtime.tiling:5 imports gancomp.training",
        "gancomp.runtime.tiling:5 imports gancomp.training.trainer",
    ]


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import tensorflow as tf", "gancomp.runtime.codec", ["tensorflow"]),
        ("import numpy, keras.layers", "gancomp.io.images", ["keras.layers"]),
        (  # an import hidden in a function still counts
            "def f():\n    if True:\n        from keras import ops\n",
            "gancomp.coding.entropy",
            ["keras", "keras.ops"],
        ),
        (
            "from gancomp.training.data import load_folder",
            "gancomp.evaluation.bench",
            ["gancomp.training.data", "gancomp.training.data.load_folder"],
        ),
        (  # relative, from a module: '..' is the gancomp package
            "from ..training import trainer",
            "gancomp.runtime.codec",
            ["gancomp.training", "gancomp.training.trainer"],
        ),
        ("from .. import training", "gancomp.runtime.codec", ["gancomp.training"]),
        (  # relative, from a package's __init__: '.' is the package itself
            "from .training._tf import tf",
            "gancomp",
            ["gancomp.training._tf", "gancomp.training._tf.tf"],
        ),
        (
            "import importlib\nimportlib.import_module('tensorflow')",
            "gancomp.batch",
            ["tensorflow"],
        ),
        ("__import__('keras')", "gancomp.pillow", ["keras"]),
    ],
)
def test_checker_finds_forbidden_imports(source, module, expected):
    is_package = module == "gancomp"
    found = [n for _, n in imported_names(source, module, is_package) if _is_forbidden(n)]
    assert found == expected
    assert len(forbidden_imports(source, module, is_package)) == len(expected)


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("import numpy as np\nfrom PIL import Image", "gancomp.io.images"),
        ("from . import tiling\nfrom .models import find_model", "gancomp.runtime.codec"),
        ("from ..coding import container", "gancomp.runtime.codec"),
        ("import tensorflow_probability_like_name_free", "gancomp.coding.entropy"),
        ("text = 'import tensorflow'  # a string, not an import", "gancomp.evaluation.bench"),
        ("from gancomp.runtime import training_free", "gancomp.cli"),
    ],
)
def test_checker_accepts_runtime_imports(source, module):
    assert forbidden_imports(source, module) == []


def test_relative_imports_resolve_like_python():
    names = [n for _, n in imported_names("from .tiling import plan", "gancomp.runtime.codec")]
    assert names == ["gancomp.runtime.tiling", "gancomp.runtime.tiling.plan"]
    names = [n for _, n in imported_names("from . import codec", "gancomp.runtime", True)]
    assert names == ["gancomp.runtime", "gancomp.runtime.codec"]


IMPORT_ALL = """
import importlib, json, sys
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
training = sorted(m for m in sys.modules if m.startswith("gancomp.training"))
print(json.dumps({"heavy": heavy[:5], "training": training}))
"""


def test_importing_the_runtime_and_the_cli_loads_no_tensorflow():
    """In a fresh process: the package, the CLI, the train command's module and every runtime
    module import without TensorFlow, Keras or any training module ending up in sys.modules."""
    names = ["gancomp.commands.train", *runtime_modules()]
    names.remove("gancomp.__main__")  # importing it would run the CLI
    r = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout.strip().splitlines()[-1])
    assert loaded == {"heavy": [], "training": []}
