"""store: the run store under NNAPP_HOME: an SQLite database of runs, their metrics, histograms, drawings,
data sets of yours and tasks, weights as safetensors files beside it (and each data set version a run
trains on), who trains a config (claims), and stop flags.
Imports nnapp.system and nnapp.engine."""
