"""jobs: background work in processes of their own: the job manager's queue, warm job processes, training a
run with its progress written to the store, and what a task sees while it runs.
Imports system, engine and store; the job process itself lives in nnapp.tasks, which knows every kind of task."""
