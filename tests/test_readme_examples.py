"""Every example a user is shown works: the `dse` commands of README.md's bash blocks and its
Python block, then the examples of `dse --help`, each list in order on a fresh folder, each
exiting 0. Sizes are cut by appended overrides (fewer samples, trials and measured rows) and
the placeholder folders the README names are the runs made before them; the sweeps and
searches share one loopback Ray cluster started by the recipe of docs/cluster.md."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from dse.analysis.validate import DATA, load_cases
from dse.cli import main
from dse.cli.usage import EXAMPLES

README = Path(__file__).resolve().parents[1] / "README.md"
# docs/cluster.md: the node IP resolves to loopback (so every Ray process binds 127.0.0.1)
# and a token-free cluster, as nothing but this machine can reach it.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}
_RUN_FOLDER = re.compile(r"^(outputs|multirun)/\S*?_(sweep|search)(?:_(\w+))?$")
# The local_llm sweep keeps enough candidates for the README's `explain candidate=31561`.
_SAMPLES = {"local_llm": 32_000}
_SMALL_SAMPLES, _TRIALS, _MORE_TRIALS = 2_000, 40, 60


def readme_commands(text: str) -> list[list[str]]:
    """The `dse` command lines of ``text``'s bash blocks, in order, as argv lists: a
    backslash continues a line, a quote left open continues it too (multi-line SQL),
    comments go, and only the `dse` commands of an `a && b` chain are kept (pip and
    pytest are the set-up, not examples)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        pending = ""
        for line in block.replace("\\\n", " ").splitlines():
            pending += line + "\n"
            try:
                words = shlex.split(pending, comments=True)
            except ValueError:  # a quote still open: the command goes on
                continue
            pending = ""
            commands += [c for c in _chain(words) if c and c[0] == "dse"]
    return commands


def _chain(words: list[str]) -> list[list[str]]:
    """The commands of ``a && b && c``."""
    out: list[list[str]] = [[]]
    for w in words:
        if w == "&&":
            out.append([])
        else:
            out[-1].append(w)
    return out


def help_commands() -> list[list[str]]:
    return [shlex.split(e) for e in EXAMPLES]


def _newest(cwd: Path, pattern: str) -> str:
    """The newest folder (by its time-stamped name) that ``pattern`` globs in ``cwd``."""
    found = sorted(cwd.glob(pattern), key=lambda p: p.name)
    assert found, f"no run folder {pattern} made before this example"
    return str(found[-1].relative_to(cwd))


def _real_folder(value: str, cwd: Path) -> str:
    """A run folder the README names (dates of its author's runs) as the run made here."""
    m = _RUN_FOLDER.match(value)
    if not m:
        return value
    root, kind, niche = m.groups()
    return _newest(cwd, f"{root}/*/*_{kind}" + (f"_{niche}" if niche else ""))


def cut_down(argv: list[str], cwd: Path, address: str, small_csv: Path) -> list[str]:
    """``argv`` as the test runs it: placeholders filled, then small sizes appended."""
    verb = argv[1]
    words = [w for w in argv[2:] if w != "..."]
    words = [f"{k}={_real_folder(v, cwd)}" if k in ("resume", "run") else w
             for w in words for k, _, v in [w.partition("=")]]
    keys = {w.split("=", 1)[0] for w in words}
    resumed = "resume" in keys
    words = [w for w in words if not w.startswith(("sweep.samples=", "search.trials="))]
    extra = []
    if verb == "sweep" and not resumed:
        niche = next((w.split("=", 1)[1] for w in words if w.startswith("niche=")),
                     "local_llm")
        extra.append(f"sweep.samples={_SAMPLES.get(niche, _SMALL_SAMPLES)}")
    if verb == "search":
        extra += [f"search.trials={_MORE_TRIALS if resumed else _TRIALS}",
                  "search.population=20"]
    if verb in ("sweep", "search") and not resumed and "ray.address" not in keys:
        extra.append(f"ray.address={address}")
    if verb in ("validate", "calibrate"):
        extra.append(f"data={small_csv}")
    return [verb, *words, *extra]


def _small_measured(path: Path) -> Path:
    """data/measured_public.csv cut to 4 mapped rows of each of 3 chips of 3 vendors, so a
    cross-validation fits 3 folds of 8 rows (seconds, not the full data's minutes)."""
    cases, _ = load_cases(DATA)
    picked: dict[str, list[str]] = {}
    for c in cases:
        if c.vendor not in {v for v, _ in picked.values()} and len(picked) < 3:
            picked[c.chip] = (c.vendor, [])
        if c.chip in picked and len(picked[c.chip][1]) < 4:
            picked[c.chip][1].append(c.row_id)
    ids = {i for _, rows in picked.values() for i in rows}
    with open(DATA, newline="") as src, open(path, "w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(r for r in reader if r["id"] in ids)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _head_up(address: str, env: dict) -> bool:
    res = subprocess.run(["ray", "status", f"--address={address}"], capture_output=True,
                         text=True, timeout=60, env=env)
    return res.returncode == 0


@pytest.fixture(scope="module")
def loopback_cluster():
    """(address, env) of a one-node Ray cluster on 127.0.0.1 (docs/cluster.md's recipe),
    stopped by its process id afterwards: never `ray stop`, which ends every Ray of the
    machine."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    env = {**os.environ, **LOOPBACK_ENV, "RAY_ADDRESS": address}
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must be short
    head = subprocess.Popen(["ray", "start", "--head", "--node-ip-address=127.0.0.1",
                             f"--port={port}", "--include-dashboard=false",
                             "--disable-usage-stats", f"--temp-dir={temp}", "--block"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 120
        while not _head_up(address, env) and time.time() < deadline:
            time.sleep(1)
        assert _head_up(address, env), "the loopback Ray cluster did not come up"
        yield address, env
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops its node on SIGTERM
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        shutil.rmtree(temp, ignore_errors=True)  # the session's logs and sockets


def _run(line: list[str], cwd: Path, env: dict) -> tuple[int, str]:
    """(exit status, stderr) of `dse <line>` in ``cwd``: sweeps and searches in their own
    process, as a user runs them (each holds its run folder's lock for its lifetime), the
    reading verbs in this one through the same ``dse.cli.main`` (seconds of imports saved
    per command)."""
    if line[0] in ("sweep", "search"):
        res = subprocess.run([sys.executable, "-m", "dse", *line], cwd=cwd, env=env,
                             capture_output=True, text=True, timeout=300)
        return res.returncode, res.stderr
    err = io.StringIO()
    here = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            main(line)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        os.chdir(here)
    return code, err.getvalue()


def _run_all(commands: list[list[str]], cwd: Path, address: str, env: dict) -> None:
    small = _small_measured(cwd / "measured_small.csv")
    for argv in commands:
        line = cut_down(argv, cwd, address, small)
        code, stderr = _run(line, cwd, env)
        assert code == 0, f"{shlex.join(argv)}\n{stderr[-2000:]}"
        assert "Traceback" not in stderr, shlex.join(argv)


def test_readme_parsing_keeps_multiline_sql_and_drops_setup():
    commands = readme_commands(README.read_text())
    sql = next(c for c in commands if c[1] == "query")
    assert sql[2].startswith("SELECT memory_type") and "GROUP BY memory_type" in sql[2]
    assert all(c[0] == "dse" for c in commands) and len(commands) >= 30
    assert not any("#" in w for c in commands for w in c if not w.startswith("SELECT"))


def test_help_lists_the_examples_this_test_runs():
    shown = subprocess.run([sys.executable, "-m", "dse", "--help"], capture_output=True,
                           text=True, check=True).stdout
    assert all(e in shown for e in EXAMPLES)


# NOTE: slow: 12 sweeps and searches (each a Ray job whose workers import the evaluator)
# take 2-4 minutes however small; the --help examples below stay in CI (4 Ray jobs).
@pytest.mark.slow
def test_every_readme_example_runs_in_order(tmp_path, loopback_cluster, monkeypatch):
    address, env = loopback_cluster
    (tmp_path / "my_chip.yaml").write_text(  # the README's `chip_file=my_chip.yaml`
        "name: mine\nprocess_node: n4\nmacs: 65536\nclock_ghz: 1.5\nsram_mb: 64\n"
        "memory: {type: lpddr5x, stacks: 8}\n")
    _run_all(readme_commands(README.read_text()), tmp_path, address, env)
    python = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    for block in python:
        exec(compile(block, "README.md", "exec"), {})


def test_every_help_example_runs_in_order(tmp_path, loopback_cluster):
    address, env = loopback_cluster
    _run_all(help_commands(), tmp_path, address, env)


def _fake_run(folder: Path, niche: str, scenarios: list[str], started: str,
              candidates: int) -> Path:
    """A run folder as sweeps and searches leave it: manifest, saved config, one chunk."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    (folder / ".hydra").mkdir(parents=True)
    (folder / "results").mkdir()
    (folder / "manifest.json").write_text(json.dumps(dict(status="complete", started=started)))
    (folder / ".hydra" / "config.yaml").write_text(
        f"sweep: {{}}\nniche:\n  name: {niche}\n  scenarios:\n"
        + "".join(f"    {s}: {{}}\n" for s in scenarios))
    ids = list(range(candidates))
    pq.write_table(pa.table(dict(candidate_id=ids, niche=[niche] * candidates,
                                 scenario=[scenarios[0]] * candidates,
                                 fits=[True] * candidates, feasible=[True] * candidates)),
                   folder / "results" / "chunk-000000.parquet")
    return folder


def test_reading_verbs_find_the_run_of_their_niche_whatever_ran_after_it(tmp_path):
    from dse.analysis.query import newest_run

    root = tmp_path / "outputs"
    local = _fake_run(root / "d" / "a_sweep_local_llm", "local_llm",
                      ["llama3-8b-int4", "llama3-70b-int4"], "2026-01-01T10:00:00+00:00", 40)
    search = _fake_run(root / "d" / "c_search_local_llm", "local_llm",
                       ["llama3-8b-int4", "llama3-70b-int4"], "2026-01-01T11:00:00+00:00", 5)
    hyper = _fake_run(root / "d" / "b_sweep_hyperscale", "hyperscale", ["llama3-70b-fp8"],
                      "2026-01-01T12:00:00+00:00", 40)
    assert newest_run(root) == hyper
    assert newest_run(root, niche="local_llm") == search
    # The README's `dse explain candidate=<id> scenario_name=...`: the run that holds the id.
    assert newest_run(root, scenario="llama3-70b-int4", candidate=30) == local
    with pytest.raises(ValueError, match=r"has candidate 99 with scenario 'llama3-70b-int4'; "
                                         r"make one with `dse sweep niche=local_llm "
                                         r"space=local_llm`"):
        newest_run(root, scenario="llama3-70b-int4", candidate=99)
    with pytest.raises(ValueError, match=r"no run of niche 'edge_vision' .* make one with "
                                         r"`dse sweep niche=edge_vision space=edge_vision`"):
        newest_run(root, niche="edge_vision")
    code, err = _run(["rank", "niche=training"], tmp_path, dict(os.environ))
    assert code == 2 and err.strip().endswith("make one with `dse sweep niche=training`")
