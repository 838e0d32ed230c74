"""`python -m nnapp`: see nnapp.cli."""

from nnapp.cli import main

if __name__ == "__main__":
    from nnapp.process import exit_now

    exit_now(main())
