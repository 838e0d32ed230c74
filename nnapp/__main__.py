"""`python -m nnapp`: see nnapp.cli."""

from nnapp.cli.main import main

if __name__ == "__main__":
    from nnapp.system.process import exit_now

    exit_now(main())
