"""The test suite's fixtures, for the tests of every package (notifications/tests, and each
capability's own tests/ folder): fake providers on 127.0.0.1, the real consumer, users."""

pytest_plugins = ["notifications.tests.fixtures"]
