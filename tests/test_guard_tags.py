"""The guard tags that scripts/check_guards.py relies on (issue #17): every listed guard is tagged in core/, every
tag is listed, and each removal yields different code that still compiles — so a refactor that drops or moves a
tag fails here, in the ordinary test run, not only when someone runs the script."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from always_on.core.sandbox import REMOVABLE_GUARDS

REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("check_guards", REPO / "scripts" / "check_guards.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check_guards = _script()
SITES = check_guards.find_tags(REPO)
CODE_GUARDS = [g for g in check_guards.GUARDS if g.mode != "sandbox"]


def test_every_guard_is_tagged_once_and_every_tag_is_listed() -> None:
    assert sorted(SITES) == sorted(g.name for g in CODE_GUARDS)
    assert {g.name for g in check_guards.GUARDS if g.mode == "sandbox"} == set(REMOVABLE_GUARDS)
    assert len({g.name for g in check_guards.GUARDS}) == len(check_guards.GUARDS)


@pytest.mark.parametrize("guard", CODE_GUARDS, ids=[g.name for g in CODE_GUARDS])
def test_each_removal_changes_the_code_and_still_compiles(guard) -> None:
    site = SITES[guard.name]
    original = site.file.read_text(encoding="utf-8")
    mutant = check_guards.mutate(original, site.line, guard.mode, guard.name)
    assert mutant != original
    compile(mutant, str(site.file), "exec")
    assert guard.tests and all((REPO / t.split("::")[0]).is_file() for t in guard.tests)


def test_a_tag_that_does_not_fit_its_mode_is_refused() -> None:
    source = "def f(x):\n    # guard: g\n    return x\n"
    with pytest.raises(check_guards.TagError, match="needs an `if`"):
        check_guards.mutate(source, 3, "never", "g")
    assert "pass  # guard g removed" in check_guards.mutate(source, 3, "skip", "g")
    with pytest.raises(check_guards.TagError, match="not a single dictionary entry"):
        check_guards.mutate(source, 3, "entry", "g")
