"""`dse <verb> key=value ...`: Hydra override grammar, one verb per pipeline stage."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable

import hydra
from omegaconf import DictConfig, OmegaConf

from dse.presets import CONF_DIR
from dse.schema import register

__all__ = ["main"]

_USAGE = """usage: dse <verb> [key=value ...] [--json]

verbs:
  predict   one chip on one workload scenario: throughput, latency, cost, power
  explain   predict, plus the per-operator table (FLOP, bytes, intensity, time, bound)

examples:
  dse predict chip=h100 workload=llama2-70b scenario.phase=decode scenario.batch=64 system.chips=8
  dse predict chip=a100 workload=gpt2 scenario.phase=decode --json
  dse explain chip=groq-lpu workload=llama2-7b scenario.phase=decode system.chips=64
"""


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True)


def _json_safe(out: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


def _predict(cfg: DictConfig) -> None:
    from dse import api
    from dse.report_text import print_prediction, print_rows

    chip = cfg.chip_file or OmegaConf.to_object(cfg.chip)
    scenario = {k: v for k, v in _plain(cfg.scenario).items() if v is not None}
    scenario.update({k: v for k, v in _plain(cfg.system).items() if v is not None})
    try:
        if cfg.explain:
            out, rows = api.explain(chip, OmegaConf.to_object(cfg.workload), **scenario)
        else:
            out, rows = api.predict(chip, OmegaConf.to_object(cfg.workload), **scenario), None
    except ValueError as err:
        _fail(str(err))
    if cfg.output == "json":
        doc = dict(out, operators=rows) if rows is not None else out
        print(json.dumps(_json_safe(doc), indent=2))
        return
    name = chip if isinstance(chip, str) else chip.name
    title = f"{name} | {cfg.workload.name} | " + ", ".join(f"{k}={v}" for k, v in scenario.items())
    print_prediction(title, out)
    if rows is not None:
        print_rows("operators of the chosen split (per chip; time over all instances)", rows)


_VERBS: dict[str, tuple[str, Callable[[DictConfig], None], list[str]]] = {
    "predict": ("predict", _predict, []),
    "explain": ("predict", _predict, ["explain=true"]),
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_USAGE)
        return
    verb, rest = argv[0], argv[1:]
    if verb not in _VERBS:
        _fail(f"unknown verb {verb!r}; verbs: {', '.join(_VERBS)}")
    config_name, task, extra = _VERBS[verb]
    flags = {"--json": "output=json", "--explain": "explain=true"}
    overrides = [flags.get(a, a) for a in rest] + extra
    register()
    sys.argv = [f"dse {verb}", *overrides]
    hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(task)()


if __name__ == "__main__":
    main()
