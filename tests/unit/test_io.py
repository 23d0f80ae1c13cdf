"""rnn.io: atomic writes and checked reads."""

import os
import stat

import numpy as np
import pandas as pd
import pytest

from rnn import io
from rnn.io import load_predictions


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


# --- atomic writes ---------------------------------------------------------------------------

def test_writers_produce_complete_files_and_leave_no_temporary(tmp_path):
    io.save_npz(tmp_path / "a" / "p.npz", series=np.arange(6.0).reshape(6, 1), seeds=np.array([0, 1]))
    io.save_csv(tmp_path / "t.csv", pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}))
    io.save_text(tmp_path / "n.txt", "hello\n")
    io.save_json(tmp_path / "j.json", {"b": np.float64(0.5), "a": [1, 2]})
    assert np.array_equal(io.load_series(tmp_path / "a" / "p.npz"), np.arange(6.0).reshape(6, 1))
    assert io.load_csv(tmp_path / "t.csv", ["x", "y"]).to_dict("list") == {"x": [1, 2], "y": ["a", "b"]}
    assert (tmp_path / "n.txt").read_text() == "hello\n"
    assert io.load_json(tmp_path / "j.json") == {"a": [1, 2], "b": 0.5}
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "a") == []


def test_a_writer_that_fails_midway_leaves_neither_target_nor_temporary(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="boom"):
        with io.atomic(target) as f:
            f.write("half of the")
            f.flush()
            assert leftovers(tmp_path)  # the content goes to a temporary sibling
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rewrite_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.txt"
    io.save_text(target, "old, complete\n")
    with pytest.raises(KeyboardInterrupt):
        with io.atomic(target) as f:
            f.write("new, partial")
            raise KeyboardInterrupt
    assert target.read_text() == "old, complete\n"
    assert leftovers(tmp_path) == []


def test_save_npz_failing_on_its_second_array_leaves_nothing(tmp_path):
    target = tmp_path / "params.npz"
    unpicklable = np.array([lambda: 0], dtype=object)
    with pytest.raises(Exception):
        io.save_npz(target, good=np.ones(1000), bad=unpicklable)
    assert list(tmp_path.iterdir()) == []


def test_atomic_files_get_the_permissions_a_plain_write_gets(tmp_path):
    """Replacing open(path, "w") by atomic(path) must not make results private to their owner."""
    io.save_text(tmp_path / "atomic.txt", "x")
    (tmp_path / "plain.txt").write_text("x")
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert oct(mode(tmp_path / "atomic.txt")) == oct(mode(tmp_path / "plain.txt"))


# --- checked reads ---------------------------------------------------------------------------

@pytest.fixture
def good_npz(tmp_path):
    path = tmp_path / "series.npz"
    io.save_npz(path, series=np.linspace(-1, 1, 50).reshape(50, 1))
    return path


def assert_bad(call, path, problem=None):
    with pytest.raises(io.BadFileError, match=problem) as info:
        call(path)
    assert str(path) in str(info.value)
    assert info.value.path == path
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("reader", [io.load_npz, io.load_series, io.load_csv, io.load_json, load_predictions])
def test_readers_name_a_missing_file(tmp_path, reader):
    assert_bad(reader, tmp_path / "nowhere.npz", "file not found")
    (tmp_path / "folder").mkdir()
    assert_bad(reader, tmp_path / "folder", "file not found")


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, -1])
def test_truncated_npz_is_reported(good_npz, keep):
    data = good_npz.read_bytes()
    cut = len(data) - 1 if keep == -1 else int(len(data) * keep)
    good_npz.write_bytes(data[:cut])
    assert_bad(io.load_npz, good_npz, "not a readable .npz")
    assert_bad(io.load_series, good_npz)


def test_corrupted_npz_is_reported(good_npz):
    data = bytearray(good_npz.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the stored array: the CRC no longer matches
    good_npz.write_bytes(bytes(data))
    assert_bad(io.load_series, good_npz, "not a readable .npz")


@pytest.mark.parametrize("content", [b"", b"hello world\n", b"PK\x03\x04 not really a zip",
                                     np.random.default_rng(0).bytes(500)], ids=["empty", "text", "fake_zip", "random"])
def test_garbage_npz_is_reported(tmp_path, content):
    path = tmp_path / "series.npz"
    path.write_bytes(content)
    assert_bad(io.load_npz, path, "not a readable .npz")
    assert_bad(io.load_series, path)


def test_an_npy_file_under_an_npz_name_is_reported(tmp_path):
    path = tmp_path / "series.npz"
    with open(path, "wb") as f:
        np.save(f, np.ones((5, 1)))
    assert_bad(io.load_series, path)


def test_object_arrays_are_not_unpickled(tmp_path):
    path = tmp_path / "series.npz"
    np.savez(path, series=np.array([{"a": 1}], dtype=object))
    assert_bad(io.load_series, path, "not a readable .npz")


@pytest.mark.parametrize("series, problem", [
    (np.ones(50), "shape"),
    (np.ones((50, 2)), "shape"),
    (np.ones((50, 1), dtype=np.float32), "float64"),
    (np.ones((50, 1), dtype=np.int64), "float64"),
    (np.ones((2, 1)), "shape"),
    (np.r_[np.ones(49), np.nan].reshape(50, 1), "NaN or inf"),
    (np.r_[np.ones(49), np.inf].reshape(50, 1), "NaN or inf"),
])
def test_load_series_checks_the_content(tmp_path, series, problem):
    path = tmp_path / "series.npz"
    io.save_npz(path, series=series)
    assert_bad(io.load_series, path, problem)


def test_missing_arrays_are_named(tmp_path):
    path = tmp_path / "other.npz"
    io.save_npz(path, data=np.ones((5, 1)))
    assert_bad(io.load_series, path, r"lacks the arrays series \(has data\)")
    assert_bad(lambda p: io.load_npz(p, ["seeds", "data"]), path, "lacks the arrays seeds")
    assert set(io.load_npz(path)) == {"data"}


def test_load_predictions_checks_its_content(tmp_path):
    path = tmp_path / "predictions.npz"
    io.save_npz(path, seeds=np.array([0, 1]), **{"y/sgd": np.zeros((10, 2)), "continuation/sgd": np.zeros((3, 2))})
    out = load_predictions(path)
    assert list(out["y"]) == ["sgd"] and out["continuation"]["sgd"].shape == (3, 2)
    io.save_npz(path, seeds=np.array([0, 1]), **{"y/sgd": np.zeros((10, 2)), "continuation/bfgs": np.zeros((3, 2))})
    assert_bad(load_predictions, path, "y/<optimizer> and continuation/<optimizer>")
    io.save_npz(path, **{"y/sgd": np.zeros((10, 2))})
    assert_bad(load_predictions, path, "lacks the arrays seeds")


@pytest.mark.parametrize("content", [b"", np.random.default_rng(0).bytes(300), b'a,b\n1,"never closed\n'],
                         ids=["empty", "binary", "open_quote"])
def test_garbage_csv_is_reported(tmp_path, content):
    path = tmp_path / "runs.csv"
    path.write_bytes(content)
    assert_bad(io.load_csv, path, "not a readable CSV")


def test_csv_missing_columns_are_named(tmp_path):
    path = tmp_path / "runs.csv"
    io.save_csv(path, pd.DataFrame({"seed": [0, 1], "val_mse": [0.1, 0.2]}))
    assert io.load_csv(path, ["seed", "val_mse"]).shape == (2, 2)
    assert_bad(lambda p: io.load_csv(p, ["seed", "optimizer", "status"]), path, "lacks the columns optimizer, status")


def test_bad_json_is_reported(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": ')
    assert_bad(io.load_json, path, "not valid JSON")
