"""What a job is keyed on: the code of the modules it runs, without comments, docstrings or layout."""

import shutil
import subprocess
import sys

from helpers import REPO
from rnn import provenance

SOURCE = '''"""A module."""
import math


def area(r):
    """The area of a disc of radius r."""
    return math.pi * r ** 2  # pi r squared
'''


def digest(tmp_path, text):
    path = tmp_path / "module.py"
    path.write_text(text)
    return provenance.code_digest([path])


def test_comments_docstrings_and_layout_do_not_change_the_digest(tmp_path):
    same = [
        SOURCE.replace("A module.", "Another wording of the module's docstring."),
        SOURCE.replace("The area of a disc of radius r.", "Area."),
        SOURCE.replace("  # pi r squared", ""),
        SOURCE.replace("math.pi * r ** 2", "math.pi * (r ** 2)"),  # the same expression, bracketed
        SOURCE.replace("\n\n\ndef", "\n\ndef").replace("def area(r):", "def area(\n    r,\n):"),
        "# a leading comment\n" + SOURCE + "\n# a trailing comment\n",
    ]
    base = digest(tmp_path, SOURCE)
    for text in same:
        assert digest(tmp_path, text) == base, text


def test_what_the_code_computes_changes_the_digest(tmp_path):
    base = digest(tmp_path, SOURCE)
    for text in (SOURCE.replace("** 2", "** 3"), SOURCE.replace("math.pi", "3.14"),
                 SOURCE.replace("def area(r)", "def area(radius)").replace("* r *", "* radius *"),
                 SOURCE + "\nUNIT = 'm'\n", SOURCE.replace('"""The area of a disc of radius r."""\n', "")
                 + "\nx = 'A string that is not a docstring'\n"):
        assert digest(tmp_path, text) != base, text


def test_a_docstring_only_function_keeps_a_body_and_an_empty_module_none(tmp_path):
    assert digest(tmp_path, 'def f():\n    """Only a docstring."""\n') == digest(tmp_path, "def f():\n    pass\n")
    assert digest(tmp_path, '"""A package."""\n# and a comment\n') == digest(tmp_path, "")


def program_cache_digest(root):
    code = "from rnn import programs; print(programs.source_digest())"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin"},
                         text=True, capture_output=True, check=True)
    return out.stdout.strip()


def test_rewording_a_graph_module_keeps_the_program_cache(tmp_path):
    """The program cache (rnn.programs) is keyed on the same digest: a docstring edit keeps its entries."""
    root = tmp_path / "copy"
    shutil.copytree(REPO / "rnn", root / "rnn", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "workflow/schemas", root / "workflow/schemas")
    before = program_cache_digest(root)
    compiled = root / "rnn/compiled.py"
    text = compiled.read_text()
    compiled.write_text(text.replace('"""', '"""Reworded. ', 1) + "\n# a comment\n")
    assert program_cache_digest(root) == before
    compiled.write_text(text + "\nEDITED = 1\n")
    assert program_cache_digest(root) != before
