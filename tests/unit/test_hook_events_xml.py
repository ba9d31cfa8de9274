"""The sample HOST and VM documents (tests/support/samples.py) are what OpenNebula 7.4 would send:
valid against its XSDs (which have a namespace that oned's answers lack: it is added first)."""

from __future__ import annotations

import re
from functools import lru_cache

import pytest

from tests.support.samples import host_xml, vm_xml
from tests.support.xsd import XSD_DIR, with_namespace as _with_namespace


# --- the documents are what OpenNebula 7.4 would send --------------------------------------------

@lru_cache(maxsize=None)
def _schema(name: str):
    xmlschema = pytest.importorskip("xmlschema")
    return xmlschema.XMLSchema(str(XSD_DIR / name))


@pytest.mark.parametrize("xml", [host_xml(), host_xml(8, "node08", 2, vm_ids=())],
                         ids=["host-error", "host-monitored"])
def test_host_samples_are_valid_against_host_xsd(xml):
    _schema("host.xsd").validate(_with_namespace(xml))


@pytest.mark.parametrize("xml", [vm_xml(), vm_xml(7, state=3, lcm_state=3), vm_xml(9, state=8, lcm_state=0)],
                         ids=["vm-unknown", "vm-running", "vm-poweroff"])
def test_vm_samples_are_valid_against_vm_xsd(xml):
    _schema("vm.xsd").validate(_with_namespace(xml))


def test_vm_sample_is_realistically_sized():
    assert 7000 <= len(vm_xml().encode()) <= 9500


def test_an_invalid_document_is_refused_by_the_schema():
    # The validation above can fail: a VM without its required <PERMISSIONS> is not a VM.
    broken = re.sub(r"<PERMISSIONS>.*?</PERMISSIONS>", "", vm_xml())
    with pytest.raises(Exception, match="PERMISSIONS|LAST_POLL"):
        _schema("vm.xsd").validate(_with_namespace(broken))
