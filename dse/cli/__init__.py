"""`dse <verb> key=value ...`: Hydra override grammar, one module per verb."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from dse.cli.common import fail, guarded

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = ["main"]


# verb -> (its config and its module under dse.cli, overrides it adds). A verb's module is
# imported only when that verb runs: Ray, Optuna, DuckDB and matplotlib cost seconds to
# import, and `dse predict` answers in under 1 s (issue 20).
_VERBS: dict[str, tuple[str, list[str]]] = {
    "predict": ("predict", []),
    "explain": ("predict", ["explain=true"]),
    "sweep": ("sweep", []),
    "search": ("search", []),
    "query": ("query", []),
    "rank": ("rank", []),
    "report": ("report", []),
    "validate": ("validate", []),
    "calibrate": ("calibrate", []),
}
# Verbs that run on the config the checks composed, without hydra.main: they write no run
# folder and read no HydraConfig, and a second composition costs a fifth of their time.
_DIRECT = ("predict", "explain")


def _task(config_name: str) -> Callable[[DictConfig], None]:
    """The ``run`` of verb module dse.cli.<config_name>, imported now."""
    return importlib.import_module(f"dse.cli.{config_name}").run


# Hydra's own flags (argparse would answer anything else with its multi-line usage).
_HYDRA_FLAGS = {"--multirun", "-m", "--cfg", "-c", "--resolve", "--package", "-p", "--info",
                "--hydra-help", "--version"}
_COMPLETION = ("-sc", "--shell-completion")


_VALUED = {"--cfg": "--cfg", "-c": "--cfg", "--package": "--package", "-p": "--package",
           "--info": "--info"}


def _join_flag_values(args: list[str]) -> list[str]:
    """``--cfg job`` as ``--cfg=job``: its value is no override."""
    out: list[str] = []
    for a in args:
        if out and out[-1] in _VALUED and "=" not in a and not a.startswith("-"):
            out[-1] = f"{_VALUED[out[-1]]}={a}"
        else:
            out.append(a)
    return out


def main(argv: list[str] | None = None) -> None:
    """`dse <verb> key=value ...`; output cut by a closed pipe (`dse --help | head`) ends
    quietly, as a Unix filter does."""
    try:
        _main(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's recipe (library/signal.html#note-on-sigpipe): point stdout at devnull so
        # that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def _main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help", "help"):
        from dse.cli.usage import overview

        print(overview())
        return
    if argv[0] == "--completion":
        _print_completion(argv[1] if len(argv) > 1 else "bash")
        return
    verb, rest = argv[0], _join_flag_values(argv[1:])
    if verb == "query":
        from dse.cli.query import take_sql

        rest = take_sql(rest)
    if verb not in _VERBS:
        fail(f"unknown verb {verb!r}; verbs: {', '.join(_VERBS)}")
    config_name, extra = _VERBS[verb]
    if {"-h", "--help"} & set(rest):
        from dse.cli.usage import verb_help

        print(verb_help(verb, config_name, extra))
        return
    completion = _completion_request(rest)
    if completion is not None:
        _shell_completion(verb, config_name, completion)
        return
    flags = {"--json": "output=json", "--explain": "explain=true"}
    unknown = [a for a in rest if a.startswith("-") and a not in flags
               and a.split("=", 1)[0] not in _HYDRA_FLAGS]
    if unknown:
        fail(f"{unknown[0]}: unknown flag; allowed: {', '.join(flags)}, --multirun, --cfg job, "
             f"--help, -sc install=bash")
    overrides = [flags.get(a, a) for a in rest] + extra
    resume = [a.split("=", 1)[1] for a in rest if a.startswith("resume=")]
    if verb in ("sweep", "search") and resume and resume[0] not in ("", "null"):
        # Finish in the original folder; keep its saved config as it was.
        overrides += [f"hydra.run.dir={resume[0]}", "hydra.output_subdir=null"]
    try:
        cfg = _composed(verb, config_name, overrides)
        overrides = _claim_run_folder(verb, overrides)
    except ValueError as err:
        fail(str(err).splitlines()[0])
    except (TypeError, KeyError, AttributeError, RecursionError) as err:
        # A check that met input of a shape no schema foresaw: still one line, no traceback.
        fail(f"input not understood ({type(err).__name__}: {str(err)[:200]})")
    # Hydra's own flags (--multirun, --cfg job, ...) go first: argparse cannot read
    # overrides on both sides of them.
    hydra_flags = [a for a in overrides if a.startswith("-")]
    task = guarded(_task(config_name))
    if _runs_direct(verb, cfg, overrides):
        task(cfg)
        return
    sys.argv = [f"dse {verb}", *hydra_flags, *[a for a in overrides if not a.startswith("-")]]
    _hydra_app(config_name)(task)()


def _composed(verb: str, config_name: str, overrides: list[str]) -> DictConfig | None:
    """The checked config of ``verb`` (dse.cli.checks.check_command); composed without
    Hydra where the line is plain (dse.cli.direct: predict answers in under 1 s, issue 20)."""
    if verb in _DIRECT and not any(o.startswith(("-", "hydra.")) for o in overrides):
        from dse.cli.direct import compose_plain

        cfg = compose_plain(verb, config_name, overrides)
        if cfg is not None:
            return cfg
    from dse.cli.checks import check_command
    from dse.cli.schema import register

    register()
    return check_command(verb, config_name, overrides)


def _claim_run_folder(verb: str, overrides: list[str]) -> list[str]:
    """dse.pipeline.runs.claim_run_folder; a verb of _DIRECT writes no run folder, and skips
    importing the run store (pyarrow)."""
    if verb in _DIRECT:
        return overrides
    from dse.pipeline.runs import claim_run_folder

    return claim_run_folder(verb, overrides)


def _runs_direct(verb: str, cfg: DictConfig | None, overrides: list[str]) -> bool:
    """Whether ``verb`` runs on ``cfg`` as composed: not where an override sweeps (no
    config), nor where a Hydra flag or a ``hydra.*`` setting asks for Hydra's own run."""
    return verb in _DIRECT and cfg is not None and not any(
        o.startswith(("-", "hydra.")) for o in overrides)


def _hydra_app(config_name: str):
    """hydra.main over conf/<config_name>.yaml."""
    import hydra

    from dse.presets import CONF_DIR

    return hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")


def _completion_request(args: list[str]) -> str | None:
    """The value of ``-sc``/``--shell-completion`` (``install=bash``, ``query=bash``, ...)."""
    for i, a in enumerate(args):
        if a in _COMPLETION:
            return args[i + 1] if i + 1 < len(args) else "install=bash"
        if a.startswith(_COMPLETION[1] + "="):
            return a.split("=", 1)[1]
    return None


def _print_completion(shell: str, uninstall: bool = False) -> None:
    """The completion script for ``shell`` (or the line that removes it)."""
    if uninstall:
        print("complete -r dse")
        return
    from dse.cli.usage import completion_script

    try:
        print(completion_script(shell), end="")
    except ValueError as err:
        fail(str(err))


def _shell_completion(verb: str, config_name: str, request: str) -> None:
    """``-sc install=bash`` prints dse's script; ``-sc query=bash`` (what the script runs)
    is Hydra's completion of ``verb``'s config, on the line without the verb: Hydra reads
    only ``<app> key=value ...``."""
    if not request.startswith("query="):
        _print_completion(request.split("=", 1)[-1], request.startswith("un"))
        return
    from dse.cli.schema import register

    register()
    words = os.environ.get("COMP_LINE", "dse").split(" ", 2)
    os.environ["COMP_LINE"] = " ".join([words[0], *words[2:]])
    sys.argv = ["dse", "--shell-completion", "query=bash"]
    _hydra_app(config_name)(lambda cfg: None)()
