"""The Train page's layer tables: the rows their edits leave, read by the Launch button's callback before
the table is drawn again, are the rows Streamlit's data editor itself returns."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.elements.lib.column_config_utils import determine_dataframe_schema
from streamlit.elements.widgets.data_editor import _apply_dataframe_edits

from panels.layers import edited_rows, table_frame

pytestmark = pytest.mark.filterwarnings("ignore:Setting an item of incompatible dtype")  # inside Streamlit
COLUMNS = ["channels", "kernel", "pool"]
cell = st.one_of(st.none(), st.integers(0, 50))


def streamlit_rows(rows, edits):
    """What the page did before: Streamlit's edited frame, complete rows sorted by position."""
    df = table_frame(rows, COLUMNS)
    schema = determine_dataframe_schema(df, pa.Table.from_pandas(df).schema)
    edited = _apply_dataframe_edits(df.copy(), edits, schema)
    complete = edited.dropna(subset=COLUMNS)
    complete = complete.assign(position=complete["position"].fillna(math.inf)).sort_values("position", kind="stable")
    return [tuple(int(v) for v in row) for row in complete[COLUMNS].itertuples(index=False)], len(edited) - len(complete)


@st.composite
def table_and_edits(draw):
    rows = draw(st.lists(st.tuples(*[st.integers(1, 50)] * 3), max_size=5))
    names = ["position", *COLUMNS]
    edited = draw(
        st.dictionaries(
            st.integers(0, max(len(rows) - 1, 0)), st.dictionaries(st.sampled_from(names), cell, min_size=1), max_size=len(rows)
        )
    )
    deleted = draw(st.lists(st.integers(0, max(len(rows) - 1, 0)), unique=True, max_size=len(rows)))
    added = draw(st.lists(st.dictionaries(st.sampled_from(names), cell), max_size=3))
    return rows, {"edited_rows": edited, "deleted_rows": deleted, "added_rows": added}


@settings(max_examples=200, deadline=None)
@given(table_and_edits())
def test_edits_leave_the_rows_streamlit_returns(case):
    rows, edits = case
    assert edited_rows(rows, COLUMNS, edits) == streamlit_rows(rows, edits)


def test_an_edited_table_reorders_skips_and_counts():
    rows = [(8, 3, 2), (16, 3, 2)]
    edits = {
        "edited_rows": {0: {"position": 5}},
        "deleted_rows": [],
        "added_rows": [{"position": 2, "channels": 4}, {"channels": 1, "kernel": 1, "pool": 1}],
    }
    assert edited_rows(rows, COLUMNS, edits) == ([(16, 3, 2), (8, 3, 2), (1, 1, 1)], 1)
    assert edited_rows(rows, COLUMNS, None) == (rows, 0)
    hostile = {
        "edited_rows": {"0": {"kernel": "five"}, "x": {"pool": 1}},
        "added_rows": [{"position": "inf", "channels": 2.0, "kernel": "3", "pool": 1}],
    }
    assert edited_rows(rows, COLUMNS, hostile) == ([(16, 3, 2), (2, 3, 1)], 1)  # no number: skipped, as empty
