"""What every verb shares: one-line failures, a guard around each verb, plain configs, run
folders (new or resumed)."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

__all__ = ["fail", "guarded", "plain", "json_safe", "run_folder", "verbatim", "announce"]


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def guarded(task: Callable[[DictConfig], None]) -> Callable[[DictConfig], None]:
    """``task`` with bad input (a ValueError, a file it cannot read or write, a config key
    that is not there) turned into one line and exit 2 instead of Hydra's traceback."""

    def run(cfg: DictConfig) -> None:
        try:
            task(cfg)
        except ValueError as err:
            fail(str(err).splitlines()[0])
        except OSError as err:
            fail(f"{err.filename or ''}: {err.strerror or err}".lstrip(": "))
        except OmegaConfBaseException as err:
            from dse.cli.checks import one_line  # imports Hydra: `dse predict` runs without

            fail(one_line(err))

    return run


def announce(runs: list[Path]) -> None:
    """The one line (on stderr: stdout stays the verb's data) naming the runs a reading verb
    read, their status and, for a run that is not whole, rows present of those expected."""
    from dse.pipeline.runs import run_line

    print(run_line(runs), file=sys.stderr)


def plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True)


def json_safe(value):
    """``value`` with every NaN or infinite float, at any depth of dicts and lists, as None:
    JSON has no NaN or Infinity (json.dumps would write them, and strict parsers refuse)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_folder(cfg: DictConfig, verb: str) -> tuple[Path, DictConfig]:
    """(run folder, the config the run is made of): a new Hydra run folder and this config,
    or, with resume=<folder>, that folder and the config it saved."""
    from hydra.core.hydra_config import HydraConfig

    from dse.pipeline.runs import saved_config

    if not cfg.resume:
        return Path(HydraConfig.get().runtime.output_dir), cfg
    run_dir = Path(cfg.resume)
    try:
        saved_config(verb, run_dir)
    except ValueError as err:
        fail(str(err))
    return run_dir, OmegaConf.load(run_dir / ".hydra" / "config.yaml")


def verbatim(cfg: DictConfig, key: str) -> object:
    """``cfg[key]`` as the user typed it: a ``${...}`` in user text (SQL, a folder) is text,
    never an interpolation that reads the environment or other settings."""
    return OmegaConf.to_container(cfg, resolve=False)[key]
