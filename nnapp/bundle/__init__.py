"""bundle: a run exported as a zip that works without nnapp (weights, model.pt2, metrics, predict.py) and
imported back with every part checked. Imports system, engine, store and predict."""
