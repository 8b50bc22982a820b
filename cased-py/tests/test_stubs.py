"""_cased.pyi describes exactly what cased._cased exports: names, class members and bases."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import cased
from cased import _cased

STUB = Path(cased.__file__).with_name("_cased.pyi")


def public(names: object) -> set[str]:
    return {n for n in names if not n.startswith("_")}  # type: ignore[attr-defined]


def stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text(), filename=str(STUB))


def top_level(tree: ast.Module) -> dict[str, ast.stmt]:
    names: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Assign):
            names.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
    return names


def test_stub_names_match_the_module() -> None:
    stub = top_level(stub_tree())
    assert public(stub) == public(dir(_cased))
    assert "__version__" in stub


def test_stub_class_members_match() -> None:
    stub = top_level(stub_tree())
    for name in public(dir(_cased)):
        obj = getattr(_cased, name)
        node = stub[name]
        if not inspect.isclass(obj) or issubclass(obj, BaseException):
            continue
        assert isinstance(node, ast.ClassDef)
        declared = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        assert public(declared) == public(vars(obj)), name


def test_stub_exception_bases_match() -> None:
    stub = top_level(stub_tree())
    for name in public(dir(_cased)):
        obj = getattr(_cased, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            node = stub[name]
            assert isinstance(node, ast.ClassDef)
            assert [ast.unparse(b) for b in node.bases] == [b.__name__ for b in obj.__bases__], name


def test_stub_functions_are_documented() -> None:
    for node in ast.walk(stub_tree()):
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            assert ast.get_docstring(node), node.name
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            assert ast.get_docstring(node), node.name


def test_py_typed_ships() -> None:
    assert STUB.with_name("py.typed").is_file()
