"""Test-only third-party dendrobench plugin (see tests/test_third_party_plugin.py)."""
