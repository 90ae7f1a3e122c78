"""``safeguard links CASE``: what links a case to the lab's other cases; ``safeguard index
rebuild`` and ``index show``: the lab index behind it (docs/links.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from safeguard.cli.common import JsonOpt, err, get_settings, out, print_json

if TYPE_CHECKING:
    from safeguard.intel.links import CaseLinks
    from safeguard.store.cases import Case

index_app = typer.Typer(help="The lab index behind 'safeguard links' (docs/links.md).",
                        no_args_is_help=True)

#: links of one kind listed per case in text (--json lists all)
TEXT_LINKS = 20


def update_index(case: Case, series: bool = True) -> None:
    """Bring ``case``'s rows of the lab index up to date after a scan or a match (``series``:
    :meth:`~safeguard.intel.index.LabIndex.update_case`'s). A failure
    is a warning on stderr, never the command's failure (the scan or match is done and
    recorded; ``safeguard index rebuild`` catches up)."""
    from safeguard.errors import SafeguardError
    from safeguard.intel.index import LabIndex

    index = LabIndex(get_settings())
    try:
        index.update_case(case, series)
    except SafeguardError as exc:
        err.print(f"warning: the lab index was not updated: {exc} (run safeguard index "
                  "rebuild)", markup=False)
    finally:
        index.dispose()


@index_app.command("rebuild")
def index_rebuild(as_json: JsonOpt = False) -> None:
    """Index every case of this home again and drop the cases that no longer exist."""
    from safeguard.intel.index import LabIndex

    index = LabIndex(get_settings())
    try:
        done = index.rebuild(progress=None if as_json else
                             lambda name: err.print(f"indexing {name}", markup=False))
    finally:
        index.dispose()
    if as_json:
        print_json(done.as_dict())
        return
    for counts in done.indexed:
        out.print(f"{counts.case}: {counts.items} items ({counts.new_items} new), "
                  f"{counts.series} series, {counts.cameras} cameras, {counts.models} models, "
                  f"{counts.training_sets} training sets, {counts.prompts} prompts",
                  markup=False)
    for name in done.removed:
        out.print(f"{name}: dropped (the case no longer exists)", markup=False)
    for name, error in done.failed:
        out.print(f"{name}: not indexed: {error}", markup=False)
    out.print(f"lab index at generation {done.generation}: {len(done.indexed)} cases indexed, "
              f"{len(done.removed)} dropped, {len(done.failed)} failed", markup=False)
    if done.failed:
        raise typer.Exit(1)


@index_app.command("show")
def index_show(as_json: JsonOpt = False) -> None:
    """The cases in the lab index: owner, when indexed, items and new items."""
    from safeguard.intel.index import LabIndex

    index = LabIndex(get_settings())
    try:
        cases = index.cases()
        rows = [{"case": c.name, "owner": c.owner, "indexed_at": c.indexed_at,
                 "generation": c.generation, "items": c.items, "new_items": c.new_items,
                 "exists": index.case_exists(c.name)} for c in cases]
        generation = index.generation()
    finally:
        index.dispose()
    if as_json:
        print_json({"generation": generation, "cases": rows})
        return
    for row in rows:
        gone = "" if row["exists"] else "  (gone: safeguard index rebuild drops it)"
        out.print(f"{row['case']}  owner {row['owner']}  indexed {row['indexed_at']}  "
                  f"{row['items']} items ({row['new_items']} new){gone}", markup=False)
    if not rows:
        out.print("the lab index holds no case (safeguard index rebuild)", markup=False)


def links_cmd(
    case: Annotated[str, typer.Argument(help="The case.")],
    user: Annotated[str | None, typer.Option(
        "--user", help="Show what this review-app user may see (their case grants); "
        "without it, every case is shown.")] = None,
    prompts: Annotated[bool, typer.Option(
        "--prompts", help="Quote shared prompts from CASE (hidden by default).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Cases linked to CASE: the same new pictures or series, camera, model file, training
    set or prompt; strongest first, with each link's evidence."""
    from safeguard.intel.index import LabIndex
    from safeguard.intel.links import links

    settings = get_settings()
    can_open = _grants(user) if user is not None else None
    index = LabIndex(settings)
    try:
        found = links(index, case, can_open, prompts=prompts)
    finally:
        index.dispose()
    if as_json:
        print_json(found.as_dict())
        return
    _print_links(found)


def _grants(name: str) -> Callable[[str], bool]:
    from safeguard.accounts.store import Accounts
    from safeguard.errors import AccountError

    accounts = Accounts(get_settings())
    user = accounts.user(name)
    if user is None:
        raise AccountError(f"no such user: {name}")
    return lambda case: accounts.can_access(user, case)


def _print_links(found: CaseLinks) -> None:
    from safeguard.intel.links import KIND_WORDS, describe
    from safeguard.text import visible

    n = len(found.others)
    out.print(f"case {found.case}: linked to {n} case{'s' if n != 1 else ''} you can open"
              f" (lab index generation {found.generation})", markup=False)
    for other in found.others:
        lead = "  new material seen in both cases: the strongest lead" \
            if other.new_material else ""
        out.print("", markup=False)
        out.print(f"{other.name}  (owner {other.owner})  {other.strength}{lead}",
                  markup=False)
        shown: dict[str, int] = {}
        for link in other.links:
            shown[link.kind] = shown.get(link.kind, 0) + 1
            if shown[link.kind] <= TEXT_LINKS:
                out.print(f"  {link.strength:<10} {KIND_WORDS[link.kind]:<12} "
                          f"{visible(describe(link))}", markup=False)
        for kind, count in shown.items():
            if count > TEXT_LINKS:
                out.print(f"  … {count - TEXT_LINKS} more {KIND_WORDS[kind]} links "
                          "(--json lists all)", markup=False)
    if found.hidden:
        out.print("", markup=False)
    for hidden in found.hidden:
        out.print(hidden.message, markup=False)
    for name in found.missing:
        out.print(f"case {name} is in the lab index but no longer exists "
                  "(safeguard index rebuild drops it)", markup=False)
