"""Make filter_plugins/ importable (Ansible loads it by path; the tests import it by name)."""
import os
import sys

FILTER_PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                              "filter_plugins")
if FILTER_PLUGINS not in sys.path:
    sys.path.insert(0, os.path.abspath(FILTER_PLUGINS))
