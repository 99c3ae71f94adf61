"""Hypothesis profiles: how many examples property tests run, and whether they are random.

- ``ci`` (the default): a fixed set. ``derandomize`` makes every run draw the same examples,
  so CI is repeatable and a red build is reproduced locally by running the test again.
- ``long``: 1,000 random examples (a new set every run), for a hunt before a release or
  after a change to delivery: ``HYPOTHESIS_PROFILE=long make test`` (or pytest).

Tests leave ``max_examples`` to the profile. ``conftest.py`` loads the profile that
``HYPOTHESIS_PROFILE`` names (``ci`` when unset) before the test modules are imported: a
``@settings`` decorator takes its defaults from the profile loaded when it runs.
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILE_VARIABLE = "HYPOTHESIS_PROFILE"
DEFAULT_PROFILE = "ci"

settings.register_profile(
    "ci",
    max_examples=600,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
)
settings.register_profile(
    "long",
    max_examples=1_000,
    derandomize=False,
    deadline=None,
    print_blob=True,
)


def load_profile() -> str:
    """Load the profile ``HYPOTHESIS_PROFILE`` names (``ci`` when unset); returns its name.

    Raises ``hypothesis.errors.InvalidArgument`` for a name no profile has.
    """
    name = os.environ.get(PROFILE_VARIABLE) or DEFAULT_PROFILE
    settings.load_profile(name)
    return name
