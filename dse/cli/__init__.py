"""`dse <verb> key=value ...`: Hydra override grammar, one module per verb."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import hydra
from omegaconf import DictConfig

from dse.cli import calibrate, predict, query, rank, report, search, sweep, validate
from dse.cli.checks import check_command
from dse.cli.common import fail, guarded
from dse.cli.schema import register
from dse.cli.usage import completion_script, overview, verb_help
from dse.pipeline.runs import claim_run_folder
from dse.presets import CONF_DIR

__all__ = ["main"]



_VERBS: dict[str, tuple[str, Callable[[DictConfig], None], list[str]]] = {
    "predict": ("predict", predict.run, []),
    "explain": ("predict", predict.run, ["explain=true"]),
    "sweep": ("sweep", sweep.run, []),
    "search": ("search", search.run, []),
    "query": ("query", query.run, []),
    "rank": ("rank", rank.run, []),
    "report": ("report", report.run, []),
    "validate": ("validate", validate.run, []),
    "calibrate": ("calibrate", calibrate.run, []),
}


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
        print(overview())
        return
    if argv[0] == "--completion":
        _print_completion(argv[1] if len(argv) > 1 else "bash")
        return
    verb, rest = argv[0], _join_flag_values(argv[1:])
    rest = query.take_sql(rest) if verb == "query" else rest
    if verb not in _VERBS:
        fail(f"unknown verb {verb!r}; verbs: {', '.join(_VERBS)}")
    config_name, task, extra = _VERBS[verb]
    if {"-h", "--help"} & set(rest):
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
    register()
    try:
        check_command(verb, config_name, overrides)
        overrides = claim_run_folder(verb, overrides)
    except ValueError as err:
        fail(str(err).splitlines()[0])
    except (TypeError, KeyError, AttributeError, RecursionError) as err:
        # A check that met input of a shape no schema foresaw: still one line, no traceback.
        fail(f"input not understood ({type(err).__name__}: {str(err)[:200]})")
    # Hydra's own flags (--multirun, --cfg job, ...) go first: argparse cannot read
    # overrides on both sides of them.
    hydra_flags = [a for a in overrides if a.startswith("-")]
    sys.argv = [f"dse {verb}", *hydra_flags, *[a for a in overrides if not a.startswith("-")]]
    app = hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")
    app(guarded(task))()


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
    register()
    words = os.environ.get("COMP_LINE", "dse").split(" ", 2)
    os.environ["COMP_LINE"] = " ".join([words[0], *words[2:]])
    sys.argv = ["dse", "--shell-completion", "query=bash"]
    app = hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")
    app(lambda cfg: None)()
