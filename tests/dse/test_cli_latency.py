"""`dse predict` answers in under 1 s (issue 20, item 9): it imports no library of the other
verbs and runs on the config its checks composed. The wall time itself is measured in
benchmarks/cli_latency.py, not here (STYLE.md section 9: speed figures live in benchmarks/)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Libraries only sweeps, searches, queries and reports need; each costs 0.03-2 s to import.
_HEAVY = ("ray", "optuna", "duckdb", "matplotlib", "pandas", "plotly", "pyarrow")

_PROBE = """
import json, sys
from dse.cli import main
main(sys.argv[1:])
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _PROBE.format(heavy=_HEAVY), *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("output", ["json", "text"])
def test_predict_imports_none_of_the_other_verbs_libraries(output):
    done = _run("predict", "chip=h100", "workload=llama3-8b", f"output={output}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []
    # The answer is the model's: an H100 fits Llama-3-8B (16 GB of bf16 weights in 80 GB).
    if output == "json":
        assert json.loads(done.stdout)["fits"] is True
    else:
        assert "fits" in done.stdout and "True" in done.stdout


def test_a_sweeping_override_still_goes_to_hydra_without_multirun():
    # Hydra refuses `key=a,b` without --multirun; the direct path must not run the first value.
    done = _run("predict", "chip=h100", "workload=llama3-8b", "scenario.batch=1,8", "--json")
    assert done.returncode != 0
    assert "multirun" in done.stderr
    assert done.stdout == ""
