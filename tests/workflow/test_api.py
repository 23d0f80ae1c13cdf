"""rnn.api: the study from a notebook, trained and scored exactly as the workflow's jobs are."""

import re

import numpy as np
import pandas as pd
import pytest

from helpers import REPO, read_runs
from rnn import api

TIMING = re.compile(r"seconds$")


def test_train_gives_the_workflows_rows_to_the_bit(study):
    """The tiny study's hidden-3 job, run again through the API: the same rows of runs.csv."""
    config = api.load(study / "config/config.yaml")
    got = api.train(config, "hidden-3").reset_index(drop=True)
    runs = read_runs(study)
    want = runs[runs["variant"] == "hidden-3"].reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    for column in want.columns:
        if TIMING.search(column):
            continue
        a, b = got[column], want[column]
        if column == "value":
            a = a.astype(str)
        if pd.api.types.is_numeric_dtype(b) and column != "value":
            assert np.array_equal(a.to_numpy(float), b.to_numpy(float), equal_nan=True), column
        else:
            assert a.fillna("").astype(str).tolist() == b.fillna("").astype(str).tolist(), column
    assert np.isfinite(got["vpt_lyapunov_test"]).all() and np.isfinite(got["d_stsp"]).all()


def test_the_readme_example_runs_with_the_studys_defaults():
    """The README's example, as written: the default study's config, one variant on one series."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Use it from Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    runs = scope["runs"]
    assert set(runs["variant"]) == {"baseline"} and set(runs["data_seed"]) == {0}
    assert runs["bfgs_gtol"].iloc[0] == 1e-8  # the study's default, not the tutorial's 1e-5
    assert runs["vpt_lyapunov_test"].notna().all() and runs["d_h"].notna().all()


def test_bad_arguments_are_named():
    config = api.load()
    with pytest.raises(ValueError, match=r"variant 'closed-loop-90' is not in the config; it has: baseline, "):
        api.train(config, "closed-loop-90")
    with pytest.raises(ValueError, match=r"data_seed 7 is not a series variant baseline runs on: \[0, 1, 2\]"):
        api.train(config, "baseline", data_seed=7)
