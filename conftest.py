"""The test suite's fixtures, for the tests of every package (notifications/tests, and each
capability's own tests/ folder): fake providers on 127.0.0.1, the real consumer, users.

The Hypothesis profile (``HYPOTHESIS_PROFILE``: ``ci``, the default, a fixed set; ``long``,
1,000 random examples) is loaded first: a ``@settings`` decorator takes its defaults from the
profile loaded when the test module is imported."""

from notifications.tests.hypothesis_profiles import load_profile

load_profile()

pytest_plugins = ["notifications.tests.fixtures"]
