"""Anchors: Jaeger's echo state network on his own Mackey-Glass protocol, scored by his NRMSE84.

The study's reservoir is scored on the study's yardsticks; this module re-runs the published protocol
itself, in plain NumPy, so that the paper's number is compared with a number measured the same way.
Every fact below comes from H. Jaeger, "The 'echo state' approach to analysing and training recurrent
neural networks - with an Erratum note", the erratum-corrected version (26 January 2010) of GMD Report
148 (2001), cited as "Report", section and equation:

- series (Report 6.1, Eq. 23): Mackey-Glass tau = 17, Euler with step 1/10, subsampled by 10, squashed
  by y -> tanh(y - 1). ``rnn.data.mackey_glass`` is that recipe (its FIFO holds tau*10 Euler sub-steps)
  and already returns tanh(y - 1); its random initial history is the study's, not the report's (which
  gives none), so the first ``series.discard`` samples (a transient) are dropped: an assumption.
- network (Report 4.1.2, 6.2): 400 units; W with entries 0, +w, -w at probabilities 1 - c, c/2, c/2
  (c = 1.25%), rescaled to spectral radius 0.79; one bias input u = 0.2 with weights 0, +0.14, -0.14 at
  probabilities 0.5, 0.25, 0.25; output feedback W_back uniform in [-0.56, 0.56].
- update (Report Eq. 21, 6.2): leaky-integrator units,
  x(n+1) = (1 - delta C a) x(n) + delta C tanh(W x(n) + W_in u(n+1) + W_back y(n)),
  with delta = 1, C = 0.44, a = 0.9 (effective spectral radius 0.604 + 0.44 * 0.79 = 0.95, as the
  report says); during training, noise nu uniform in [-noise, noise] inside the tanh (Eq. 24), none for
  tau = 17 (Report 6.4).
- read-out (Report Eq. 2, 7, 14; 4.1.1): y(n) = f_out(w_out . x(n)) with f_out = tanh, trained by plain
  least squares of f_out^-1(y_teach(n)) = arctanh(y_teach(n)) on the N internal states only (Eq. 14 sums
  over i = 1..N); Eq. 2 would also allow the input and the previous output as regressors, which
  ``training.readout: states+input+output`` adds (not the report's).
- training (Report 6.3.1, 6.4): from a zero state, teacher-forced (y(n) := y_teach(n)) through the whole
  sequence; the first 1000 states discarded, w_out from the rest (2000 of 3000). The 21000-sample case
  (Report 6.3.3): four 6000-sample pieces overlapping by 1000, each trained as above, w_out averaged.
- NRMSE84 (Report 6.3.1, Eq. 25; 6.4): the trained network is run on ``runs`` consecutive 1084-sample
  segments of a new run of the system (20 runs for tau = 17, Report 6.4), each from a zero state,
  teacher-forced for 1000 steps, then free for 84; the 84th free output and the truth, both in the
  original coordinates y = arctanh(.) + 1, give
  NRMSE84 = sqrt(sum_i (y_i(n+84) - yhat_i(n+84))^2 / (runs sigma^2)), sigma^2 the variance of the
  original signal (here: of the test run's samples). Paper: 2.8e-4 (3000 samples), 1.2e-4 (21000).

With f_out = tanh, arctanh(yhat) + 1 is w_out . x + 1: the free run is mapped back without clipping.
Jaeger & Haas (2004, Science 304:78-80) is the same yardstick with a 1000-unit network; the protocol
file ``config/anchors/jaeger-haas2004.yaml`` says which of its parameters are assumptions.

Randomness only from explicit seeds: the network from ``numpy.random.default_rng(seed)`` (one network
per seed), the series from ``rnn.data``'s seeds. All test segments run side by side, one state matrix
(units x runs). A protocol file is validated by ``workflow/schemas/anchors.schema.yaml`` (``load``).
"""

import math
import re
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import data

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "anchors.schema.yaml"
_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class ProtocolError(ValueError):
    """A protocol file that breaks its schema; the message names the file and the key."""


# --- the network ----------------------------------------------------------------------------------------

def spectral_radius(w):
    """Largest |eigenvalue| of a square matrix (dense or scipy.sparse)."""
    dense = w.toarray() if hasattr(w, "toarray") else np.asarray(w)
    return float(np.max(np.abs(np.linalg.eigvals(dense)))) if dense.size else 0.0


def ternary(rng, shape, value, density):
    """Entries 0, +value, -value with probabilities 1 - density, density/2, density/2 (Report 4.1.2, 6.2)."""
    u = rng.random(shape)
    return np.where(u < density / 2, value, np.where(u < density, -value, 0.0))


def reservoir(units, connectivity, weight, radius, rng):
    """W (units, units), scipy.sparse CSR: ternary entries (``ternary``) rescaled to spectral ``radius``."""
    from scipy import sparse

    w = ternary(rng, (units, units), weight, connectivity)
    rho = spectral_radius(w)
    if rho == 0.0:
        raise ValueError(f"a {units}-unit reservoir at connectivity {connectivity} drew a nilpotent W "
                         "(spectral radius 0): it cannot be scaled; use another seed or more connections")
    return sparse.csr_matrix(w * (radius / rho))


def network(p, seed):
    """One network of protocol ``p`` (its ``network`` block) from ``seed``: a dict of its weights and constants."""
    n = p["network"]
    rng = np.random.default_rng(seed)
    w = reservoir(n["units"], n["connectivity"], n["weight"], n["spectral_radius"], rng)
    w_in = ternary(rng, n["units"], n["bias_weight"], n["bias_connectivity"])
    w_back = rng.uniform(-n["feedback"], n["feedback"], n["units"])
    leak = n["leak"]
    return {"w": w, "w_in": w_in, "w_back": w_back, "bias": n["bias"],
            "retain": 1.0 - leak["step"] * leak["C"] * leak["a"], "gain": leak["step"] * leak["C"]}


def step(net, x, y, noise=None):
    """x(n+1) (units, runs) from x(n) (units, runs) and y(n) (runs,): Report Eq. 21 (Eq. 24 with ``noise``)."""
    drive = net["w"] @ x + (net["bias"] * net["w_in"])[:, None] + net["w_back"][:, None] * y[None, :]
    if noise is not None:
        drive = drive + noise
    return net["retain"] * x + net["gain"] * np.tanh(drive)


# --- training ---------------------------------------------------------------------------------------------

def regressors(net, x, y_prev, readout):
    """Read-out inputs (T, K) from states x (T, units) and the previous outputs (T,): the states, or with
    ``readout == "states+input+output"`` also the bias input and y(n-1) (Report Eq. 2)."""
    if readout == "states":
        return x
    return np.column_stack([x, np.full(len(x), net["bias"]), y_prev])


def harvest(net, teacher, noise=0.0, rng=None):
    """States x(0..T-1) (T, units) of a teacher-forced run from x(0) = 0: x(n+1) from y(n) = teacher[n]."""
    units = net["w"].shape[0]
    states = np.zeros((len(teacher), units))
    x = np.zeros((units, 1))
    for n in range(len(teacher) - 1):
        nu = rng.uniform(-noise, noise, (units, 1)) if noise > 0 else None
        x = step(net, x, teacher[n:n + 1], nu)
        states[n + 1] = x[:, 0]
    return states


def least_squares(a, b):
    """The plain least-squares solution w of a w ~ b (no ridge): ``numpy.linalg.lstsq``."""
    return np.linalg.lstsq(a, b, rcond=None)[0]


def pieces(length, piece, overlap):
    """[(start, stop)] of the training pieces: ``piece`` samples each, overlapping by ``overlap``, covering
    ``length`` (Report 6.3.3: 21000 = four 6000-sample pieces overlapping by 1000)."""
    if piece >= length:
        return [(0, length)]
    stride = piece - overlap
    if stride <= 0 or (length - piece) % stride:
        raise ValueError(f"training pieces of {piece} overlapping by {overlap} do not tile {length} samples")
    return [(s, s + piece) for s in range(0, length - piece + 1, stride)]


def train(net, series, t):
    """w_out fitted on ``series`` (the squashed training sequence, (L,)) under training block ``t``; one
    w_out per piece, averaged. Returns (w_out, training NRMSE in the squashed coordinates)."""
    rng = np.random.default_rng(t["noise_seed"])
    weights, errors = [], []
    for start, stop in pieces(t["length"], t["piece"], t["overlap"]):
        teacher = series[start:stop]
        x = harvest(net, teacher, t["noise"], rng)[t["discard"]:]
        y_prev = teacher[t["discard"] - 1:-1]
        a = regressors(net, x, y_prev, t["readout"])
        target = np.arctanh(teacher[t["discard"]:])
        w = least_squares(a, target)
        weights.append(w)
        errors.append(np.mean((np.tanh(a @ w) - teacher[t["discard"]:]) ** 2))
    return np.mean(weights, axis=0), float(np.sqrt(np.mean(errors)) / np.std(series[:t["length"]]))


# --- testing ----------------------------------------------------------------------------------------------

def free_runs(net, w_out, segments, teacher, horizon, readout):
    """Original-coordinate outputs (runs, horizon) of free runs after ``teacher`` teacher-forced steps, all
    segments (runs, teacher + horizon) side by side from a zero state: yhat(teacher + k), k = 0..horizon-1,
    predicts segments[:, teacher + k]; arctanh(yhat) + 1 = w_out . regressors + 1 (f_out = tanh)."""
    runs = len(segments)
    x = np.zeros((net["w"].shape[0], runs))
    for n in range(teacher):
        x = step(net, x, segments[:, n])
    y_prev = segments[:, teacher - 1]
    out = np.empty((runs, horizon))
    for k in range(horizon):
        z = regressors(net, x.T, y_prev, readout) @ w_out
        out[:, k] = z + 1.0
        y_prev = np.tanh(z)
        x = step(net, x, y_prev)
    return out


def nrmse_at(prediction, truth, sigma, at=84):
    """Jaeger's NRMSE at one free-running step (Report Eq. 25): sqrt(mean over runs of the squared error at
    step ``at`` (1-based)) / sigma; ``prediction``, ``truth`` (runs, steps)."""
    err = np.asarray(prediction)[:, at - 1] - np.asarray(truth)[:, at - 1]
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.sqrt(np.mean(err ** 2)) / sigma)
    return value if math.isfinite(value) else math.inf


def nrmse_over(prediction, truth, sigma, steps=84):
    """The other yardstick, for contrast: the mean over runs of each run's RMS error over its first ``steps``
    free-running steps, / sigma (the yardstick of the study's ``nrmse_first84_test``)."""
    err = np.asarray(prediction)[:, :steps] - np.asarray(truth)[:, :steps]
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.mean(np.sqrt(np.mean(err ** 2, axis=1))) / sigma)
    return value if math.isfinite(value) else math.inf


# --- a protocol -------------------------------------------------------------------------------------------

def series(s, length):
    """The squashed series tanh(y - 1) (length,) of series block ``s``: rnn.data's Mackey-Glass from seed,
    its first ``discard`` samples dropped."""
    return data.mackey_glass(s["discard"] + length, tau=s["tau"], seed=s["seed"])[0][s["discard"]:, 0]


def trial_segments(p):
    """(runs, teacher + horizon) consecutive segments of a new run of the system (``series.test_seed``)."""
    t = p["testing"]
    width = t["teacher"] + t["horizon"]
    run = series({**p["series"], "seed": p["series"]["test_seed"]}, t["runs"] * width)
    return run.reshape(t["runs"], width)


def evaluate(p, seed, train_series=None, segments=None):
    """One network seed of protocol ``p``: {seed, nrmse84, nrmse_first84_mean, train_nrmse}."""
    t = p["testing"]
    train_series = series(p["series"], p["training"]["length"]) if train_series is None else train_series
    segments = trial_segments(p) if segments is None else segments
    net = network(p, seed)
    w_out, train_nrmse = train(net, train_series, p["training"])
    pred = free_runs(net, w_out, segments, t["teacher"], t["horizon"], p["training"]["readout"])
    truth = np.arctanh(segments[:, t["teacher"]:]) + 1.0
    sigma = float(np.std(np.arctanh(segments) + 1.0))
    return {"seed": seed, "nrmse84": nrmse_at(pred, truth, sigma, t["horizon"]),
            "nrmse_first84_mean": nrmse_over(pred, truth, sigma, t["horizon"]), "train_nrmse": train_nrmse,
            "sigma": sigma}


def run_protocol(p):
    """Every network seed of protocol ``p``: the protocol, the paper's number and the measured ones."""
    start = time.process_time()
    train_series = series(p["series"], p["training"]["length"])
    segments = trial_segments(p)
    per_seed = [evaluate(p, s, train_series, segments) for s in p["seeds"]]
    values = np.array([r["nrmse84"] for r in per_seed])
    median, worst = float(np.median(values)), float(np.max(values))
    return {"name": p["name"], "protocol": p, "paper": p["paper"], "seeds": per_seed,
            "nrmse84_median": median, "nrmse84_worst": worst,
            "ratio_median": median / p["paper"]["nrmse84"], "ratio_worst": worst / p["paper"]["nrmse84"],
            "cpu_seconds": time.process_time() - start}


def run(doc):
    """The record of one protocol file ``doc`` (``load``'s result): its source and every protocol's result."""
    start = time.process_time()
    results = [run_protocol(p) for p in doc["protocols"]]
    return {"name": doc["name"], "source": doc["source"], "assumptions": doc["assumptions"],
            "protocols": results, "cpu_seconds": time.process_time() - start}


# --- protocol files ---------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _schema_text():
    return SCHEMA_FILE.read_text()


def schema():
    import yaml

    return yaml.safe_load(_schema_text())


def _coerce(value, node):
    """``value`` with the schema's number types: "1e-5" (PyYAML's string) -> 1e-5 and 1 -> 1.0 for a number,
    3.0 -> 3 for an integer, recursively; anything else is left for validation to name."""
    types = node.get("type", [])
    types = {types} if isinstance(types, str) else set(types)
    if isinstance(value, str) and "number" in types and _FLOAT.match(value.strip()):
        value = float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "integer" in types and float(value).is_integer():
            return int(value)
        return float(value) if "number" in types else value
    if isinstance(value, dict):
        props = node.get("properties", {})
        return {k: _coerce(v, props[k]) if k in props else v for k, v in value.items()}
    if isinstance(value, list) and "items" in node:
        return [_coerce(v, node["items"]) for v in value]
    return value


def check(doc, where="protocol file"):
    """``doc`` validated against the schema, numbers typed; ProtocolError naming ``where`` and the key."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    node = schema()
    doc = _coerce(doc, node)
    err = best_match(Draft202012Validator(node).iter_errors(doc))
    if err is not None:
        key = ".".join(map(str, err.absolute_path)) or "top level"
        allowed = ""
        if err.validator == "additionalProperties":
            allowed = "; allowed keys: " + ", ".join(err.schema.get("properties", {}))
        raise ProtocolError(f"{where}: {key}: {err.message}{allowed}")
    for i, p in enumerate(doc["protocols"]):
        t, here = p["training"], f"{where}: protocols.{i}.training"
        if t["discard"] >= min(t["piece"], t["length"]):
            raise ProtocolError(f"{here}.discard: {t['discard']} leaves no state to fit in pieces of "
                                f"{min(t['piece'], t['length'])}")
        try:
            pieces(t["length"], t["piece"], t["overlap"])
        except ValueError as exc:
            raise ProtocolError(f"{here}.piece: {exc}") from None
    names = [p["name"] for p in doc["protocols"]]
    if len(set(names)) < len(names):
        raise ProtocolError(f"{where}: protocols: the names {names} repeat")
    return doc


def load(path):
    """A protocol file (YAML), validated (``check``): {name (the file's stem), source, assumptions, protocols}."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ProtocolError(f"{path}: no such protocol file")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ProtocolError(f"{path}: not valid YAML ({exc})") from None
    return {"name": path.stem, **check(doc, str(path))}


# --- the table --------------------------------------------------------------------------------------------

def _sci(value):
    """2.8e-4 for 0.00028 (two significant digits); "inf" for a diverged run."""
    if not math.isfinite(value):
        return "inf"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def table(records):
    """Markdown: one row per protocol of the ``records`` (``run``'s results, e.g. the JSON files): protocol,
    units, training samples, the paper's NRMSE84, this study's on the same protocol (median over network
    seeds, worst seed) and the ratio study / paper of the median."""
    rows = ["| protocol | units | training samples | paper's NRMSE84 | this study: median over network seeds "
            "| worst seed | ratio study / paper |",
            "|---|---|---|---|---|---|---|"]
    for record in records:
        for r in record["protocols"]:
            p = r["protocol"]
            rows.append(f"| {r['name']} | {p['network']['units']} | {p['training']['length']} "
                        f"| {_sci(r['paper']['nrmse84'])} ({r['paper']['where']}) "
                        f"| {_sci(r['nrmse84_median'])} ({len(r['seeds'])} seeds) | {_sci(r['nrmse84_worst'])} "
                        f"| {r['ratio_median']:.2g} |")
    return "\n".join(rows) + "\n"


def findings_text(records):
    """The findings' section on the classic results (``""`` without records): the table, what each protocol file
    assumes where its source is silent or unread, and how the yardstick differs from the study's own."""
    if not records:
        return ""
    lines = [table(records)]
    for record in records:
        n = len(record.get("assumptions") or [])
        lines.append(f"- `config/anchors/{record['name']}.yaml` ({record['source'].split(',')[0]}): "
                     + (f"{n} assumption{'s' if n != 1 else ''} where the source is silent or could not be read, "
                        "listed in the file." if n else "every parameter from the source."))
    lines += ["", "NRMSE84 here is Jaeger's: the error at the 84th free-running step after a teacher-forced "
              "warm-up, root-mean-squared over the trials, divided by the series' standard deviation, in the "
              "generator's own coordinates, with his network, training length and read-out (docs/anchors.md). The "
              "study's own reservoir reports the same step's error on its test start points (`nrmse_at84_test`) "
              "and, apart, the RMS over steps 1-84 (`nrmse_first84_test`), which is smaller."]
    return "\n".join(lines)


def main(argv=None):
    """``python -m rnn.anchors FILE...``: run each protocol file, print the table and the CPU time."""
    import sys

    paths = sys.argv[1:] if argv is None else argv
    records = [run(load(p)) for p in paths or ["config/anchors/jaeger2001.yaml", "config/anchors/jaeger-haas2004.yaml"]]
    print(table(records))
    for record in records:
        print(f"{record['name']}: {record['cpu_seconds']:.1f} s CPU")


if __name__ == "__main__":
    main()
