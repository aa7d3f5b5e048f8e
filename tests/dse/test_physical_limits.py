"""Physical limits no input can get round (issue 18, item 2), and compiled kernels that never
run a stale layout (item 6). Each test names the adversarial case it stops."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dse.api import predict
from dse.evaluator import model
from dse.presets import load_chip

ROOT = Path(__file__).resolve().parents[2]


# -- item 6: the numba cache is keyed on the layout -------------------------------------------

# Weights per chip of Llama-3-8B on an H100 from a compiled kernel (execution.need reads the
# C_* and S_* columns by index), printed as JSON.
_NEED_SCRIPT = """
import json, dse.evaluator.columns as cols
from dse.api import _prepare
from dse.evaluator.efficiency import DEFAULT
from dse.evaluator.execution import need
from dse.evaluator.model import _derived
chips, plan, sc, system = _prepare("h100", "llama3-8b", dict(phase="decode", batch=1))
chip = cols.chip_columns(chips, _derived(chips), sc, DEFAULT)[:, 0].copy()
vec = cols.scenario_vector(plan, sc, system, DEFAULT)
print(json.dumps(dict(file=cols.__file__, weights=need(chip, vec, 1, 1)[0])))
"""


def _run_copy(copy: Path) -> tuple[dict, str]:
    env = {**os.environ, "PYTHONPATH": str(copy), "NUMBA_DEBUG_CACHE": "1"}
    env.pop("NUMBA_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", _NEED_SCRIPT], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]), done.stdout


def test_relabelled_column_recompiles_the_kernels(tmp_path):
    # The adversarial tester swapped two column indices in columns.py and got a prediction
    # 8.4 % off until the cache was deleted: numba keys a kernel on its own file only.
    for part in ("dse", "hwspace", "workloads", "conf"):
        shutil.copytree(ROOT / part, tmp_path / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    first, _ = _run_copy(tmp_path)
    assert first["file"].startswith(str(tmp_path))
    columns = tmp_path / "dse" / "evaluator" / "columns.py"
    text = columns.read_text()
    assert "(C_INV_PEAK," in text and "\n C_WEIGHT_BYTES," in text
    # Swap the first chip column with the one ``need`` reads: same model, new layout.
    columns.write_text(text.replace("(C_INV_PEAK,", "(C_SWAP,")
                       .replace("\n C_WEIGHT_BYTES,", "\n C_INV_PEAK,")
                       .replace("(C_SWAP,", "(C_WEIGHT_BYTES,"))
    second, log = _run_copy(tmp_path)
    assert second["weights"] == pytest.approx(first["weights"], rel=1e-12)
    assert "data saved" in log  # recompiled, not loaded
    third, log = _run_copy(tmp_path)
    assert third["weights"] == pytest.approx(first["weights"], rel=1e-12)
    assert "data loaded" in log and "data saved" not in log  # an unchanged layout stays warm
