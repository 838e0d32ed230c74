"""cli: `python -m nnapp ...`: train, list, show, export, import, delete, predict, lr-find, sweep.
Imports any package; list, show and --help load no torch."""
