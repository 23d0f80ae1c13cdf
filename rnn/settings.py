"""The study's settings: one schema holds every default and every range, and one function turns a config
into the study it describes.

``workflow/schemas/config.schema.yaml`` is the single source: its ``default``s are the documented defaults
(the default study, ``config/config.yaml``, restates none of them) and its types, ranges and enums are the
checks. ``resolve`` validates a config against it, fills in every default, gives each number the schema's
type (``1`` -> ``1.0`` for a float key, ``"1e-4"`` -> ``1e-4``, YAML 1.1's spelling) and orders every block
as the schema does, so that two configs that say the same thing resolve to the same plain data, and the
workflow's params (hashed by ``repr``) with them. A partial config thus gets the documented defaults
whether Snakemake merged it into ``config/config.yaml`` or replaced that file with it; the study's
questions (``ablations``, ``variants``) are what the config lists, none by default.

Each level of settings is one typed, frozen object built from the validated values (``Data``,
``Generation``, ``Longterm``, ``Training``; the model's is ``rnn.model.Spec``), and every module reads
them or their plain-dict form. The rules a schema cannot say (segments that must fit in the series,
series that must belong to the study, names that must not clash) are in ``check_config``. Every error
is a ``ConfigError`` (a ``ValueError``) naming the key at fault and what is allowed.

No PyTensor here: the Snakefile imports this module while it parses.
"""

import copy
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
CONFIG_FILE = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
NAMED_AXIS = "variant"  # the axis of the named variants in the tables
VARIANT_KEYS = ("optimizers", "data_seed", "ablations")  # what a named variant may hold besides setting keys
QUESTIONS = ("ablations", "variants")  # what a config asks; none unless it lists them
_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class ConfigError(ValueError):
    """A config value that breaks a rule; the message names the key and what is allowed."""


@lru_cache(maxsize=None)
def _schema_text():
    if not SCHEMA_FILE.is_file():
        raise FileNotFoundError(f"the study's schema {SCHEMA_FILE} is missing: rnn reads its settings from the "
                                "repository it was installed from (pip install -e .)")
    return SCHEMA_FILE.read_text()


def schema():
    """The config schema as plain data (a fresh copy: callers may not change the cached one)."""
    import yaml

    return yaml.safe_load(_schema_text())


@lru_cache(maxsize=None)
def _frozen_schema():
    return schema()


def _deref(node, root):
    """A schema node with its local ``$ref`` chain merged in (``#/definitions/...``)."""
    node = dict(node)
    while "$ref" in node:
        target = root
        for part in node.pop("$ref").lstrip("#/").split("/"):
            target = target[part]
        node = {**target, **node}
    return node


def _properties(node, root):
    return _deref(node, root).get("properties", {})


def definition(name):
    """The schema of one definition (``settings``, ``ablations``, ...) or top-level block (``data``...)."""
    root = _frozen_schema()
    node = root["definitions"].get(name) or root["properties"][name]
    return _deref(node, root)


def defaults(block):
    """{key: default} of a block's properties: ``setting_properties`` (a variant's settings), ``data``,
    ``generation``, ``longterm``, ``benchmark``, or ``top`` (the top-level keys)."""
    root = _frozen_schema()
    node = root if block == "top" else definition(block)
    return {k: copy.deepcopy(v["default"]) for k, v in _properties(node, root).items() if "default" in v}


BASELINE = defaults("setting_properties")  # every setting of a variant, at its documented default
SETTING_KEYS = tuple(BASELINE)


# --- values: types as the schema says, numbers canonical ---------------------------------------------------

def _types(node):
    t = node.get("type", [])
    return set([t] if isinstance(t, str) else t)


def _plain(value):
    """NumPy scalars as Python's (``np.int64(3)`` -> 3), so that the schema sees what the value is."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    return value


def coerce(value, node, root=None, strings=False):
    """``value`` given the schema ``node``'s types: an integer where the schema wants an integer (``3.0`` ->
    ``3``), a float where it wants a number (``1`` -> ``1.0``; with ``strings``, for a config file,
    ``"1e-4"`` -> ``0.0001``: PyYAML reads exponents without a dot as strings), recursively through
    objects and arrays. Anything else is left for validation to name."""
    root = root or _frozen_schema()
    node = _deref(node, root)
    value = _plain(value)
    types = _types(node)
    if strings and isinstance(value, str) and "number" in types and _FLOAT.match(value.strip()):
        value = float(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if "integer" in types and float(value).is_integer():
            return int(value)
        if "number" in types:
            return float(value)
        return value
    if isinstance(value, Mapping):
        props = _properties(node, root)
        extra = node.get("additionalProperties")
        out = {}
        for k, v in value.items():
            sub = props.get(k, extra if isinstance(extra, dict) else None)
            out[k] = coerce(v, sub, root, strings) if sub is not None else _plain(v)
        return out
    if isinstance(value, (list, tuple)):
        items = node.get("items")
        if items is None and "oneOf" in node:  # data.seed: an integer or a list of them
            items = next((o.get("items") for o in node["oneOf"] if "items" in o), None)
        return [coerce(v, items, root, strings) if items is not None else _plain(v) for v in value]
    return value


def _check_finite(value, where):
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value!r}")
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for v in value:
            _check_finite(v, where)


def _validator(node):
    from jsonschema import Draft202012Validator

    root = _frozen_schema()
    return Draft202012Validator({**{k: v for k, v in root.items() if k not in ("properties", "type",
                                                                             "additionalProperties")}, **node})


def _problem(err, prefix=""):
    """One line naming the key at fault and what is allowed (jsonschema's best error)."""
    where = ".".join([*([prefix] if prefix else []), *map(str, err.absolute_path)]) or "top level"
    allowed = ""
    if err.validator in ("additionalProperties", "unevaluatedProperties"):
        props = _properties(err.schema, _frozen_schema())
        if props:
            allowed = "; allowed keys: " + ", ".join(props)
    return f"{where}: {err.message}{allowed}"


def validate(values, node, where=""):
    """Raise ConfigError naming the first key of ``values`` that breaks the schema ``node``."""
    from jsonschema.exceptions import best_match

    err = best_match(_validator(node).iter_errors(values))
    if err is not None:
        raise ConfigError(_problem(err, where))
    _check_finite(values, where)


def check(block, values, where=None, strings=False):
    """``values`` of one block (``setting_properties`` for a variant's settings, ``generation``, ``longterm``,
    ``data``) validated, with the schema's types and every default filled in: a new dict in schema order.
    ``where`` names the block in errors (default: the block's config key)."""
    where = block if where is None else where
    root = _frozen_schema()
    node = definition(block)
    values = coerce(dict(values or {}), node, root, strings)
    if block == "setting_properties":
        node = {**node, "type": "object", "unevaluatedProperties": False}
    validate(values, node, where)
    full = {**defaults(block), **values}
    return {k: full[k] for k in [*_properties(node, root), *full] if k in full} if full else {}


# --- typed settings, one object per level -----------------------------------------------------------------

class Level(Mapping):
    """A frozen level of settings: attributes, and the read-only mapping of a plain dict (``s["key"]``)."""

    BLOCK = None  # the schema block it is validated against

    @classmethod
    def from_dict(cls, values, where=None):
        """Validated, defaults filled in; unknown keys are refused by name."""
        return cls(**check(cls.BLOCK, values, where))

    def to_dict(self):
        return asdict(self)

    def __getitem__(self, key):
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(self._keys())

    def __len__(self):
        return len(self._keys())

    @classmethod
    def _keys(cls):
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class Data(Level):
    """The series: generator, its delay, the data seeds and the segments (samples)."""

    BLOCK = "data"
    generator: str
    length: int | None
    tau: int
    seed: int | list
    train: int
    validation: int
    test: int
    lyapunov: float | None

    @property
    def seeds(self):
        return [int(s) for s in (self.seed if isinstance(self.seed, (list, tuple)) else [self.seed])]

    @property
    def samples(self):
        """Samples to generate: ``length``, or train + validation + test when it is null."""
        return int(self.length) if self.length is not None else self.train + self.validation + self.test


@dataclass(frozen=True)
class Generation(Level):
    """Continuations from start points in the test segment (samples)."""

    BLOCK = "generation"
    starts: int
    spacing: int
    warmup: int
    horizon: int


@dataclass(frozen=True)
class Longterm(Level):
    """Long free runs scored against a long reference trajectory (``rnn.longterm``)."""

    BLOCK = "longterm"
    steps: int
    discard: int
    reference: int
    seed: int
    starts: int
    lag: int | None
    dim: int | None
    bins: int
    margin: float
    smoothing: float
    nperseg: int
    sigma: float

    def __post_init__(self):
        for key in ("reference", "nperseg"):
            value = getattr(self, key)
            low, high = (self.steps, math.inf) if key == "reference" else (16, self.steps)
            if not low <= value <= high:
                raise ConfigError(f"longterm.{key} must be an integer in [{'longterm.steps = ' if key == 'reference' else ''}"
                                  f"{low}, {'inf)' if high == math.inf else f'longterm.steps = {high}]'}, got {value}")


@dataclass(frozen=True)
class Training(Level):
    """How a variant is trained (the Spec holds what it is): SGD, the quasi-Newton limits, the reservoir's
    ridge, the closed-loop schedule and restarts."""

    BLOCK = "setting_properties"
    lr: float
    epochs: int
    bfgs_maxiter: int
    bfgs_gtol: float
    ridge: float
    rollout_schedule: str
    onestep_weight: float
    restarts: int

    @classmethod
    def from_dict(cls, values, where=None):
        """The training keys of a variant's settings (other setting keys are ignored), defaults filled in."""
        keys = cls._keys()
        full = check(cls.BLOCK, {k: v for k, v in dict(values or {}).items() if k in BASELINE}, where or "")
        return cls(**{k: full[k] for k in keys})


TRAINING_KEYS = Training._keys()


def variant_settings(values, where=""):
    """A variant's settings (model and training keys) validated, every default filled in (``BASELINE``)."""
    out = check("setting_properties", values, where)
    if out["spectral_radius"] is not None and out["init_scale_rec"] == 0:
        raise ConfigError(f"{where + ': ' if where else ''}spectral_radius needs init_scale_rec > 0 "
                          "(a zero w_hh cannot be rescaled)")
    return out


# --- the study: config -> variants ------------------------------------------------------------------------

def format_value(value):
    """How a value appears in a variant name: hidden-30, skip-true, l2-0.001, l1-1e-05."""
    value = _plain(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def data_seeds(config):
    """The study's series: ``data.seed`` of a resolved config as a list (``Data.seeds``)."""
    return Data(**config["data"]).seeds


def data_length(data):
    """Samples to generate for a resolved ``data`` block (``Data.samples``)."""
    return Data(**data).samples


def _ablated(key, values, base_name, base_settings, optimizers, series):
    """One variant per value of one ablated key around ``base_name``: {name: variant}."""
    prefix = "" if base_name == "baseline" else f"{base_name}/"
    return {f"{prefix}{key}-{format_value(v)}": {
        "axis": key, "value": format_value(v), "base": base_name, "settings": {**base_settings, key: v},
        "optimizers": optimizers, "data_seeds": series} for v in values}


def _axes(block):
    """An ``ablations`` block without its ``data_seed`` entry (the series it runs on, not an axis)."""
    return {k: v for k, v in (block or {}).items() if k != "data_seed"}


def variants(config):
    """Ordered {name: {"axis", "value", "base", "settings", "optimizers", "data_seeds"}}: the baseline, one
    variant per value of the ``ablations`` block, each named variant, then one variant per value of
    a named variant's own ``ablations`` block (named ``<variant>/<key>-<value>``).

    ``base`` is the variant whose one setting a variant changes (``baseline`` for the top-level
    ablations; a named variant is its own base). ``data_seeds`` are the series a variant runs on:
    every series of the study unless its block names a ``data_seed`` list (a variant's own
    ablations inherit the variant's). ``config`` is a resolved one (``resolve``): settings are complete.
    """
    base = {**BASELINE, **config.get("baseline", {})}
    optimizers = list(config.get("optimizers", defaults("top")["optimizers"]))
    every = data_seeds(config)
    out = {"baseline": {"axis": "baseline", "value": "", "base": "baseline", "settings": base,
                        "optimizers": optimizers, "data_seeds": every}}
    block = config.get("ablations") or {}
    for key, values in _axes(block).items():
        out.update(_ablated(key, values, "baseline", base, optimizers, list(block.get("data_seed", every))))
    nested = {}
    for name, named in (config.get("variants") or {}).items():
        settings = {**base, **{k: v for k, v in named.items() if k not in VARIANT_KEYS}}
        series = list(named.get("data_seed", every))
        own = list(named.get("optimizers", optimizers))
        out[name] = {"axis": NAMED_AXIS, "value": name, "base": name, "settings": settings, "optimizers": own,
                     "data_seeds": series}
        block = named.get("ablations") or {}
        for key, values in _axes(block).items():
            nested.update(_ablated(key, values, name, settings, own, list(block.get("data_seed", series))))
    return {**out, **nested}


def jobs(variant_table):
    """Every (variant, data seed) pair that runs: one training job each."""
    return [(name, seed) for name, v in variant_table.items() for seed in v["data_seeds"]]


def _check_series(where, seeds, allowed, of="the study's data seeds (data.seed"):
    unknown = [s for s in seeds if s not in allowed]
    if unknown:
        raise ConfigError(f"{where}: {unknown[0]} is not one of {of}: {allowed})")


def _check_ablations(where, block):
    """Values of one ``ablations`` block: each valid for its key, names distinct (``where``: its config path)."""
    props = definition("setting_properties")["properties"]
    for key, values in _axes(block).items():
        for value in values:
            try:
                validate(value, props[key], f"{where}.{key} (value {format_value(value)})")
            except ConfigError as exc:
                raise ConfigError(str(exc).replace(": ", f": {key}: ", 1)) from None
        names = [format_value(v) for v in values]
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}.{key}: values repeat: {values!r}")


def _typed_ablations(block):
    """An ``ablations`` block with each value typed as its setting (``l2: [1]`` -> ``[1.0]``) and its axes in
    the schema's order, so that the variants, their names and their order do not depend on how a number
    was written or in which order the keys were."""
    props = definition("setting_properties")["properties"]
    typed = {k: (v if k == "data_seed" else [coerce(x, props[k], strings=True) for x in v])
             for k, v in (block or {}).items()}
    return _ordered(typed, ["data_seed", *SETTING_KEYS])


def _ordered(values, keys):
    """A dict in the order of ``keys`` (the schema's), then any others: canonical whatever order the file had."""
    return {k: values[k] for k in [*keys, *values] if k in values}


def resolve(config):
    """The study a config describes, as plain data: validated against the schema, every default filled in,
    numbers typed and every block in schema order; ``ConfigError`` naming the key at fault otherwise.

    Two configs that say the same thing (key order, ``1e-4`` or ``0.0001``, ``1`` or ``1.0`` for a float
    key, a restated default) resolve to equal dicts with equal ``repr``s.
    """
    root = _frozen_schema()
    config = coerce(copy.deepcopy(dict(config or {})), root, root, strings=True)
    validate(config, {k: v for k, v in root.items() if k != "definitions"})
    out = {}
    for key, node in root["properties"].items():
        value = config.get(key, copy.deepcopy(node.get("default")))
        if key in ("data", "generation", "longterm", "benchmark"):
            value = check(key, value)
            if key == "data" and not isinstance(value["seed"], list):
                value["seed"] = [value["seed"]]  # one series is a list of one: the same study either way
        elif key == "baseline":
            value = variant_settings(value, "baseline")
        elif key == "ablations":
            value = _typed_ablations(value)
        elif key == "variants":
            value = {name: {**_ordered({k: v for k, v in named.items() if k in BASELINE}, SETTING_KEYS),
                            **{k: named[k] for k in VARIANT_KEYS if k in named and k != "ablations"},
                            **({"ablations": _typed_ablations(named["ablations"])} if "ablations" in named else {})}
                     for name, named in sorted((value or {}).items())}  # by name: key order says nothing
        out[key] = value
    check_config(out)
    return out


# --- the rules a schema cannot say: what must fit in what -------------------------------------------------

def check_segments(length, train, validation, horizon):
    """Raise ValueError naming the segment that does not fit in a series of ``length`` samples."""
    for name, value in (("train", train), ("validation", validation), ("horizon", horizon)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if train < 2:
        raise ValueError(f"train must be >= 2 to have one prediction target, got {train}")
    if train + validation > length:
        raise ValueError(f"train + validation ({train} + {validation}) must be <= the series length {length}")
    if horizon > length - train:
        raise ValueError(f"horizon ({horizon}) must be <= series length - train ({length} - {train})")


def check_generation(gen, train, validation, length):
    """``gen`` as a ``Generation`` (keys and ranges by the schema), unless its start points do not fit in the
    test segment [train + validation, length), warm-ups and continuations included (ValueError)."""
    gen = gen if isinstance(gen, Generation) else Generation.from_dict(gen)
    if gen.warmup > train:
        raise ValueError(f"generation.warmup ({gen.warmup}) must be <= train ({train}): the validation "
                         "start points warm up in the training segment")
    need = gen.warmup + gen.spacing * (gen.starts - 1) + gen.horizon
    test = length - train - validation
    if need > test:
        raise ValueError(f"generation: warmup + spacing * (starts - 1) + horizon ({gen.warmup} + "
                         f"{gen.spacing} * {gen.starts - 1} + {gen.horizon} = {need}) must be <= the "
                         f"test segment, length - train - validation ({test})")
    return gen


def check_rollout(T, steps, washout):
    """Raise ValueError unless ``steps`` closed-loop steps after ``washout`` fit in a segment of T samples."""
    if T - steps - washout < 1:
        raise ValueError(f"rollout_steps ({steps}) + washout ({washout}) must be < the training length ({T}), "
                         "leaving at least one start point")


def check_config(config):
    """The rules a JSON schema cannot say, on a resolved config; raises ConfigError naming the key at fault."""

    data, horizon = config["data"], config["horizon"]
    length = data_length(data)
    series = data_seeds(config)
    if data["train"] + data["validation"] + data["test"] > length:
        raise ConfigError(f"data.train + data.validation + data.test ({data['train']} + {data['validation']} + "
                          f"{data['test']}) must be <= data.length ({length})")
    if horizon > length - data["train"]:
        raise ConfigError(f"horizon ({horizon}) must be <= data.length - data.train "
                          f"({length} - {data['train']} = {length - data['train']})")
    if data["test"] > 0:
        try:
            check_generation(config["generation"], data["train"], data["validation"],
                             data["train"] + data["validation"] + data["test"])
        except ValueError as exc:
            raise ConfigError(str(exc).replace("length - train - validation", "data.test")) from None
        Longterm.from_dict(config["longterm"])
    block = config.get("ablations") or {}
    _check_ablations("ablations", block)
    if "data_seed" in block:
        _check_series("ablations.data_seed", block["data_seed"], series)
    taken = set(variants({**config, "variants": {}}))
    for name, named in (config.get("variants") or {}).items():
        if name in taken:
            raise ConfigError(f"variants.{name}: the name is taken by {'the baseline' if name == 'baseline' else 'an ablation variant'}; choose another")
        if "data_seed" in named:
            _check_series(f"variants.{name}.data_seed", named["data_seed"], series)
        block = named.get("ablations") or {}
        _check_ablations(f"variants.{name}.ablations", block)
        if "data_seed" in block:
            _check_series(f"variants.{name}.ablations.data_seed", block["data_seed"],
                          list(named.get("data_seed", series)), f"the series variant {name} runs on (its data_seed")
    for name, variant in variants(config).items():
        if variant["axis"] == "baseline":
            where = "baseline"
        elif variant["axis"] == NAMED_AXIS:
            where = f"variants.{name}"
        elif variant["base"] == "baseline":
            where = f"ablations.{variant['axis']} (value {variant['value']})"
        else:
            where = f"variants.{variant['base']}.ablations.{variant['axis']} (value {variant['value']})"
        settings = variant["settings"]
        try:
            spec = variant_settings(settings, "")
            if spec["rollout_steps"] > 1:
                check_rollout(data["train"], spec["rollout_steps"], spec["washout"])
            if any(o.startswith("ridge") for o in variant["optimizers"]) and not spec["washout"] < data["train"] - 1:
                raise ValueError(f"washout ({spec['washout']}) must be < data.train - 1 ({data['train'] - 1}) "
                                 "to leave rows for the ridge fit")
        except (TypeError, ValueError) as exc:
            message = str(exc)
            raise ConfigError(f"{where}: {message[2:] if message.startswith(': ') else message}") from None


def train_arguments(config, name, table=None):
    """The keyword arguments of ``rnn.experiment.run_variant`` for variant ``name`` of a resolved config (all
    but the series, the exponent and the long-term reference, which are files): what the workflow's train
    rule passes, and what ``rnn.api.train`` passes, so that a notebook trains exactly as a job does."""
    variant = (table or variants(config))[name]
    data = config["data"]
    generation, longterm = test_blocks(config)
    return {"settings": variant["settings"], "seeds": list(config["seeds"]), "optimizers": variant["optimizers"],
            "backend": config["backend"], "train": data["train"], "validation": data["validation"],
            "horizon": config["horizon"], "generation": generation, "longterm": longterm,
            "log_every": config["curve_every"]}


def test_blocks(config):
    """(``generation``, ``longterm``) of a resolved config, each None without a test segment (``data.test``
    0): the continuations from test start points and the long free runs that start there."""
    test = config["data"]["test"] > 0
    return (config["generation"], config["longterm"]) if test else (None, None)


def load(path=None, overrides=None):
    """The resolved config of a YAML file (default: the default study, ``config/config.yaml``), with
    ``overrides`` (a dict, merged as Snakemake merges ``--configfile``: dicts key by key, anything else
    replaced) on top. What ``snakemake --cores 4`` would run, for a notebook."""
    import yaml

    config = yaml.safe_load(Path(path or CONFIG_FILE).read_text()) or {}
    return resolve(merge(config, overrides or {}))


def merge(config, overrides):
    """``overrides`` merged into a copy of ``config``: nested dicts key by key, other values replaced."""
    out = copy.deepcopy(dict(config))
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def restated_defaults(config, where=""):
    """Paths of the settings a (raw) config sets to their documented default: [``baseline.lr``, ...]."""
    found = []
    for block, known in (("data", defaults("data")), ("generation", defaults("generation")),
                         ("longterm", defaults("longterm")), ("baseline", BASELINE), ("top", defaults("top"))):
        values = config if block == "top" else (config.get(block) or {})
        node = _frozen_schema() if block == "top" else definition(block if block != "baseline" else "setting_properties")
        for key, value in values.items():
            if key in known and not isinstance(known[key], dict) and key not in QUESTIONS \
                    and coerce({key: value}, node).get(key) == known[key]:
                found.append(f"{where}{key}" if block == "top" else f"{where}{block}.{key}")
    return found


if __name__ == "__main__":  # python -m rnn.settings [config.yaml]: the resolved study, every default shown
    import sys

    import yaml

    print(yaml.safe_dump(load(sys.argv[1] if len(sys.argv) > 1 else None), sort_keys=False), end="")
