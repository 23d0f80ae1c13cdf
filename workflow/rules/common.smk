import os
import re
import sys
from pathlib import Path

from jsonschema import ValidationError
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# Jobs import the `rnn` package that sits next to this workflow (also in a copy of the repository).
REPO = Path(workflow.basedir).parent
sys.path.insert(0, str(REPO))
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
)

from rnn import study


def schema_problem(exc):
    """One line naming the config key at fault and what is allowed, not the whole schema."""
    # validate() raises its WorkflowError while handling jsonschema's ValidationError
    err = exc.__cause__ or exc.__context__
    if not isinstance(err, ValidationError):
        return str(exc)
    where = ".".join(map(str, err.absolute_path)) or "top level"
    allowed = ""
    if err.validator == "additionalProperties":
        allowed = "; allowed keys: " + ", ".join(err.schema.get("properties", {}))
    return f"{where}: {err.message}{allowed}"


try:
    validate(config, "../schemas/config.schema.yaml")
    study.check_config(config)
except WorkflowError as exc:
    raise WorkflowError(f"Invalid config: {schema_problem(exc)}") from None
except study.ConfigError as exc:
    raise WorkflowError(f"Invalid config: {exc}") from None

VARIANTS = study.variants(config)
AXES = [
    a for a in dict.fromkeys(v["axis"] for v in VARIANTS.values()) if a != "baseline"
]
SEGMENTS = {k: config["data"][k] for k in ("train", "validation")} | {
    "horizon": config["horizon"]
}


wildcard_constraints:
    variant="|".join(re.escape(v) for v in VARIANTS),
    axis="|".join(re.escape(a) for a in AXES) or "none",


def code(*modules):
    """The rnn modules a rule's script imports (transitively): editing one reruns the rule.

    Relative to the working directory, so that a moved or copied study stays up to date.
    """
    return [os.path.relpath(p) for p in study.module_sources(modules)]


def variant_files(name):
    return expand(f"results/runs/{{variant}}/{name}", variant=VARIANTS)


def study_outputs():
    return [
        "results/tables/runs.csv",
        "results/tables/ablation.csv",
        "results/tables/ablation.md",
        "results/summary.md",
        *expand(
            "results/figures/{kind}/{variant}.png",
            kind=["continuations", "curves"],
            variant=VARIANTS,
        ),
        *expand("results/figures/ablation/{axis}.png", axis=AXES),
        *rules.figures.output,
    ]
