"""Parts of pages: Streamlit functions the pages in views/ call (views/ holds one file per page and
nothing else). Each takes plain values (a run, a config, a digit), reads the store through ui, and draws."""
