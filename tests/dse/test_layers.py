"""The house: arrows point down (cli -> analysis -> pipeline -> evaluator), and the pure
evaluator imports none of the edge libraries (DESIGN.md section 1, STYLE.md section 1)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

DSE = Path(__file__).resolve().parents[2] / "dse"
# Each layer may import the layers below it, and the top-level facades (api, presets) only
# from analysis up; the input schemas and their validator (inputs, settings) and serving at a
# rate (serving: evaluator, presets and inputs only, like the evaluator's own glue) from
# pipeline up; the evaluator imports nothing of dse but itself.
_EDGE = {"presets", "inputs", "settings", "serving"}
BELOW = {
    "evaluator": {"evaluator"},
    "pipeline": {"evaluator", "pipeline"} | _EDGE,
    "analysis": {"evaluator", "pipeline", "analysis", "api"} | _EDGE,
    "cli": {"evaluator", "pipeline", "analysis", "cli", "api"} | _EDGE,
}


def test_serving_imports_only_what_the_pipeline_may():
    assert _dse_imports(DSE / "serving.py") <= {"evaluator", "presets", "inputs", "settings"}


def _dse_imports(path: Path) -> set[str]:
    """The first name under dse of every dse import in ``path`` (top level or in functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dse"):
            parts = node.module.split(".")
            out |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("dse.")}
    return out - {"__version__"}


@pytest.mark.parametrize("layer", sorted(BELOW))
def test_arrows_point_down(layer):
    for path in sorted((DSE / layer).glob("*.py")):
        upward = _dse_imports(path) - BELOW[layer]
        assert not upward, f"{path.relative_to(DSE.parent)} imports dse.{sorted(upward)}"


def test_the_evaluator_imports_no_edge_library():
    code = ("import sys, pkgutil, importlib, dse.evaluator as e\n"
            "for m in pkgutil.iter_modules(e.__path__):\n"
            "    importlib.import_module(f'dse.evaluator.{m.name}')\n"
            "import dse.api\n"
            "print(sorted({'ray', 'optuna', 'duckdb', 'pandas'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
