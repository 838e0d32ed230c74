"""inside: what happens inside a network: each layer's activations, dead units, the t-SNE map of its
penultimate layer, and the learning-rate range test. Imports system, engine, store, jobs and predict."""
