"""rnn.settings: one schema holds every default and range; a config resolves to canonical plain data."""

import copy
import re

import pytest
import yaml

from bad_configs import BAD_CONFIGS
from helpers import REPO, TINY
from rnn import settings
from rnn.model import Spec


def test_every_setting_has_a_documented_default():
    props = settings.definition("setting_properties")["properties"]
    assert set(settings.BASELINE) == set(props)
    for block in ("data", "generation", "longterm"):
        props = settings.definition(block)["properties"]
        assert set(settings.defaults(block)) == set(props), block


def test_the_default_study_restates_no_default():
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    assert settings.restated_defaults(config) == []
    assert set(config) <= set(settings.QUESTIONS)


def test_typed_levels_hold_exactly_the_schemas_keys():
    for level in (settings.Data, settings.Generation, settings.Longterm):
        assert level._keys() == list(settings.definition(level.BLOCK)["properties"]), level
    assert set(settings.TRAINING_KEYS) | set(Spec.__dataclass_fields__) == set(settings.BASELINE)
    assert not set(settings.TRAINING_KEYS) & set(Spec.__dataclass_fields__)


def test_the_library_defaults_are_the_schemas():
    """Spec, training and the long-term measures read their defaults from the one schema."""
    from rnn import longterm, train

    assert Spec().to_dict() == {k: settings.BASELINE[k] for k in Spec.__dataclass_fields__}
    assert train.check_settings() == {k: settings.BASELINE[k] for k in settings.TRAINING_KEYS}
    assert longterm.check_settings({}) == settings.defaults("longterm")


def test_a_partial_config_gets_the_documented_defaults():
    resolved = settings.resolve({"ablations": {"hidden": [5]}})
    assert resolved["baseline"] == settings.BASELINE
    assert resolved["baseline"]["bfgs_gtol"] == 1e-8 and resolved["baseline"]["rollout_stride"] == 4
    assert resolved["data"]["seed"] == [0, 1, 2]
    assert resolved["variants"] == {}  # the questions are what the config asks
    assert list(settings.variants(resolved)) == ["baseline", "hidden-5"]


def test_merged_and_replaced_partial_configs_resolve_alike():
    """Snakemake merges a --configfile into config/config.yaml or replaces it: the settings are the same."""
    partial = {"seeds": [0, 1], "baseline": {"lr": 0.2}, "ablations": {"hidden": [5]}}
    default = yaml.safe_load((REPO / "config/config.yaml").read_text())
    merged = settings.resolve(settings.merge(default, partial))
    replaced = settings.resolve(partial)
    for key in merged:
        if key not in settings.QUESTIONS:  # merging keeps the default study's other questions, as Snakemake does
            assert merged[key] == replaced[key], key
    assert merged["ablations"]["hidden"] == [5]


@pytest.mark.parametrize("spelling", [
    {"baseline": {"l2": "1e-4"}},  # PyYAML reads an exponent without a dot as a string
    {"baseline": {"l2": 0.0001}},
    {"baseline": {"l1": 0, "weight_noise": 0}},  # an integer where the key is a float
    {"baseline": {"epochs": 1001.0}},  # a float where the key is an integer
    {"data": {"tau": 17, "seed": [0, 1, 2]}, "horizon": 1000},  # restated values
    {"baseline": dict(reversed(list(settings.BASELINE.items())))},  # every setting, in another order
])
def test_equal_settings_resolve_to_equal_reprs(spelling):
    assert repr(settings.resolve(spelling)) == repr(settings.resolve({}))


def test_ablation_values_are_typed_as_their_setting():
    """``l2: [0]`` and ``l2: [0.0]`` name the same variant, with the same settings."""
    a = settings.variants(settings.resolve({"ablations": {"l2": [0], "epochs": [10.0]}}))
    b = settings.variants(settings.resolve({"ablations": {"l2": [0.0], "epochs": [10]}}))
    assert list(a) == list(b) == ["baseline", "l2-0.0", "epochs-10"]
    assert repr(a) == repr(b)


def test_a_real_change_changes_only_the_variants_it_touches():
    before = settings.variants(settings.resolve({"ablations": {"lr": [0.1], "hidden": [5]}}))
    after = settings.variants(settings.resolve({"baseline": {"lr": 0.2}, "ablations": {"lr": [0.1], "hidden": [5]}}))
    changed = sorted(n for n in before if repr(before[n]["settings"]) != repr(after[n]["settings"]))
    assert changed == ["baseline", "hidden-5"]


def test_resolving_does_not_change_its_input():
    config = copy.deepcopy(TINY)
    settings.resolve(config)
    assert config == TINY


def test_typed_levels_validate_and_read_like_dicts():
    gen = settings.Generation.from_dict({"starts": 3})
    assert gen.starts == gen["starts"] == 3 and gen["horizon"] == settings.defaults("generation")["horizon"]
    assert dict(gen) == gen.to_dict()
    with pytest.raises(settings.ConfigError, match=r"generation\.spacing: 0 is less than the minimum of 1"):
        settings.Generation.from_dict({"spacing": 0})
    with pytest.raises(settings.ConfigError, match=r"generation: .*'start' was unexpected.*allowed keys: starts"):
        settings.Generation.from_dict({"start": 3})
    data = settings.Data.from_dict({"seed": 4, "test": 0})
    assert data.seeds == [4] and data.samples == 2000


def test_non_finite_numbers_are_refused_by_name():
    with pytest.raises(settings.ConfigError, match=r"baseline\.l2: must be a finite number, got inf"):
        settings.resolve({"baseline": {"l2": float("inf")}})
    with pytest.raises(ValueError, match=r"weight_noise: must be a finite number, got nan"):
        Spec(weight_noise=float("nan"))


def test_train_arguments_are_what_run_variant_takes():
    import inspect

    from rnn.experiment import run_variant

    config = settings.resolve(TINY)
    arguments = settings.train_arguments(config, "hidden-3")
    assert set(arguments) <= set(inspect.signature(run_variant).parameters)
    assert arguments["settings"]["hidden"] == 3 and arguments["seeds"] == TINY["seeds"]


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_is_refused_naming_the_key(case):
    change, expected = BAD_CONFIGS[case]
    config = copy.deepcopy(TINY)
    change(config)
    with pytest.raises(settings.ConfigError) as caught:
        settings.resolve(config)
    for pattern in expected:
        assert re.search(pattern, str(caught.value)), f"{pattern!r} not in the error: {caught.value}"


DOC_SECTIONS = {"`data`": "data", "`generation`": "generation", "The run": "top", "`baseline`": "setting_properties",
                "`longterm`": "longterm", "`benchmark`": "benchmark"}


def documented_defaults():
    """{(block, key): default as written} of config/README.md's "| key | default | meaning |" tables."""
    text = (REPO / "config/README.md").read_text()
    found, block = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            block = next((b for title, b in DOC_SECTIONS.items() if line[3:].startswith(title)), None)
        elif block and line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            keys, values = re.findall(r"`(\w+)`", cells[0]), cells[1].split(", ") if "," in cells[0] else [cells[1]]
            for key, value in zip(keys, values):
                found[(block, key)] = value.strip("`")
    return found


def test_config_readme_states_the_schemas_defaults():
    documented = documented_defaults()
    for block in DOC_SECTIONS.values():
        for key, default in (settings.defaults(block) if block != "setting_properties" else settings.BASELINE).items():
            if block == "top" and key in ("data", "generation", "longterm", "baseline", "benchmark", *settings.QUESTIONS):
                continue
            assert (block, key) in documented, f"config/README.md does not document {block}.{key}"
            written = yaml.safe_load(documented[(block, key)])
            typed = settings.coerce(written, settings.definition(block)["properties"][key] if block != "top"
                                    else settings.schema()["properties"][key], strings=True)
            assert typed == default, f"config/README.md says {block}.{key} = {written!r}, the schema {default!r}"
