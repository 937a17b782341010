"""The `mmkg` console script: every command module registers itself on `app`; `main` maps errors to exit codes."""
from __future__ import annotations

import os
import sys

from mmkg.cli import export, mapping, paper, queries, serve  # noqa: F401  (each registers its commands)
from mmkg.cli.app import app, err_console, show
from mmkg.errors import MmkgError

__all__ = ["app", "main", "export_formats"]


def export_formats() -> dict[str, str]:
    """The `mmkg export` subcommands registered (by `mmkg.cli.export` and anyone else) with the first line of
    their help: the registry of export formats, which the docs table is generated from."""
    from mmkg.cli.app import export_app

    return {command.name or "": (command.help or command.callback.__doc__ or "").strip().splitlines()[0]
            for command in export_app.registered_commands if command.callback is not None}


def main() -> None:
    """Entry point: every `MmkgError` becomes one message on stderr and its exit code, never a traceback."""
    try:
        app()
    except MmkgError as exc:
        show(("Error:", "bold red"), " ", exc.message, err=True, soft_wrap=True)
        for detail in exc.details:
            show(f"  - {detail}", err=True, soft_wrap=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # the reader of our output went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except OSError as exc:  # a file the command was asked to read or write (-o, a folder …)
        where = f"{exc.filename}: " if exc.filename else ""
        show(("Error:", "bold red"), " ", f"{where}{exc.strerror or exc}", err=True, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
