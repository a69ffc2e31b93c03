"""The layers run one way: training (the model's home) <- export <- realtime <- benchmarks.

Every import in the product, at module level or inside a function, is read with ``ast`` and
checked. The only upward imports allowed are the two that must be: data preparation using the
live aligner (so training crops frame faces exactly as live crops do), and ``export verify``
running the engines. Nothing in the product imports ``tests``."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"training": 0, "export": 1, "realtime": 2, "benchmarks": 3}
ALLOWED_UP = {
    ("training/prepare.py", "realtime.faces"),       # training crops made by the live aligner
    ("training/demo_data.py", "realtime.faces"),     # the demo data set, aligned the same way
    ("export/verify.py", "realtime.engines"),        # verify runs every engine on the exports
}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg = path.relative_to(ROOT).parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:                     # relative: resolve against the file's package
                base = list(pkg[: len(pkg) - node.level + 1])
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield node.lineno, name


def _violations():
    out = []
    for top, level in LAYERS.items():
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for line, name in _imports(path):
                head = name.split(".")[0]
                if head == "tests":
                    out.append(f"{rel}:{line} imports {name} (the product never imports tests)")
                elif head in LAYERS and LAYERS[head] > level:
                    if not any(rel == f and (name == m or name.startswith(m + "."))
                               for f, m in ALLOWED_UP):
                        out.append(f"{rel}:{line} imports {name} ({top} is below {head})")
    return out


def test_imports_run_one_way():
    assert _violations() == []


def test_the_check_sees_function_level_and_relative_imports():
    lines = dict(_imports(ROOT / "realtime" / "engines" / "select.py"))
    assert any(n.startswith("export.onnx") for n in lines.values())        # inside a function
    assert "realtime.engines.base" in lines.values()                        # `from .base import`
