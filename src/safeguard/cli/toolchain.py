"""``safeguard prompts CASE [--search TERM]``: every prompt found in a case's evidence —
pictures' generator metadata, generator databases, logs, histories, styles and workflows,
training captions, fine-tunes' training tags (docs/ai-toolchain.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from safeguard.cli.common import JsonOpt, get_settings, out, print_json


def prompts_cmd(
    case: Annotated[str, typer.Argument(help="The case.")],
    search: Annotated[str | None, typer.Option(
        "--search", help="Only prompts naming this text (any case), in the prompt or the "
        "negative prompt.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Prompts found in the case: one line each (one JSON object a line with --json)."""
    from safeguard.store.cases import open_case
    from safeguard.toolchain.summary import search_prompts

    found = 0
    for prompt in search_prompts(open_case(get_settings(), case), search):
        found += 1
        if as_json:
            print_json(prompt)
            continue
        watch = f"  [watch: {', '.join(prompt['watch'])}]" if prompt["watch"] else ""
        out.print(f"{prompt['source']}  {prompt['item'] or prompt['location']}  "
                  f"{prompt['prompt']}{watch}", markup=False)
    if not found and not as_json:
        what = f" naming {search!r}" if search else ""
        out.print(f"no prompts{what} in case {case}", markup=False)
