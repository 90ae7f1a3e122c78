"""``safeguard`` and ``python -m safeguard``. A Ctrl-C while the command's modules are still
being imported (the first second or so) exits 130 with one line, as a Ctrl-C later does, not
with a traceback from whichever import it interrupted."""

import sys


def run() -> int:
    try:
        from safeguard.cli import main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        eval("None")  # clears CPython's "unhandled" mark; see cli.common.forget_interrupt
        return 130
    return main()


if __name__ == "__main__":
    raise SystemExit(run())
