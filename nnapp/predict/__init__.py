"""predict: one image at a time: a canvas drawing or an upload made into the 28×28 form the networks read,
the network run on it, and the not-a-digit check. Imports system, engine, store and jobs."""
