"""Hydra and CLI conventions (issue 20, item 4): `--cfg job` in both spellings, shell
completion, `dse <verb> --help` that says what the verb does and lists its keys, `python -m
dse`, and a closed pipe that ends quietly."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from dse.cli.usage import VERBS


def _dse(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse", *args], capture_output=True,
                          text=True, timeout=120, **kw)


@pytest.mark.parametrize("flag", [["--cfg", "job"], ["--cfg=job"]])
def test_cfg_job_prints_the_composed_config_in_both_spellings(flag):
    res = _dse("predict", "chip=a100", *flag, "scenario.batch=8")
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load(res.stdout)
    assert cfg["scenario"]["batch"] == 8 and cfg["chip"]["memory"]["capacity_gb"] == 80


@pytest.mark.parametrize("verb", ["sweep", "rank", "explain"])
def test_verb_help_opens_with_its_job_and_lists_keys_with_defaults(verb):
    res = _dse(verb, "--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"dse {verb}: {VERBS[verb]}")
    assert "powered by Hydra" not in res.stdout
    keys = res.stdout.split("keys (key=default):\n", 1)[1]
    expected = {"sweep": "sweep.samples=200000  # 1..", "rank": "top=20",
                "explain": "scenario.phase=null  # generate | prefill"}[verb]
    assert expected in keys


def test_completion_script_completes_verbs_then_keys_then_presets():
    script = _dse("sweep", "-sc", "install=bash")
    assert script.returncode == 0, script.stderr
    assert script.stdout == _dse("--completion", "bash").stdout
    probe = """eval "$SCRIPT"
complete_at() { COMP_LINE="$1"; read -ra COMP_WORDS <<< "$1"; COMP_CWORD=$2
    COMP_POINT=${#COMP_LINE}; _dse_complete; echo "${COMPREPLY[*]}"; }
complete_at "dse sw" 1
complete_at "dse sweep spa" 2
complete_at "dse sweep space=de" 2
"""
    bin_dir = subprocess.run([sys.executable, "-c", "import sys, os; "
                              "print(os.path.dirname(sys.executable))"],
                             capture_output=True, text=True).stdout.strip()
    res = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=120,
                         env={"SCRIPT": script.stdout, "PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert res.stdout.splitlines() == ["sweep", "space. space=", "space=demo"], res.stderr


@pytest.mark.parametrize("reader", ["head -1", "true"])  # true: closed before any write
def test_help_cut_by_a_closed_pipe_ends_without_a_traceback(reader):
    res = subprocess.run(f"{sys.executable} -m dse explain --help | {reader}", shell=True,
                         capture_output=True, text=True, timeout=60)
    assert res.stdout.startswith("dse explain: ") or reader == "true"
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
