"""One home per piece of logic (issue 16 item 2): the shared tables are the same objects
everywhere, and no file, production or test, loads code by file path."""
import re
import subprocess
from pathlib import Path

from ansible_collections.mailward.mail.plugins.module_utils import audit, dkim, dns_plan, families, inventory, records

ROOT = Path(__file__).resolve().parents[2]


def test_the_family_table_is_one_object():
    assert dns_plan.MANAGE_TYPES is families.MANAGE_TYPES
    assert audit.TYPE_KINDS is families.MANAGE_TYPES
    assert audit.TXT_MARKERS is families.TXT_MARKERS


def test_the_rsa_bounds_are_one_pair():
    assert inventory.DEFAULT_RSA_BITS == dkim.RSA_DEFAULT_BITS
    assert audit.DKIM_RSA_MIN_BITS == dkim.RSA_MIN_BITS
    assert (records._DKIM_RSA_MIN, records._DKIM_RSA_MAX) == (dkim.RSA_MIN_BITS, dkim.RSA_MAX_BITS)


def test_a_dkim_record_and_the_audit_read_the_same_p_value(rsa2048):
    from cryptography.hazmat.primitives import serialization
    pem = rsa2048.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert records.dkim_record(pem) == "v=DKIM1; k=rsa; p=" + dkim.public_key_value(pem)


def test_mynetworks_brackets_are_read_once():
    assert records.unbracket_network("[::1]/128") == "::1/128"
    assert records.unbracket_network("[2001:db8::]") == "2001:db8::"
    assert records.unbracket_network("127.0.0.0/8") == "127.0.0.0/8"
    assert records.unbracket_network("[::1/128") is None
    assert audit.probe_inside("::1", ["[::1]/128"]) == "::1/128"


# sys.path may gain a package root (collections/, where ansible_collections lives), never a
# directory of loose files; importlib may not load a file by its path.
_BY_PATH = re.compile(r"spec_from_file_location|SourceFileLoader|imp\.load_source|runpy\.run_path")
_SYS_PATH = re.compile(r"sys\.path\.(?:insert|append)\((.*)\)")


def test_nothing_loads_code_by_file_path():
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    this = Path(__file__).resolve().relative_to(ROOT).as_posix()
    offenders = []
    for name in files:
        if name == this:
            continue
        text = (ROOT / name).read_text(encoding="utf-8")
        offenders += ["%s: %s" % (name, m.group(0)) for m in _BY_PATH.finditer(text)]
        offenders += ["%s: %s" % (name, m.group(0)) for m in _SYS_PATH.finditer(text)
                      if "collections" not in m.group(1)]
    assert offenders == []
