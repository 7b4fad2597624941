"""Imports inside functions only where something stops them at module level, each with its reason.

An optional extra, a start-up cost for commands that don't need the module, or a cycle: the
reason is a comment on the line above the import or at the end of its line (one comment may
head a run of consecutive imports). A bare ``# noqa`` is not a reason.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "loralab"
# Markers that silence tools; what is left of the comment once they are gone is the reason.
TOOL_MARKERS = re.compile(r"noqa(:\s*[A-Z]+\d+(,\s*[A-Z]+\d+)*)?|type:\s*ignore(\[[^\]]*\])?|pragma:[^#]*")


def _reasons(source: str) -> dict[int, str]:
    """Line number → the text of its comment, tool markers removed (empty when nothing is left)."""
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = TOOL_MARKERS.sub("", token.string.lstrip("#")).strip(" #")
    return found


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def unexplained_imports(source: str) -> list[int]:
    """Line numbers of imports inside functions with no reason next to them."""
    reasons = _reasons(source)
    missing: list[int] = []

    def explained(node: ast.stmt, previous: ast.stmt | None) -> bool:
        if reasons.get(node.lineno - 1) or any(
            reasons.get(line) for line in range(node.lineno, (node.end_lineno or node.lineno) + 1)
        ):
            return True
        # The next import of a run under one comment shares its reason.
        return isinstance(previous, ast.Import | ast.ImportFrom) and previous.lineno not in missing

    def visit(body: list[ast.stmt], in_function: bool) -> None:
        previous: ast.stmt | None = None
        for node in body:
            if _is_type_checking(node):
                previous = node
                continue
            if in_function and isinstance(node, ast.Import | ast.ImportFrom):
                if not explained(node, previous):
                    missing.append(node.lineno)
            inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if not isinstance(children, list):
                    continue
                for child in children:
                    if isinstance(child, ast.ExceptHandler):
                        visit(child.body, inner)
                if children and isinstance(children[0], ast.stmt):
                    visit(children, inner)
            if isinstance(node, ast.Match):
                for case in node.cases:
                    visit(case.body, inner)
            previous = node

    visit(ast.parse(source).body, in_function=False)
    return sorted(missing)


def test_every_function_level_import_says_why():
    missing = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in unexplained_imports(path.read_text())
    ]
    assert not missing, "imports inside functions without a reason comment: " + ", ".join(missing)


CASES = [
    ("def f():\n    import torch\n", [2]),
    ("def f():\n    # deferred: torch takes seconds to import\n    import torch\n", []),
    ("def f():\n    import torch  # deferred: torch takes seconds\n", []),
    ("def f():\n    import optuna  # noqa: F401\n", [2]),
    ("def f():\n    import python_multipart  # noqa: F401  (form uploads)\n", []),
    ("def f():\n    # a reason\n    import torch\n    from transformers import AutoModel\n", []),
    ("def f():\n    x = 1\n    import torch\n", [3]),
    ("def f():\n    try:\n        import datasets\n    except ImportError:\n        pass\n", [3]),
    (
        "def f():\n    try:\n        # optional extra: hf\n        import datasets\n"
        "    except ImportError:\n        raise\n",
        [],
    ),
    ("class A:\n    def f(self):\n        if True:\n            from a import b\n", [4]),
    ("import torch\nif TYPE_CHECKING:\n    import peft\n", []),
    ("def f():\n    if TYPE_CHECKING:\n        import peft\n", []),
    ("def f():\n    x = '# not a comment'\n    import torch\n", [3]),
    ("def f():\n    def g():\n        import torch\n    return g\n", [3]),
]


@pytest.mark.parametrize(("source", "lines"), CASES)
def test_the_check_finds_imports_without_a_reason(source, lines):
    assert unexplained_imports(textwrap.dedent(source)) == lines
