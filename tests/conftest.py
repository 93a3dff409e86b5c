"""Shared fixtures, and the ``train`` marker for tests that need the training stack.

``.ci/run`` first runs ``pytest -m "not train"`` in an environment holding only the runtime
dependencies (``pip install '.[test-runtime]'``): every test that is not marked ``train`` must
pass without TensorFlow, Keras, scikit-image or matplotlib. A test is marked ``train`` either
by hand (``@pytest.mark.train`` or ``pytestmark``) or by the rule in
:func:`pytest_collection_modifyitems`: its module's top level or its own body imports one of
:data:`TRAIN_ONLY_MODULES`, or it uses the ``tf`` fixture.
"""

import ast
import inspect
import os
import shutil
import textwrap
from functools import cache
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
# Small randomly initialised models in the shipped format, built by scripts/make_tiny_models.py.
TINY_MODELS = DATA / "tiny_models"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: Importing any of these (or a submodule) needs the train, plot or test extras.
TRAIN_ONLY_MODULES = (
    "tensorflow",
    "keras",
    "skimage",
    "matplotlib",
    "gancomp.training.model",
    "gancomp.training.trainer",
    "gancomp.training._tf",
)


def imported_modules(tree: ast.AST) -> set[str]:
    """Absolute names of every module an AST imports, at any depth (``from a import b`` gives
    ``a`` and ``a.b``, since ``b`` may be a submodule)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _needs_training_stack(names: set[str]) -> bool:
    return any(n == m or n.startswith(m + ".") for n in names for m in TRAIN_ONLY_MODULES)


@cache
def _module_top_level_needs_training(path: str) -> bool:
    tree = ast.parse(Path(path).read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return _needs_training_stack(imported_modules(ast.Module(body=top, type_ignores=[])))


@cache
def _function_needs_training(function) -> bool:
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return False
    return _needs_training_stack(imported_modules(ast.parse(source)))


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if item.get_closest_marker("train"):
            continue
        function = getattr(item, "function", None)
        if (
            "tf" in getattr(item, "fixturenames", ())
            or _module_top_level_needs_training(str(item.path))
            or (function is not None and _function_needs_training(function))
        ):
            item.add_marker(pytest.mark.train)


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """A copy of the tiny committed models (airplane and ship: stride 8; flower: stride 16; hp-airplane and hp-flower: the same with a hyperprior),
    so that no test can change the committed files."""
    root = tmp_path_factory.mktemp("models")
    for model in sorted(TINY_MODELS.iterdir()):
        shutil.copytree(model, root / model.name)
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """A training folder of tests/data's airplane PNGs (a module may define its own)."""
    from helpers import copy_airplane_images

    return copy_airplane_images(tmp_path_factory.mktemp("imgs"))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A tiny factorized airplane model folder with random weights, for --init-from."""
    from helpers import random_factorized_folder

    folder = tmp_path_factory.mktemp("src") / "airplane"
    random_factorized_folder(folder)
    return folder
