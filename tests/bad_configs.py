"""Configs the study refuses, each with what its error must say: the key at fault and what is allowed.

``tests/unit/test_settings.py`` checks every case in-process, through ``rnn.settings.resolve`` (what the
workflow runs when it parses); ``tests/workflow/test_workflow.py`` runs a few on the Snakemake CLI.
"""


def _set(path, value):
    def change(config):
        *parents, last = path.split(".")
        target = config
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    return change


BAD_CONFIGS = {  # id: (change, regexes the error message must match: the key, and what is allowed)
    "unknown-generator": (_set("data.generator", "henon"), [r"data\.generator", r"mackey_glass", r"lorenz"]),
    "unknown-backend": (_set("backend", "cuda"), [r"backend", r"'c', 'jax', 'numba'"]),
    "unknown-optimizer": (_set("optimizers", ["sgd", "adam"]), [r"optimizers", r"'adam'", r"sgd\+bfgs"]),
    "hidden-0": (_set("baseline.hidden", 0), [r"baseline\.hidden", r"minimum of 1"]),
    "hidden-0-in-ablation": (_set("ablations.hidden", [3, 0]), [r"ablations\.hidden \(value 0\)", r"minimum of 1"]),
    "unknown-nonlinearity-in-ablation": (_set("ablations.nonlinearity", ["relu", "softplus"]),
                                         [r"ablations\.nonlinearity", r"softplus", r"'tanh', 'sigmoid', 'relu', 'linear'"]),
    "negative-l2": (_set("baseline.l2", -0.1), [r"baseline\.l2", r"minimum of 0"]),
    "lr-0": (_set("baseline.lr", 0), [r"baseline\.lr", r"minimum of 0"]),
    "epochs-0": (_set("baseline.epochs", 0), [r"baseline\.epochs", r"minimum of 1"]),
    "train-plus-validation-too-long": (_set("data.validation", 201),
                                       [r"data\.train \+ data\.validation", r"200 \+ 201", r"data\.length \(400\)"]),
    "horizon-too-long": (_set("horizon", 201), [r"horizon \(201\)", r"<= data\.length - data\.train \(400 - 200 = 200\)"]),
    "ablation-key-not-in-baseline": (_set("ablations.dropout", [0.1]), [r"ablations", r"'dropout'", r"'hidden'"]),
    "empty-seeds": (_set("seeds", []), [r"seeds", r"non-empty"]),
    "repeated-seeds": (_set("seeds", [1, 1]), [r"seeds", r"non-unique"]),
    "empty-ablation-list": (_set("ablations.hidden", []), [r"ablations\.hidden", r"non-empty"]),
    "unknown-top-level-key": (_set("epochs", 3), [r"'epochs' was unexpected", r"allowed keys: data, horizon"]),
    # the generation question's keys
    "generation-past-the-test-segment": (_set("generation.horizon", 200), [
        r"generation: warmup \+ spacing \* \(starts - 1\) \+ horizon \(20 \+ 5 \* 2 \+ 200 = 230\)", r"data\.test \(100\)"]),
    "generation-starts-0": (_set("generation.starts", 0), [r"generation\.starts", r"minimum of 1"]),
    "rollout-longer-than-training": (_set("baseline.rollout_steps", 150), [
        r"baseline", r"rollout_steps \(150\) \+ washout \(100\) must be < the training length \(200\)"]),
    "rollout-0-in-ablation": (_set("ablations.rollout_steps", [4, 0]), [r"ablations\.rollout_steps", r"minimum of 1"]),
    "negative-input-noise": (_set("baseline.input_noise", -0.1), [r"baseline\.input_noise", r"minimum of 0"]),
    "coverage-0": (_set("baseline.rollout_coverage", 0), [r"baseline\.rollout_coverage", r"minimum of 1"]),
    "coverage-fraction-in-nested-ablation": (_set("variants.mine", {"hidden": 3, "ablations": {"rollout_coverage": [2.5]}}), [
        r"variants\.mine\.ablations\.rollout_coverage \(value 2\.5\)", r"not of type 'integer', 'null'"]),
    "unknown-schedule": (_set("baseline.rollout_schedule", "linear"), [r"baseline\.rollout_schedule", r"doubling"]),
    "negative-spectral-radius-in-ablation": (_set("ablations.spectral_radius", [0.9, -1.0]), [
        r"ablations\.spectral_radius \(value -1\.0\)", r"less than or equal to the minimum of 0"]),
    "negative-ridge": (_set("baseline.ridge", -1.0), [r"baseline\.ridge", r"minimum of 0"]),
    "unknown-key-in-named-variant": (_set("variants.mine", {"dropout": 0.1}), [r"variants\.mine", r"dropout"]),
    "unknown-optimizer-in-named-variant": (_set("variants.mine", {"optimizers": ["adam"]}), [
        r"variants\.mine\.optimizers", r"'adam'"]),
    "named-variant-called-baseline": (_set("variants.baseline", {"hidden": 3}), [
        r"variants\.baseline: the name is taken by the baseline"]),
    "named-variant-called-like-an-ablation": (_set("variants.hidden-3", {"hidden": 4}), [
        r"variants\.hidden-3: the name is taken by an ablation variant"]),
    "bad-named-variant-value": (_set("variants.mine", {"spectral_radius": 0.9, "init_scale_rec": 0.0}), [
        r"variants\.mine", r"spectral_radius needs init_scale_rec > 0"]),
    "ridge-washout-too-long": (_set("variants.mine", {"washout": 199, "optimizers": ["ridge"]}), [
        r"variants\.mine", r"washout \(199\) must be < data\.train - 1 \(199\)"]),
    # series as an axis
    "data-seed-empty-list": (_set("data.seed", []), [r"data\.seed", r"should be non-empty"]),
    "data-seed-repeated": (_set("data.seed", [0, 0]), [r"data\.seed", r"non-unique"]),
    "data-seed-negative": (_set("data.seed", -1), [r"data\.seed", r"minimum of 0"]),
    "ablation-series-outside-the-study": (_set("ablations.data_seed", [5]), [
        r"ablations\.data_seed: 5 is not one of the study's data seeds \(data\.seed: \[0\]\)"]),
    "variant-series-outside-the-study": (_set("variants.mine", {"hidden": 3, "data_seed": [1]}), [
        r"variants\.mine\.data_seed: 1 is not one of the study's data seeds"]),
    "variant-series-repeated": (_set("variants.mine", {"hidden": 3, "data_seed": [0, 0]}), [
        r"variants\.mine\.data_seed", r"non-unique"]),
    # ablations around a named variant
    "nested-ablation-unknown-key": (_set("variants.mine", {"hidden": 3, "ablations": {"dropout": [0.1]}}), [
        r"variants\.mine\.ablations", r"'dropout' is not one of"]),
    "nested-ablation-empty-list": (_set("variants.mine", {"hidden": 3, "ablations": {"l2": []}}), [
        r"variants\.mine\.ablations\.l2", r"should be non-empty"]),
    "nested-ablation-bad-value": (_set("variants.mine", {"hidden": 3, "ablations": {"hidden": [4, 0]}}), [
        r"variants\.mine\.ablations\.hidden \(value 0\)", r"minimum of 1"]),
    "nested-ablation-series-outside-its-variant": (_set("variants.mine", {
        "hidden": 3, "data_seed": [0], "ablations": {"hidden": [4], "data_seed": [1]}}), [
        r"variants\.mine\.ablations\.data_seed: 1 is not one of the series variant mine runs on"]),
    "restarts-0": (_set("baseline.restarts", 0), [r"baseline\.restarts", r"minimum of 1"]),
    "restarts-in-nested-ablation": (_set("variants.mine", {"hidden": 3, "ablations": {"restarts": [2, 99]}}), [
        r"variants\.mine\.ablations\.restarts \(value 99\)", r"maximum of 16"]),
    "negative-bias-scale": (_set("baseline.init_scale_bias", -0.1), [r"baseline\.init_scale_bias", r"minimum of 0"]),
    # the long-term measures' settings
    "longterm-one-bin": (_set("longterm.bins", 1), [r"longterm\.bins", r"minimum of 2"]),
    "longterm-short-run": (_set("longterm.steps", 100), [r"longterm\.steps", r"minimum of 1000"]),
    "longterm-unknown-key": (_set("longterm.bin", 3), [r"longterm", r"'bin' was unexpected", r"allowed keys: steps"]),
    "longterm-segment-longer-than-the-run": (_set("longterm.nperseg", 5000), [
        r"longterm\.nperseg must be an integer in \[16, longterm\.steps = 1000\]"]),
    "longterm-reference-shorter-than-the-run": (_set("longterm.steps", 5000), [
        r"longterm\.reference must be an integer in \[longterm\.steps = 5000, inf\), got 4000"]),
}
