"""nnapp: build, train, watch and test neural networks; the core the dashboard and the CLI share. No Streamlit.

Packages by concern, lowest first; a package imports only those before it in this order (tests/test_structure.py):

    system   files written whole, zips read with care, processes, errors as sentences, libraries' workarounds
    engine   RunConfig and its checks, registries, data sets and their versions, the network plan and its
             torch modules, data, fit(), metrics
    store    the run store: SQLite rows, weights, metrics, histograms, drawings, data sets, tasks, claims, stop flags
    jobs     background work: the job manager's queue, warm job processes, training a run into the store
    predict  one image at a time: canvas and upload preprocessing, inference, the not-a-digit check
    data     the data sets people make: drawn or read from image files (hostile ones refused), exported as a zip
    inside   what happens inside a network: activations, the t-SNE projector, the learning-rate finder
    charts   the Plotly figures the pages draw
    sweep    hyperparameter search: Optuna ask-and-tell, local and Ray executors, pruning
    bundle   a run exported as a self-contained zip, and imported back
    tasks    the kinds of background work by name, and the job process that runs one
    cli      `python -m nnapp ...`
"""
