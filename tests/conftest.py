"""Test-suite set-up: ``tests/`` is on ``sys.path`` (pytest puts a conftest's directory there), so the
helpers that build toy models and cells are imported as ``toy_models`` by every test directory."""
