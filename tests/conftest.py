"""Test-suite set-up: ``tests/`` is on ``sys.path`` (``pythonpath`` in pyproject.toml), so the helpers
that build toy models and cells are imported as ``toy_models`` and ``helpers.<module>`` by every test
directory. Fixtures live in the folders' ``conftest.py`` files; test files never import ``conftest``."""
