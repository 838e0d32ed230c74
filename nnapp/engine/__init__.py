"""engine: what a run is and how it trains: RunConfig, its fields and checks, the registries (optimisers,
schedules, activations, losses, data sets) and the versions of data sets people make, the network's plan and
torch modules, data, fit(), metrics, device. Imports nnapp.system only. Importing config, fields, registry,
datasets, arch, effects, checks, limits or states loads no torch."""
