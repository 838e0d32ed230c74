"""sweep: hyperparameter search: the sweep's spec, its Optuna study, the view each trial is asked and pruned
in, the driver that asks and tells, local (job processes) and Ray executors, pruning. Imports system, engine,
store and jobs."""
