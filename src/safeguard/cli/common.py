"""What every verb module of the CLI shares: the consoles, the ``--json`` option and its
printer, the ``--out`` / ``--force`` options, and the settings of this run (``--home``).

Text output shows names, paths, errors and metadata from evidence as they are: both consoles
make every string :func:`safeguard.text.visible` before Rich renders it (an ESC, CR, LF, BEL
or U+202E in a file name is printed as ``\\x1b``, ``\\r``, ``\\n``, ``\\x07``, ``\\u202e``, never
acted on) and read no markup or emoji codes unless a print asks for markup; ``--json`` writes
the same characters as JSON escapes. A verb that writes past the consoles calls
:func:`~safeguard.text.visible` itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from typer.models import OptionInfo

from safeguard.config import Settings, load_settings
from safeguard.text import visible

if TYPE_CHECKING:
    from safeguard.audit.checkpoints import Mark

#: columns of text output that is not a terminal's: wide enough never to cut a table's cell
UNCUT_WIDTH = 10_000


class _Console(Console):
    """A Rich console for text from evidence: every string is made :func:`visible` before
    Rich reads it (Rich would act on ESC and LF and silently drop CR and BEL), table cells
    included; markup and emoji codes are off unless a print asks for markup, so a name like
    ``[bold]x`` or ``:warning:`` is printed as it is. Into a pipe or a file, tables are as
    wide as their contents, never cut at 80 columns with an ellipsis."""

    def __init__(self, **options: Any) -> None:
        super().__init__(highlight=False, soft_wrap=True, markup=False, emoji=False, **options)
        if not self.is_terminal:
            self.width = UNCUT_WIDTH

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(visible(text), **options)


#: standard output: what a verb reports
out = _Console()
#: standard error: progress, warnings, the one-line error of a failure
err = _Console(stderr=True)

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
    """One JSON document on one line of standard output (the ``--json`` contract). JSON
    escapes only C0 controls: every other character :func:`visible` escapes (DEL, C1
    controls, bidi overrides, separators) is written as its ``\\uXXXX`` escape too, the same
    string to a JSON reader, nothing a terminal acts on."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=False)
    if not text.isprintable():
        text = "".join(char if char == " " or visible(char) == char
                       else json.dumps(char)[1:-1] for char in text)
    sys.stdout.write(text + "\n")


def forget_interrupt() -> None:
    """Called once a Ctrl-C is handled (its line printed, exit 130 on its way). CPython
    marks a KeyboardInterrupt that went through an ``eval()`` or ``exec()`` of a string
    as unhandled even when it was caught (modules run one while they are imported, to
    define a dataclass or a named tuple, so an early Ctrl-C often lands there), and at exit
    it then kills itself with SIGINT instead of exiting 130. The next such call clears the
    mark: this is one, of a constant."""
    eval("None")


def rests_on(checkpoint: Mark | None) -> str:
    """The line a report or export prints under its SHA256: the signed checkpoint of the
    audit log it rests on, or that none signs it."""
    if checkpoint is None:
        return "rests on no signed checkpoint: no lab key signs this case's audit log"
    return f"rests on signed checkpoint: {checkpoint.describe()}"


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
