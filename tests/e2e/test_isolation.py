"""run_isolated (tests/e2e/conftest.py): a failed assertion in the child fails the test, a
child that keeps crashing fails it too, a passing scenario passes."""

from __future__ import annotations

import faulthandler
import os
import signal

import pytest

from tests.e2e.conftest import run_isolated


def _needs_two(x: int) -> None:
    assert x == 2, "x must be 2"


def _crash() -> None:
    faulthandler.disable()  # a deliberate crash: no traceback dump in the test output
    os.kill(os.getpid(), signal.SIGSEGV)


def test_a_failed_assertion_fails_at_once() -> None:
    with pytest.raises(pytest.fail.Exception, match="x must be 2"):
        run_isolated(_needs_two, 1)


def test_a_passing_scenario_passes() -> None:
    run_isolated(_needs_two, 2)


def test_a_child_that_keeps_crashing_fails() -> None:
    with pytest.raises(pytest.fail.Exception, match="crashed every time"):
        run_isolated(_crash, crashes_allowed=1)
