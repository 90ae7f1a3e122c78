"""What every verb module of the CLI shares: the consoles, the ``--json`` option and its
printer, the ``--out`` / ``--force`` options, and the settings of this run (``--home``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.models import OptionInfo

from safeguard.config import Settings, load_settings

#: standard output: what a verb reports
out = Console(highlight=False, soft_wrap=True)
#: standard error: progress, warnings, the one-line error of a failure
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def out_option(help: str = "The file to write.") -> OptionInfo:
    """``--out PATH``: the file a verb writes."""
    option: OptionInfo = typer.Option("--out", help=help)
    return option


def force_option(help: str = "Overwrite an existing file.") -> OptionInfo:
    """``--force``: overwrite the ``--out`` file."""
    option: OptionInfo = typer.Option("--force", help=help)
    return option


def print_json(value: Any) -> None:
    """One JSON document on one line of standard output (the ``--json`` contract)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, sort_keys=False) + "\n")


def one_of(words: Sequence[str]) -> str:
    """``a, b or c``: a choice, as help texts list it."""
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} or {words[-1]}"


class _Run:
    """This run's settings: set from ``--home`` by the app's callback, else loaded once."""

    settings: Settings | None = None


def set_settings(settings: Settings) -> None:
    _Run.settings = settings


def get_settings() -> Settings:
    """The settings of this run (``--home``, ``SAFEGUARD_HOME``, config.toml)."""
    if _Run.settings is None:
        _Run.settings = load_settings()
    return _Run.settings
