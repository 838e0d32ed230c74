"""store: the run store under NNAPP_HOME: an SQLite database of runs, their metrics, histograms, drawings and
tasks, weights as safetensors files beside it, who trains a config (claims), and stop flags.
Imports nnapp.system and nnapp.engine."""
