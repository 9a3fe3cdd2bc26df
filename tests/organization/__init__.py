"""Tests of the functional-organisation analysis (a package, so that test_cli.py does not clash with tests/explorer/test_cli.py)."""
