import pytest

from gateway.domain import objects
from gateway.domain.objects import XmlError

VM_6X = """<VM><ID>42</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME>
<NAME>db-1</NAME><LAST_POLL>1764000000</LAST_POLL><STATE>3</STATE><LCM_STATE>16</LCM_STATE>
<PREV_STATE>3</PREV_STATE><PREV_LCM_STATE>3</PREV_LCM_STATE><RESCHED>0</RESCHED>
<STIME>1763990000</STIME><ETIME>0</ETIME>
<TEMPLATE><CPU>1</CPU><MEMORY>2048</MEMORY><VCPU>2</VCPU><TM_MAD_SYSTEM>shared</TM_MAD_SYSTEM>
<DISK><DISK_ID>0</DISK_ID><IMAGE>ubuntu</IMAGE><IMAGE_ID>3</IMAGE_ID><PERSISTENT>YES</PERSISTENT>
<DATASTORE>default</DATASTORE><DATASTORE_ID>1</DATASTORE_ID><TM_MAD>shared</TM_MAD></DISK>
<DISK><DISK_ID>1</DISK_ID><TYPE>fs</TYPE><TM_MAD>ssh</TM_MAD></DISK>
<NIC><NIC_ID>0</NIC_ID><NETWORK>prod</NETWORK><IP>10.0.0.5</IP><MAC>02:00:0a:00:00:05</MAC></NIC>
</TEMPLATE>
<USER_TEMPLATE><ONEHA_PRIORITY>10</ONEHA_PRIORITY><ONEHA_TEAM>db</ONEHA_TEAM></USER_TEMPLATE>
<HISTORY_RECORDS>
<HISTORY><OID>42</OID><SEQ>0</SEQ><HOSTNAME>node01</HOSTNAME><HID>1</HID><CID>0</CID><DS_ID>0</DS_ID>
<STIME>1763990000</STIME><ETIME>1763995000</ETIME><RSTIME>1763990030</RSTIME><RETIME>1763995000</RETIME></HISTORY>
<HISTORY><OID>42</OID><SEQ>1</SEQ><HOSTNAME>node02</HOSTNAME><HID>2</HID><CID>0</CID><DS_ID>0</DS_ID>
<STIME>1763995010</STIME><ETIME>0</ETIME><RSTIME>1763995040</RSTIME><RETIME>0</RETIME></HISTORY>
</HISTORY_RECORDS></VM>"""


def test_vm_is_read_with_its_last_host_disks_and_labels():
    vm = objects.parse_vm(VM_6X)
    assert (vm.id, vm.name, vm.state_label) == (42, "db-1", "ACTIVE/UNKNOWN")
    assert vm.is_unknown and not vm.is_running
    assert (vm.host_id, vm.host_name) == (2, "node02")
    assert vm.system_ds_shared is True
    assert [d.persistent for d in vm.disks] == [True, False]
    assert [d.on_local_storage for d in vm.disks] == [False, True]
    assert vm.nics[0].ip == "10.0.0.5"
    assert vm.labels == {"ONEHA_PRIORITY": "10", "ONEHA_TEAM": "db"}
    assert vm.memory_mb == 2048


def test_minimal_documents_are_tolerated():
    vm = objects.parse_vm("<VM><ID>7</ID><NAME>x</NAME></VM>")
    assert vm.state is None and vm.host_id is None and vm.system_ds_shared is None
    host = objects.parse_host("<HOST><ID>1</ID><NAME>n</NAME><STATE>3</STATE><NEW_7X_FIELD/></HOST>")
    assert host.is_error and host.vm_ids == ()


def test_namespaced_documents_are_read_like_bare_ones():
    host = objects.parse_host('<HOST xmlns="http://opennebula.org/XMLSchema"><ID>4</ID>'
                              '<NAME>n4</NAME><STATE>8</STATE><VMS><ID>1</ID><ID>2</ID></VMS></HOST>')
    assert host.id == 4 and host.in_maintenance and host.vm_ids == (1, 2)


@pytest.mark.parametrize("doc, message", [
    ("<VM><ID>1</ID>", "not well-formed"),
    ('<!DOCTYPE VM [<!ENTITY a "x">]><VM><ID>1</ID><NAME>&a;</NAME></VM>', "forbidden"),
    ("<HOST><ID>1</ID></HOST>", "expected a <VM>"),
    ("<VM><NAME>no id</NAME></VM>", "no integer <ID>"),
])
def test_unusable_documents_are_refused_with_a_reason(doc, message):
    with pytest.raises(XmlError, match=message):
        objects.parse_vm(doc)


def test_pools_are_read_entry_by_entry():
    pool = objects.parse_host_pool("<HOST_POOL><HOST><ID>0</ID><NAME>a</NAME><STATE>2</STATE></HOST>"
                                   "<HOST><ID>1</ID><NAME>b</NAME><STATE>3</STATE></HOST></HOST_POOL>")
    assert [h.state_label for h in pool] == ["MONITORED", "ERROR"]
