"""Atomic writes and checked reads of the study's files.

Every writer goes through ``atomic``: the content lands in a temporary file in the same folder,
is flushed to disk, then renamed over the target, so a killed job never leaves a half-written
file under a finished name. Every reader raises ``BadFileError`` naming the file when it is
missing, truncated, corrupted or lacks what it should hold.
"""

import contextlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd


class BadFileError(ValueError):
    """An input file that is missing, unreadable or does not hold what it should."""

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}. Delete it and rerun the workflow to regenerate it.")
        self.path, self.problem = Path(path), problem


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic(path, mode="w"):
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # the permissions a plain open() would give, not mkstemp's 0600
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def copy_file(src, dst):
    """Copy the bytes of ``src`` to ``dst``, atomically."""
    with atomic(dst, "wb") as f, open(src, "rb") as s:
        shutil.copyfileobj(s, f)


def save_npz(path, **arrays):
    with atomic(path, "wb") as f:
        np.savez(f, **arrays)


def save_csv(path, frame):
    with atomic(path) as f:
        frame.to_csv(f, index=False)


def save_text(path, text):
    with atomic(path) as f:
        f.write(text)


def save_json(path, obj):
    save_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def save_figure(path, fig, **kwargs):
    fmt = Path(path).suffix.lstrip(".") or "png"
    with atomic(path, "wb") as f:
        fig.savefig(f, format=fmt, **kwargs)


def load_npz(path, required=()):
    """A dict of the arrays in an .npz file, checked for the ``required`` names and finite shape."""
    path = Path(path)
    if not path.is_file():
        raise BadFileError(path, "file not found")
    try:
        with open(path, "rb") as f:
            data = np.load(f, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError(f"holds a single {type(data).__name__}, not an archive of named arrays")
            with data:
                arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise BadFileError(path, f"not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise BadFileError(path, f"lacks the arrays {', '.join(missing)} (has {', '.join(arrays) or 'none'})")
    return arrays


def load_series(path):
    """The data series (L, 1) float64 written by the ``data`` rule."""
    series = load_npz(path, ["series"])["series"]
    if series.ndim != 2 or series.shape[1] != 1 or series.dtype != np.float64 or len(series) < 3:
        raise BadFileError(path, f"'series' should be a float64 array of shape (L, 1), got {series.dtype} {series.shape}")
    if not np.all(np.isfinite(series)):
        raise BadFileError(path, "'series' holds NaN or inf values")
    return series


def load_predictions(path):
    """What a training job saved in predictions.npz: {"seeds", "y": {optimizer: (L, K)}, "continuation":
    {optimizer: (horizon, K)}} and, when the test segment was scored, "starts" (S,), "start":
    {optimizer: (horizon, K)} (from the first start point) and "vpt_starts": {optimizer: (S, K)}."""
    arrays = load_npz(path, ["seeds"])
    out = {"seeds": arrays["seeds"], "y": {}, "continuation": {}}
    if "starts" in arrays:
        out["starts"] = arrays["starts"]
    for key, value in arrays.items():
        if "/" in key:
            kind, opt = key.split("/", 1)
            out.setdefault(kind, {})[opt] = value
    if not out["y"] or out["y"].keys() != out["continuation"].keys():
        raise BadFileError(path, "should hold y/<optimizer> and continuation/<optimizer> for each optimizer")
    return out


def load_csv(path, required=(), sep=","):
    """A DataFrame from a CSV (or, with ``sep="\\t"``, TSV) file, checked for the ``required`` columns."""
    path = Path(path)
    if not path.is_file():
        raise BadFileError(path, "file not found")
    try:
        frame = pd.read_csv(path, sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BadFileError(path, f"not a readable CSV table ({type(exc).__name__}: {exc})") from None
    with open(path, "rb") as f:  # save_csv ends every table with a newline; pandas reads a cut row as NaNs
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            raise BadFileError(path, "truncated: its last line is incomplete")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise BadFileError(path, f"lacks the columns {', '.join(missing)}")
    return frame


def load_json(path):
    path = Path(path)
    if not path.is_file():
        raise BadFileError(path, "file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadFileError(path, f"not valid JSON ({exc})") from None


def load_lyapunov(path):
    """The largest Lyapunov exponent per sample from the ``lyapunov`` rule's JSON (NaN if unknown)."""
    record = load_json(path)
    value = record.get("lyapunov_per_sample") if isinstance(record, dict) else None
    if value is None:
        raise BadFileError(path, "lacks 'lyapunov_per_sample'")
    return float(value)


def job_logging(path, level="INFO"):
    """Send this process's log records (and Python warnings) to ``path`` and to stderr.

    An exception that ends the job is logged there too: Snakemake shows a failed job's log, and a
    cluster job's stderr is not where the user looks.
    """
    import logging
    import sys

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(path, mode="w"), logging.StreamHandler()]
    handlers[1].setLevel(logging.WARNING)
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)

    def log_uncaught(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            return sys.__excepthook__(kind, value, tb)
        logging.getLogger("rnn").error("job failed: %s: %s", kind.__name__, value, exc_info=(kind, value, tb))

    sys.excepthook = log_uncaught
