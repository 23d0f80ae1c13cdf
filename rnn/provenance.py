"""What produced a study's numbers: the software versions, the machine and the package's own modules.

``environment()`` is the record that ``publish`` writes to ``results/published/environment.json``
and that ``rnn.verify`` compares with the machine it runs on: the same versions and CPU model mean
the deterministic paths (SGD) must give the same bits.
"""

import ast
import hashlib
import os
import platform
from importlib import metadata
from pathlib import Path

PACKAGES = ("pytensor", "jax", "jaxlib", "numpy", "scipy", "snakemake", "pandas")
SIMD = ("sse", "avx", "fma", "amx")  # instruction-set flags: which vector code XLA and BLAS run
# what can change a result's last bits: not the OS, and not the cores, since XLA's thread pool, whose size
# does change them, is fixed whatever the machine has (rnn.backends.XLA_POOL_THREADS)
NUMERICS = ("python", "packages", "cpu", "cpu_flags")


def cpuinfo(path="/proc/cpuinfo"):
    """(model name, sorted SIMD flags) of the CPU from Linux's /proc/cpuinfo; elsewhere what ``platform`` knows."""
    fields = {}
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = fields.get("model name") or platform.processor() or platform.machine() or "unknown"
    flags = sorted(f for f in fields.get("flags", "").split() if f.startswith(SIMD))
    return model, flags


def version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment():
    """{python, packages: {name: version or None}, platform, cpu, cpu_flags, cores} of this process."""
    cpu = cpuinfo()
    return {
        "python": platform.python_version(),
        "packages": {p: version(p) for p in PACKAGES},
        "platform": platform.platform(),
        "cpu": cpu[0],
        "cpu_flags": " ".join(cpu[1]),
        "cores": os.cpu_count(),
    }


def differences(published, here):
    """What differs between two records in ``NUMERICS``: ['numpy 2.4.6 (published) vs 2.5.0 (here)', ...]."""
    def flat(record):
        out = {k: record.get(k) for k in NUMERICS if k != "packages"}
        out.update((record.get("packages") or {}).items())
        return out

    a, b = flat(published), flat(here)
    return [f"{k} {a.get(k)} (published) vs {b.get(k)} (here)" for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]


def module_sources(modules, package_dir=Path(__file__).parent):
    """Paths of the given ``rnn`` modules and of every ``rnn`` module they import, transitively.

    The workflow lists them as inputs, so that editing a module reruns the rules that use it. The
    package's ``__init__.py`` is always among them: importing any ``rnn`` module runs it first.
    """
    seen, todo = set(), ["__init__", *modules]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((package_dir / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                todo += [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
    return sorted(str(package_dir / f"{m}.py") for m in seen)


def _without_docstrings(tree):
    """``tree`` with the docstring of the module and of every class and function removed (in place)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or ([] if isinstance(node, ast.Module) else [ast.Pass()])
    return tree


def code_text(path):
    """What a Python file computes, as text: its syntax tree without comments, docstrings, line numbers or
    layout (``ast.dump``). Rewording a comment or docstring, or reformatting, leaves it unchanged; changing
    an expression, a name or a constant does not."""
    return ast.dump(_without_docstrings(ast.parse(Path(path).read_text(), filename=str(path))))


def code_digest(paths):
    """sha256 over the names and ``code_text`` of Python files: what a workflow job is keyed on, so that
    only an edit that changes what the code computes reruns it (``workflow/rules/common.smk``)."""
    digest = hashlib.sha256()
    for path in sorted(map(Path, paths), key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0" + code_text(path).encode() + b"\0")
    return digest.hexdigest()
