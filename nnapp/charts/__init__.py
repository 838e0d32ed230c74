"""charts: the Plotly figures the pages draw (curves, confusion matrix, histograms and the inside views).
Imports system, engine and store (and inside's results as plain data)."""
