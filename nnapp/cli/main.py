"""`python -m nnapp COMMAND`: the engine without the browser. Every error is one line; a user's mistake
exits with status 2. Each module of commands adds its parsers and names its functions here."""

from __future__ import annotations

import os
import sys

from nnapp.cli import data as cli_data
from nnapp.cli import runs as cli_runs
from nnapp.cli import sweep as sweep_cli
from nnapp.cli import tools as cli_tools
from nnapp.cli.common import CLIError, Parser
from nnapp.engine.config import ConfigError
from nnapp.store.database import READ_ONLY
from nnapp.sweep.spec import SweepError
from nnapp.system.errors import BundleError, DataError, StoreError
from nnapp.system.files import os_error_text
from nnapp.system.process import reader_gone

MODULES = (cli_runs, sweep_cli, cli_tools, cli_data)
COMMANDS = {name: fn for module in MODULES for name, fn in module.COMMANDS.items()}
WRITES = {name for module in MODULES for name in module.WRITES}


def build_parser() -> Parser:
    parser = Parser(prog="python -m nnapp", description=f"nnapp runs from the command line: {', '.join(COMMANDS)}.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in MODULES:
        module.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = None
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")  # a file name that is not UTF-8 prints, escaped
    try:
        args = build_parser().parse_args(argv)
        from nnapp.store.store import Store  # here: --help and a bad argument need neither it nor numpy

        store = Store()
        if store.readonly and args.command in WRITES:
            raise StoreError(f"the run store {store.home} {READ_ONLY}")
        return COMMANDS[args.command](args, store)
    except CLIError as err:
        return fail(str(err))
    except SweepError as err:  # before ConfigError, which it is: it names the sweep's part at fault
        return fail(str(err))
    except ConfigError as err:
        return fail(f"invalid config: {err}")
    except (DataError, StoreError, BundleError) as err:
        return fail(str(err))
    except BrokenPipeError:  # stdout's reader has what it wanted (`list | head -1`): quietly done
        reader_gone()
        return 0
    except OSError as err:
        return fail(f"cannot {getattr(args, 'command', 'start')}: {os_error_text(err)}")
    except MemoryError:
        return fail("out of memory; try a smaller network or batch")
    except KeyboardInterrupt:
        print("\nnnapp: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: one line, as every error; NNAPP_DEBUG=1 shows the traceback
        if os.environ.get("NNAPP_DEBUG"):
            raise
        return fail(f"unexpected {type(err).__name__}: {str(err)[:200]} (NNAPP_DEBUG=1 shows where)", status=1)


def fail(message: str, status: int = 2) -> int:
    print(f"nnapp: error: {' '.join(message.split())}", file=sys.stderr)
    return status
