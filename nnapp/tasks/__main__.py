"""`python -m nnapp.tasks`: a job process (nnapp.jobs.warmpool starts them); see nnapp.tasks.process."""

from nnapp.system.process import exit_now
from nnapp.tasks.process import main

if __name__ == "__main__":
    exit_now(main())
