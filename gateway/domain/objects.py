"""What oneha reads of OpenNebula's HOST and VM documents — tolerantly.

OpenNebula 6.x and 7.x differ in many details of their XML; oneha reads only the fields it needs,
treats every one of them as optional and never validates the whole 7.4 shape. The same reader is
used for a hook's `$TEMPLATE`, for `one.host.info`/`one.vm.info` answers and for pool entries.
Untrusted input: DTDs and entities are refused (defusedxml), see `parse_xml`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from . import states

# Datastore transfer drivers whose files live only on the host: a VM on them cannot be moved
# off a dead host, and its changes since deploy are lost when it is recreated.
LOCAL_TM_MADS = frozenset({"ssh", "local", "fs_lvm_ssh", "dummy_local"})


class XmlError(ValueError):
    """The document is not usable: not well-formed, forbidden constructs, or the wrong root."""


def parse_xml(text: str | bytes, expect: str | tuple[str, ...] | None = None) -> ET.Element:
    """Parse untrusted XML; refuse DTDs, entity declarations and external references."""
    try:
        if isinstance(text, str) and "<!DOCTYPE" not in text:
            # Fast path (5x): entities and external references can only be declared in a DTD,
            # and a str is parsed as UTF-8 whatever its declaration says, so no DOCTYPE here
            # means nothing to defuse; the C parser then refuses any undefined entity.
            root = ET.fromstring(text)
        else:
            root = DET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XmlError(f"forbidden XML construct: {type(exc).__name__}") from exc
    except ET.ParseError as exc:
        raise XmlError(f"XML is not well-formed: {exc}") from exc
    if not isinstance(text, str) or "xmlns" in text:  # no namespace declared: nothing to strip
        _strip_namespaces(root)
    if expect is not None:
        wanted = (expect,) if isinstance(expect, str) else expect
        if root.tag not in wanted:
            raise XmlError(f"expected a <{'> or <'.join(wanted)}> document, got <{root.tag}>")
    return root


def _strip_namespaces(root: ET.Element) -> None:
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = el.tag.split("}", 1)[1]


def _text(el: ET.Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _int(el: ET.Element | None, path: str) -> int | None:
    value = _text(el, path)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        try:
            return int(float(value))
        except ValueError:
            return None


def _flat_template(el: ET.Element | None) -> dict[str, str]:
    """Single-valued attributes of a TEMPLATE/USER_TEMPLATE (vectors are left out)."""
    if el is None:
        return {}
    return {child.tag: (child.text or "").strip() for child in el if len(child) == 0}


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    seq: int
    host_id: int | None
    host_name: str | None
    cluster_id: int | None = None
    ds_id: int | None = None
    tm_mad: str | None = None
    stime: int | None = None  # placed on the host
    etime: int | None = None  # left the host (0 while current)
    rstime: int | None = None  # running section start (after boot)
    retime: int | None = None
    action: int | None = None
    reason: int | None = None


@dataclass(frozen=True, slots=True)
class Disk:
    disk_id: int | None
    image_id: int | None
    image: str | None
    persistent: bool
    datastore_id: int | None
    datastore: str | None
    tm_mad: str | None
    type: str | None = None
    clone: bool | None = None

    @property
    def on_local_storage(self) -> bool:
        return (self.tm_mad or "").lower() in LOCAL_TM_MADS


@dataclass(frozen=True, slots=True)
class Nic:
    nic_id: int | None
    network: str | None
    ip: str | None
    mac: str | None


@dataclass(frozen=True, slots=True)
class VmInfo:
    id: int
    name: str
    state: int | None
    lcm_state: int | None
    prev_state: int | None = None
    prev_lcm_state: int | None = None
    uid: int | None = None
    gid: int | None = None
    uname: str | None = None
    gname: str | None = None
    last_poll: int | None = None
    stime: int | None = None
    etime: int | None = None
    resched: bool = False
    locked: bool = False
    cpu: float | None = None
    vcpu: int | None = None
    memory_mb: int | None = None
    system_tm_mad: str | None = None
    history: tuple[HistoryRecord, ...] = ()
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)  # USER_TEMPLATE single values

    @property
    def last_history(self) -> HistoryRecord | None:
        return max(self.history, key=lambda h: h.seq) if self.history else None

    @property
    def host_id(self) -> int | None:
        last = self.last_history
        return last.host_id if last else None

    @property
    def host_name(self) -> str | None:
        last = self.last_history
        return last.host_name if last else None

    @property
    def cluster_id(self) -> int | None:
        last = self.last_history
        return last.cluster_id if last else None

    @property
    def state_label(self) -> str:
        return states.vm_state_label(self.state, self.lcm_state)

    @property
    def is_running(self) -> bool:
        return states.vm_is_running(self.state, self.lcm_state)

    @property
    def is_unknown(self) -> bool:
        return states.vm_is_unknown(self.state, self.lcm_state)

    @property
    def is_failed(self) -> bool:
        return states.vm_is_failed(self.state, self.lcm_state)

    @property
    def system_ds_shared(self) -> bool | None:
        """None when OpenNebula did not say (old versions, pool entries without TM_MAD)."""
        tm = self.system_tm_mad or (self.last_history.tm_mad if self.last_history else None)
        if not tm:
            return None
        return tm.lower() not in LOCAL_TM_MADS


@dataclass(frozen=True, slots=True)
class HostInfo:
    id: int
    name: str
    state: int | None
    prev_state: int | None = None
    cluster_id: int | None = None
    cluster: str | None = None
    im_mad: str | None = None
    vm_mad: str | None = None
    vm_ids: tuple[int, ...] = ()
    total_cpu: int | None = None
    total_mem: int | None = None  # KB, as OpenNebula reports it
    cpu_usage: int | None = None
    mem_usage: int | None = None
    max_cpu: int | None = None
    max_mem: int | None = None
    running_vms: int | None = None
    last_mon_time: int | None = None
    labels: dict[str, str] = field(default_factory=dict)  # TEMPLATE single values

    @property
    def state_label(self) -> str:
        return states.host_state_label(self.state)

    @property
    def is_error(self) -> bool:
        return self.state in states.HOST_FAILED_STATES

    @property
    def in_maintenance(self) -> bool:
        return self.state in states.HOST_OPERATOR_STATES


def host_from_element(el: ET.Element) -> HostInfo:
    share = el.find("HOST_SHARE")
    vms = el.find("VMS")
    return HostInfo(
        id=_require_int(el, "ID", "HOST"),
        name=_text(el, "NAME") or "",
        state=_int(el, "STATE"),
        prev_state=_int(el, "PREV_STATE"),
        cluster_id=_int(el, "CLUSTER_ID"),
        cluster=_text(el, "CLUSTER"),
        im_mad=_text(el, "IM_MAD"),
        vm_mad=_text(el, "VM_MAD"),
        vm_ids=tuple(int(i.text) for i in (vms.findall("ID") if vms is not None else [])
                     if i.text and i.text.strip().lstrip("-").isdigit()),
        total_cpu=_int(share, "TOTAL_CPU"),
        total_mem=_int(share, "TOTAL_MEM"),
        cpu_usage=_int(share, "CPU_USAGE"),
        mem_usage=_int(share, "MEM_USAGE"),
        max_cpu=_int(share, "MAX_CPU"),
        max_mem=_int(share, "MAX_MEM"),
        running_vms=_int(share, "RUNNING_VMS"),
        last_mon_time=_int(el, "MONITORING/TIMESTAMP") or _int(el, "LAST_MON_TIME"),
        labels=_flat_template(el.find("TEMPLATE")),
    )


def vm_from_element(el: ET.Element) -> VmInfo:
    template = el.find("TEMPLATE")
    history = tuple(_history_record(h) for h in el.findall("HISTORY_RECORDS/HISTORY"))
    disks = tuple(_disk(d) for d in (template.findall("DISK") if template is not None else []))
    nics = tuple(_nic(n) for n in (template.findall("NIC") if template is not None else []))
    cpu = _text(template, "CPU")
    return VmInfo(
        id=_require_int(el, "ID", "VM"),
        name=_text(el, "NAME") or "",
        state=_int(el, "STATE"),
        lcm_state=_int(el, "LCM_STATE"),
        prev_state=_int(el, "PREV_STATE"),
        prev_lcm_state=_int(el, "PREV_LCM_STATE"),
        uid=_int(el, "UID"),
        gid=_int(el, "GID"),
        uname=_text(el, "UNAME"),
        gname=_text(el, "GNAME"),
        last_poll=_int(el, "LAST_POLL"),
        stime=_int(el, "STIME"),
        etime=_int(el, "ETIME"),
        resched=_int(el, "RESCHED") == 1,
        locked=el.find("LOCK/LOCKED") is not None and _int(el, "LOCK/LOCKED") not in (None, 0),
        cpu=_float(cpu),
        vcpu=_int(template, "VCPU"),
        memory_mb=_int(template, "MEMORY"),
        system_tm_mad=_text(template, "TM_MAD_SYSTEM"),
        history=history,
        disks=disks,
        nics=nics,
        labels=_flat_template(el.find("USER_TEMPLATE")),
    )


def _history_record(h: ET.Element) -> HistoryRecord:
    """One `HISTORY_RECORDS/HISTORY`: a stay of the VM on a host."""
    return HistoryRecord(
        seq=_int(h, "SEQ") or 0,
        host_id=_int(h, "HID"),
        host_name=_text(h, "HOSTNAME"),
        cluster_id=_int(h, "CID"),
        ds_id=_int(h, "DS_ID"),
        tm_mad=_text(h, "TM_MAD"),
        stime=_int(h, "STIME"),
        etime=_int(h, "ETIME"),
        rstime=_int(h, "RSTIME"),
        retime=_int(h, "RETIME"),
        action=_int(h, "ACTION"),
        reason=_int(h, "REASON"),
    )


def _disk(d: ET.Element) -> Disk:
    clone = _text(d, "CLONE")
    return Disk(
        disk_id=_int(d, "DISK_ID"),
        image_id=_int(d, "IMAGE_ID"),
        image=_text(d, "IMAGE"),
        persistent=(_text(d, "PERSISTENT") or "").upper() == "YES",
        datastore_id=_int(d, "DATASTORE_ID"),
        datastore=_text(d, "DATASTORE"),
        tm_mad=_text(d, "TM_MAD"),
        type=_text(d, "TYPE"),
        clone=None if clone is None else clone.upper() == "YES",  # no CLONE: unknown, not "no"
    )


def _nic(n: ET.Element) -> Nic:
    return Nic(nic_id=_int(n, "NIC_ID"), network=_text(n, "NETWORK"), ip=_text(n, "IP"),
               mac=_text(n, "MAC"))


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _require_int(el: ET.Element, path: str, what: str) -> int:
    value = _int(el, path)
    if value is None:
        raise XmlError(f"<{what}> has no integer <{path}>")
    return value


def parse_host(text: str | bytes) -> HostInfo:
    return host_from_element(parse_xml(text, "HOST"))


def parse_vm(text: str | bytes) -> VmInfo:
    return vm_from_element(parse_xml(text, "VM"))


def parse_host_pool(text: str | bytes) -> list[HostInfo]:
    return [host_from_element(h) for h in parse_xml(text, "HOST_POOL").findall("HOST")]


def parse_vm_pool(text: str | bytes) -> list[VmInfo]:
    return [vm_from_element(v) for v in parse_xml(text, "VM_POOL").findall("VM")]
