"""Every error class of the products (capture_lib, tui, restorer) derives from one root,
capture_lib.errors.SyscapError, so `syscap` and any other caller take them all with one
handler. The restorer reaches the root through capture_lib.errors alone, a module that
imports nothing, so the restorer still needs none of the rest of capture_lib."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

from capture_lib.errors import SyscapError
from tests.conftest import ROOT

PRODUCTS = ("capture_lib", "tui", "restorer")


def product_modules() -> list[tuple[str, Path]]:
    """(module name, file) of every module of the products, but the __main__ scripts."""
    out = []
    for package in PRODUCTS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__main__":
                continue
            out.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return out


def defined_classes(path: Path) -> tuple[list[str], list[str]]:
    """The qualified names of the classes a file defines at module level or inside a
    class, and those it defines inside a function (which no import can reach)."""
    reachable: list[str] = []
    hidden: list[str] = []

    def visit(node: ast.AST, prefix: str, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                name = f"{prefix}{child.name}"
                (hidden if in_function else reachable).append(name)
                visit(child, f"{name}.", in_function)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, f"{prefix}{getattr(child, 'name', 'lambda')}.<locals>.", True)
            else:
                visit(child, prefix, in_function)

    visit(ast.parse(path.read_text(), str(path)), "", False)
    return reachable, hidden


def exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class the products define, by module:qualname."""
    found: dict[str, type[BaseException]] = {}
    for module_name, path in product_modules():
        reachable, hidden = defined_classes(path)
        assert not hidden, (f"{path.relative_to(ROOT)} defines classes inside functions "
                            f"({hidden}): define them at module level, where this test sees "
                            "them")  # fmt: skip
        module = importlib.import_module(module_name)
        for qualname in reachable:
            obj: object = module
            for part in qualname.split("."):
                obj = getattr(obj, part)
            if isinstance(obj, type) and issubclass(obj, BaseException):
                found[f"{module_name}:{qualname}"] = obj
    return found


def test_every_exception_class_of_the_products_is_a_syscap_error() -> None:
    """A stop by signal is the one other kind: a KeyboardInterrupt, which `syscap`
    ends on as on Ctrl-C (exit status 130)."""
    found = exception_classes()
    # the walk sees each package's errors, private ones included
    for name in ("capture_lib.errors:UsageError", "capture_lib.perfetto:ExportError",
                 "restorer.errors:RestoreError", "restorer.elf:NoteError",
                 "restorer.sidecar:_Bad", "capture_lib.record:_Stop"):  # fmt: skip
        assert name in found, sorted(found)
    outside = sorted(name for name, cls in found.items()
                     if not issubclass(cls, (SyscapError, KeyboardInterrupt)))  # fmt: skip
    assert not outside, (f"{outside} are not under capture_lib.errors.SyscapError: derive "
                         "them from it (or from a subclass such as RestoreError)")


def test_the_error_root_imports_nothing() -> None:
    """capture_lib/errors.py and the package's __init__.py, which importing it runs:
    the standard library only."""
    for rel in ("capture_lib/__init__.py", "capture_lib/errors.py"):
        tree = ast.parse((ROOT / rel).read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "." for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        other = [m for m in names if m.split(".")[0] not in sys.stdlib_module_names]
        assert not other, f"{rel} imports {other}: the restorer imports it and nothing else"


def test_the_restorer_loads_no_other_module_of_capture_lib() -> None:
    """Every restorer module imported in a fresh interpreter: of capture_lib, only the
    package and its errors are loaded (the restorer runs where capture_lib's native
    library is not built, e.g. in the arm64 restorer guest)."""
    modules = [name for name, _ in product_modules() if name.split(".")[0] == "restorer"]
    assert "restorer.cli" in modules and "restorer.errors" in modules
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n"
            "    importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'capture_lib'))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "['capture_lib', 'capture_lib.errors']", p.stdout
