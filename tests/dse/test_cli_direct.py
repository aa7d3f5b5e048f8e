"""`dse predict` composes plain command lines without Hydra (dse.cli.direct, issue 20): the
config must be the one Hydra composes, value for value and type for type, and every line it
does not take must go to Hydra, which words the errors."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from dse.cli.common import json_safe
from dse.cli.direct import NOT_PLAIN, compose_plain, plain_value
from dse.presets import preset_names
from tests.test_readme_examples import README, readme_commands

ROOT = Path(__file__).resolve().parents[2]


def _readme_predict_lines() -> list[tuple[str, list[str]]]:
    """(verb, overrides) of README.md's `dse predict` / `dse explain` lines, --json mapped as
    the CLI maps it."""
    flags = {"--json": "output=json", "--explain": "explain=true"}
    lines = [c[1:] for c in readme_commands(README.read_text()) if c[1] in ("predict", "explain")]
    return [(v, [flags.get(a, a) for a in rest] + (["explain=true"] if v == "explain" else []))
            for v, *rest in lines]


_LINES = [
    *_readme_predict_lines(),
    *(("predict", [f"chip={c}", "workload=llama3-8b"]) for c in preset_names("chip")),
    *(("predict", [f"workload={w}", "scenario.batch=8"]) for w in preset_names("workload")),
    *(("predict", [f"economics={e}", "output=json"]) for e in preset_names("economics")),
    ("predict", ["chip.clock_ghz=2", "chip.memory.capacity_gb=96", "system.ttft_slo_s=2"]),
    ("predict", ["scenario.draft=0.1", "scenario.acceptance=.8", "system.max_num_seqs=NULL"]),
]


def _shown(cfg) -> str:
    """The config as JSON in its own key order: 2 and 2.0, true and "true" differ."""
    return json.dumps(OmegaConf.to_container(cfg, resolve=True))


@pytest.mark.parametrize("verb, overrides", _LINES, ids=lambda x: x if isinstance(x, str)
                         else " ".join(x))
def test_the_plain_config_is_the_one_hydra_composes(verb, overrides, compose_conf):
    plain = compose_plain(verb, "predict", overrides)
    if plain is None:  # a README line that names a file made before it: Hydra's path
        assert any(o.startswith(("chip_file=", "candidate=")) for o in overrides), overrides
        return
    hydra = compose_conf("predict", overrides)
    assert _shown(plain) == _shown(hydra)
    assert OmegaConf.to_object(plain.workload) == OmegaConf.to_object(hydra.workload)


@pytest.mark.parametrize("text", ["64", "-3", "+3", "0", "0.8", ".5", "-0.25", "max", "fp8",
                                  "llama2-7b", "my_chip.yaml", "./a/b.yaml", "8k", "x.5",
                                  "00.5", "True", "false", "null", "NULL", "1e3", "1_000",
                                  "1.", "inf", "-nan", "a,b", "'q'", "${oc.env:HOME}", "",
                                  "[1,2]", "a b"])
def test_a_value_is_read_as_hydra_reads_it_or_left_to_hydra(text):
    value = plain_value(text)
    if value is NOT_PLAIN:
        return
    hydra = OverridesParser.create().parse_override(f"key={text}").value()
    assert (type(value), value) == (type(hydra), hydra)


@pytest.mark.parametrize("line", [
    "scenario.batch=1,8",                # a sweep: Hydra refuses it without --multirun
    "workload=mixtral-8x7b workload.top_k=9",  # out of range: the checks' error line
    "chip=nosuch",                       # no such preset
    "chip=../predict",                   # a path out of the group
    "scenario.nosuch=1",                 # no such key
    "+scenario.nosuch=1",                # Hydra's append
    "explain=1",                         # a switch given a number
    "scenario.weights=8",                # OmegaConf would make it the text '8'
    "scenario.spec_tokens=4.0",          # an integer given as a float
    "scenario.batch=1 scenario.batch=2",  # a key twice
    "system.chips=1e3",                  # Hydra's exponent float
    "scenario.trace=${oc.env:HOME}",     # an interpolation
])
def test_what_the_plain_path_does_not_take_goes_to_hydra(line):
    assert compose_plain("predict", "predict", shlex.split(line)) is None


_BLAS_CALLS = re.compile(r"np\.(dot|vdot|inner|matmul|linalg)\b|\w\s@\s\w")


def test_no_kernel_calls_a_blas():
    # dse.cli.predict tells numba there is no BLAS (it spares importing scipy.linalg): that
    # holds while no compiled code calls one. A kernel with np.dot would fail to compile there.
    sources = [*sorted((ROOT / "dse" / "evaluator").glob("*.py")), ROOT / "dse" / "serving.py"]
    calls = [f"{p.name}:{n}" for p in sources
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if _BLAS_CALLS.search(line.split("#")[0])]
    assert calls == []


def test_plain_predict_imports_neither_hydra_nor_scipy_linalg():
    probe = ("import json, sys; from dse.cli import main; main(sys.argv[1:]); "
             "print(json.dumps(sorted(m for m in ('hydra', 'scipy.linalg') if m in sys.modules)),"
             " file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, "predict", "chip=h100",
                           "workload=llama3-8b", "--json"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []
    # and the answer is the one api.predict gives in a process that has both
    from dse import api

    assert json.loads(done.stdout) == json.loads(json.dumps(json_safe(
        api.predict("h100", "llama3-8b"))))
