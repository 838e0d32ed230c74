"""tasks: the kinds of background work by name, each the function that does it, and the job process
(`python -m nnapp.tasks`) that runs one. Imports every package but cli."""
