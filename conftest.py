"""The project's test fixtures are one pytest plugin, tests/plugin.py: every folder gets them."""

pytest_plugins = ["tests.plugin", "tests.hang_report"]
