"""Helpers shared by test files in several folders, imported as ``helpers.<module>``.

``tests/`` is on ``sys.path`` (pytest's ``pythonpath`` setting in pyproject.toml), so any subset of test
files, from any folders, runs in one pytest call. Fixtures stay in the folders' ``conftest.py`` files;
test files never import from ``conftest``.
"""
