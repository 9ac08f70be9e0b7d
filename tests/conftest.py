"""Shared by every test: the collection's code is imported by package name (pytest.ini pythonpath)."""
