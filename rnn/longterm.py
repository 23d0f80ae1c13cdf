"""Long-term behaviour of a free run: does it stay on the attractor? (plain NumPy/SciPy)

Two measures of dynamical-systems reconstruction (Mikhaeil, Monfared & Durstewitz 2022; Hess et al.
2023), both comparing a long free run with a long reference trajectory of the true generator:

- D_stsp, the state-space divergence: KL(p || q) between the occupation histograms of the reference
  (p) and of the free run (q) in a delay embedding of the scalar series; ``bins`` per dimension over
  the reference's range widened by ``margin`` times its std, one more cell on each side for what
  falls outside it (the reference never does, so leaving the attractor costs), and ``smoothing``
  added to every cell's count before normalising. 0 for identical histograms.
- D_H, the spectral distance: the Hellinger distance (1/sqrt 2) ||sqrt p - sqrt q||_2 between the
  Welch power spectra (``nperseg`` samples per Hann segment, half overlapping) of the standardised
  series, Gaussian-smoothed over ``sigma`` frequency bins and normalised to sum 1. In [0, 1].

Worst values: a non-finite free run scores ``worst_state_space_divergence`` (every point in one
cell the reference never visits: the largest KL any run of that many points can reach) and D_H = 1
(disjoint spectra), as does for D_H a flat run (std below ``FLAT`` times the reference's: no
dynamics at the attractor's scale, only a vanishing transient or rounding). Never NaN.

Conventions: series are (L,) or (L, 1); D_stsp is in nats. A free run has ``discard + steps``
samples, of which ``Reference.score`` drops the first ``discard`` (the part valid prediction time
already scores, and the start-up of the generator's seeded histories); the measure functions take
what they are given. ``Reference`` bins and transforms the reference once for many runs. The
settings and the reasons for their defaults: config/README.md, section ``longterm``.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import gaussian_filter1d
from scipy.signal import welch
from scipy.spatial import cKDTree
from scipy.special import rel_entr
from scipy.stats import entropy

from .data import generate
from .settings import Longterm, defaults

DEFAULTS = defaults("longterm")  # the schema's (rnn.settings): one place for defaults and ranges
MAX_CELLS = 2**22  # histogram cells (bins + 2) ** dim: 32 MiB of float64 each
AMI_BINS = 16  # bins per axis of the mutual-information histogram
FNN_RTOL, FNN_ATOL, FNN_THRESHOLD = 15.0, 2.0, 0.01  # Kennel et al. 1992's two tests; "few" false neighbours
FLAT = 1e-6  # a run whose std is below FLAT x the reference's is flat (D_H = 1)


def check_settings(settings):
    """The settings with defaults filled in (a plain dict); ValueError naming ``longterm.<key>`` for anything
    out of range (``rnn.settings.Longterm``: the schema's ranges, and the two that depend on ``steps``)."""
    return Longterm.from_dict(settings).to_dict()


def embed(series, dim, lag):
    """Delay vectors (n, dim), row t = (x[t], x[t + lag], ..., x[t + (dim - 1) lag]), n = L - (dim - 1) lag."""
    x = np.ravel(np.asarray(series, dtype=float))
    span = (int(dim) - 1) * int(lag) + 1
    if len(x) < span:
        raise ValueError(f"a series of {len(x)} samples has no delay vector of dim {dim}, lag {lag}")
    return sliding_window_view(x, span)[:, ::int(lag)]


def mutual_information(series, lag, bins=AMI_BINS):
    """Average mutual information (nats) between x[t] and x[t + lag], from a bins x bins histogram."""
    x = np.ravel(np.asarray(series, dtype=float))
    joint = np.histogram2d(x[:-lag], x[lag:], bins=bins)[0]
    joint /= joint.sum()
    return float(rel_entr(joint, np.outer(joint.sum(1), joint.sum(0))).sum())


def false_neighbours(series, dim, lag):
    """Fraction of nearest neighbours in ``dim`` dimensions that are false in dim + 1 (Kennel et al. 1992).

    A neighbour is false when the added coordinate separates the pair by more than FNN_RTOL times
    their distance, or their distance in dim + 1 exceeds FNN_ATOL times the series' std.
    """
    x = np.ravel(np.asarray(series, dtype=float))
    n = len(x) - dim * lag  # points that have the (dim + 1)-th coordinate
    points = embed(x, dim, lag)[:n]
    distance, index = cKDTree(points).query(points, k=2)
    r, j = distance[:, 1], index[:, 1]
    added = np.abs(x[dim * lag:][:n] - x[dim * lag:][j])
    false = (added > FNN_RTOL * r) | (np.hypot(r, added) > FNN_ATOL * x.std())
    return float(np.mean(false))


def choose_lag(series, max_lag=50):
    """(lag, ami): the first local minimum of the average mutual information; ami[k - 1] is lag k's, k <= max_lag."""
    ami = [mutual_information(series, k) for k in range(1, max_lag + 2)]
    for k in range(2, max_lag + 1):
        if ami[k - 2] > ami[k - 1] <= ami[k]:
            return k, ami[:max_lag]
    raise ValueError(f"the mutual information has no minimum up to lag {max_lag}: set longterm.lag")


def choose_dim(series, lag, max_dim=5):
    """(dim, fnn): the smallest dim with under FNN_THRESHOLD false neighbours at ``lag``; fnn[d - 1] is dim d's."""
    fnn = []
    for d in range(1, max_dim + 1):
        fnn.append(false_neighbours(series, d, lag))
        if fnn[-1] < FNN_THRESHOLD:
            return d, fnn
    raise ValueError(f"no dimension up to {max_dim} has under {FNN_THRESHOLD:.0%} false neighbours at lag {lag}: "
                     "set longterm.dim")


def choose_embedding(series, max_lag=50, max_dim=5):
    """{"lag", "dim", "ami", "fnn"}: ``choose_lag``, then ``choose_dim`` at that lag. Deterministic."""
    lag, ami = choose_lag(series, max_lag)
    dim, fnn = choose_dim(series, lag, max_dim)
    return {"lag": lag, "dim": dim, "ami": ami, "fnn": fnn}


def histogram_edges(points, settings):
    """Per dimension, ``bins + 1`` edges over the points' range widened by ``margin`` x their std."""
    lo, hi, std = points.min(axis=0), points.max(axis=0), points.std(axis=0)
    if not np.all(std > 0):
        raise ValueError("the reference trajectory is constant: it has no range to bin")
    m = settings["margin"] * std
    return [np.linspace(a, b, settings["bins"] + 1) for a, b in zip(lo - m, hi + m)]


def occupation(points, edges):
    """Counts (prod(bins + 2),) of points per cell; index 0 and bins + 1 of each axis are outside the range."""
    shape = tuple(len(e) + 1 for e in edges)
    cells = [np.digitize(points[:, k], e) for k, e in enumerate(edges)]
    return np.bincount(np.ravel_multi_index(cells, shape), minlength=int(np.prod(shape))).astype(float)


def worst_state_space_divergence(reference_counts, n, smoothing):
    """The largest D_stsp of ``n`` points: all in the cell the reference visits least (one it never visits).

    KL(p || q) is convex in q's counts, so its maximum over runs of n points lies at a vertex: all in one cell.
    """
    worst = np.zeros_like(reference_counts)
    worst[np.argmin(reference_counts)] = n
    return float(entropy(reference_counts + smoothing, worst + smoothing))


def _divergence(reference_counts, points, edges, smoothing):
    """KL(p || q) of the smoothed occupations; the worst value if any point is non-finite."""
    if not np.all(np.isfinite(points)):
        return worst_state_space_divergence(reference_counts, len(points), smoothing)
    return float(entropy(reference_counts + smoothing, occupation(points, edges) + smoothing))


def state_space_divergence(reference, generated, settings, edges=None):
    """D_stsp (nats) of generated points (m, dim) against reference points (n, dim), e.g. from ``embed``.

    (n,) arrays count as one dimension; ``edges``: ``histogram_edges(reference, settings)`` when not given.
    """
    settings = check_settings(settings)
    reference, generated = (np.asarray(a, dtype=float) for a in (reference, generated))
    reference, generated = (a[:, None] if a.ndim == 1 else a for a in (reference, generated))
    edges = histogram_edges(reference, settings) if edges is None else edges
    return _divergence(occupation(reference, edges), generated, edges, settings["smoothing"])


def spectrum(series, settings, flat=0.0):
    """(frequencies (cycles/sample), power summing to 1) of the standardised series, or None if flat or non-finite."""
    x = np.ravel(np.asarray(series, dtype=float))
    if len(x) < settings["nperseg"]:
        raise ValueError(f"a series of {len(x)} samples is shorter than longterm.nperseg = {settings['nperseg']}")
    if not np.all(np.isfinite(x)):
        return None
    scale = np.abs(x).max()  # divide first: squares of a huge but finite run would overflow
    if scale == 0:
        return None
    x = x / scale
    if not x.std() > max(flat / scale, 1e-12):  # 1e-12: a constant up to rounding
        return None
    frequencies, power = welch((x - x.mean()) / x.std(), nperseg=settings["nperseg"])
    power = gaussian_filter1d(power, settings["sigma"]) if settings["sigma"] > 0 else power
    return frequencies, power / power.sum()


def hellinger(p, q):
    """(1/sqrt 2) ||sqrt p - sqrt q||_2 of two distributions on the same grid; 1 if either is None."""
    if p is None or q is None:
        return 1.0
    return float(min(1.0, np.linalg.norm(np.sqrt(p) - np.sqrt(q)) / np.sqrt(2)))


def spectral_distance(reference, generated, settings):
    """D_H in [0, 1] between two series' smoothed spectra; 1 when ``generated`` is flat or non-finite."""
    settings = check_settings(settings)
    flat = FLAT * np.std(np.asarray(reference, dtype=float))
    p, q = spectrum(reference, settings), spectrum(generated, settings, flat)
    return hellinger(None if p is None else p[1], None if q is None else q[1])


class Reference:
    """A reference trajectory's histogram and spectrum, computed once; ``score`` one free run at a time."""

    def __init__(self, reference, settings, embedding):
        self.settings = s = check_settings(settings)
        self.lag, self.dim = int(embedding["lag"]), int(embedding["dim"])
        if (s["bins"] + 2) ** self.dim > MAX_CELLS:
            raise ValueError(f"(longterm.bins + 2) ** dim = {(s['bins'] + 2) ** self.dim} cells exceeds {MAX_CELLS}: "
                             "fewer bins or a smaller longterm.dim")
        self.series = np.ravel(np.asarray(reference, dtype=float))
        if len(self.series) < s["steps"] or not np.all(np.isfinite(self.series)):
            raise ValueError(f"the reference needs at least longterm.steps = {s['steps']} finite samples")
        points = embed(self.series, self.dim, self.lag)
        self.edges = histogram_edges(points, s)
        self.counts = occupation(points, self.edges)
        self.frequencies, self.power = spectrum(self.series, s)
        self.peak = float(self.frequencies[np.argmax(self.power[1:]) + 1])  # cycles/sample, the mean's bin left out
        self.flat = FLAT * self.series.std()
        self.n = s["steps"] - (self.dim - 1) * self.lag  # delay vectors in one scored run
        self.worst = worst_state_space_divergence(self.counts, self.n, s["smoothing"])

    def score(self, generated):
        """{"d_stsp", "d_h"} of one free run of at least ``discard + steps`` samples (the rest is ignored)."""
        s = self.settings
        x = np.ravel(np.asarray(generated, dtype=float))
        if len(x) < s["discard"] + s["steps"]:
            raise ValueError(f"a free run needs longterm.discard + longterm.steps = {s['discard'] + s['steps']} "
                             f"samples, got {len(x)}")
        x = x[s["discard"]:s["discard"] + s["steps"]]
        if not np.all(np.isfinite(x)):
            return {"d_stsp": self.worst, "d_h": 1.0}
        q = spectrum(x, s, self.flat)
        return {"d_stsp": _divergence(self.counts, embed(x, self.dim, self.lag), self.edges, s["smoothing"]),
                "d_h": hellinger(self.power, None if q is None else q[1])}


def prepare(reference, settings, embedding):
    """A ``Reference`` for scoring many free runs against one reference series (embedding: {"lag", "dim"})."""
    return Reference(reference, settings, embedding)


def scores(reference, generated, settings, embedding):
    """{"d_stsp", "d_h"} of one free run (``discard + steps`` samples) against a reference series."""
    return prepare(reference, settings, embedding).score(generated)


def resolve_embedding(reference, settings):
    """{"lag", "dim", "ami", "fnn"}: ``longterm.lag`` and ``longterm.dim`` where set, else chosen on the reference."""
    s = check_settings(settings)
    lag, ami = (s["lag"], []) if s["lag"] is not None else choose_lag(reference)
    dim, fnn = (s["dim"], []) if s["dim"] is not None else choose_dim(reference, lag)
    return {"lag": lag, "dim": dim, "ami": ami, "fnn": fnn}


def true_trajectory(generator, length, settings, tau=17, seed=None):
    """(length,) samples of a generator after its first ``discard`` (start-up); seed None: ``longterm.seed``."""
    settings = check_settings(settings)
    seed = settings["seed"] if seed is None else seed
    return generate(generator, settings["discard"] + length, tau=tau, seed=seed)[settings["discard"]:, 0]


def reference_of(generator, settings, tau):
    """What the ``attractor`` rule builds: {"settings" (checked, defaults filled in), "reference" (the long
    true trajectory), "embedding" {"lag", "dim", ...}}."""
    settings = check_settings(settings)
    reference = true_trajectory(generator, settings["reference"], settings, tau=tau)
    return {"settings": settings, "reference": reference, "embedding": resolve_embedding(reference, settings)}


def floors_and_ceilings(prepared, generator="mackey_glass", tau=17, trials=3):
    """Rows {"case", "detail", "d_stsp", "d_h"}: the measures' floor and ceilings against ``prepared``'s reference.

    ``truth``: independent true free runs (seeds ``longterm.seed + 1 ...``), what finite sampling leaves;
    ceilings: ``constant`` at the reference's mean; ``sine`` at the peak of the reference's spectrum, with its
    mean and std (the simple cycle hardest to tell apart spectrally); ``noise``, Gaussian white noise with
    its mean and std (seeded by ``longterm.seed``); ``worst``, a non-finite run.
    """
    s, ref = prepared.settings, prepared.series
    length = s["discard"] + s["steps"]
    rows = [{"case": "truth", "detail": f"seed {s['seed'] + i}",
             **prepared.score(generate(generator, length, tau=tau, seed=s["seed"] + i))}
            for i in range(1, trials + 1)]
    sine = ref.mean() + np.sqrt(2) * ref.std() * np.sin(2 * np.pi * prepared.peak * np.arange(length))
    noise = np.random.default_rng([s["seed"], 1]).normal(ref.mean(), ref.std(), length)
    runs = [("constant", f"{ref.mean():.4g}", np.full(length, ref.mean())),
            ("sine", f"period {1 / prepared.peak:.1f} samples", sine),
            ("noise", f"seed [{s['seed']}, 1]", noise), ("worst", "non-finite", np.full(length, np.nan))]
    return rows + [{"case": case, "detail": detail, **prepared.score(x)} for case, detail, x in runs]
