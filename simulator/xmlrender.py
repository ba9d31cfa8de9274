"""OpenNebula XML documents, shaped as oned writes them (no namespace, no declaration).

Element order follows the XSDs in shared/opennebula/xsd (they are `xs:sequence`s); template
values are CDATA like oned's Template::to_xml. Every function returns a `str`.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from .model import Host, Vm, History

VM_PERMISSIONS = ("<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A>"
                  "<GROUP_U>0</GROUP_U><GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A>"
                  "<OTHER_U>0</OTHER_U><OTHER_M>0</OTHER_M><OTHER_A>0</OTHER_A></PERMISSIONS>")


DS_REQUIREMENTS = '("CLUSTERS/ID" @> 0)'
REQUIREMENTS = "(CLUSTER_ID = 0) & !(PUBLIC_CLOUD = YES)"


def cdata(value: object) -> str:
    text = str(value)
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def tag(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def ctag(name: str, value: object) -> str:
    return f"<{name}>{cdata(value)}</{name}>"


# ---------------------------------------------------------------------------- hosts

def host_xml(host: Host, vms: dict[int, Vm], now: int) -> str:
    mem_usage = cpu_usage = 0
    for vid in host.vm_ids:
        vm = vms[vid]
        mem_usage += vm.memory_mb * 1024
        cpu_usage += int(round(vm.cpu * 100))
    total_mem = host.memory_mb * 1024
    vm_ids = "".join(f"<ID>{i}</ID>" for i in sorted(host.vm_ids))
    disk_total = 512000
    disk_used = sum(d.size_mb for vid in host.vm_ids for d in vms[vid].disks)
    monitoring = "<MONITORING/>"
    if host.last_monitored:
        used_cpu = min(cpu_usage // 2, host.cpu)
        used_mem = min(mem_usage // 2 + 1048576, total_mem)
        monitoring = (
            f"<MONITORING><TIMESTAMP>{host.last_monitored}</TIMESTAMP><ID>{host.id}</ID>"
            f"<CAPACITY><FREE_CPU>{host.cpu - used_cpu}</FREE_CPU>"
            f"<FREE_MEMORY>{total_mem - used_mem}</FREE_MEMORY>"
            f"<USED_CPU>{used_cpu}</USED_CPU><USED_MEMORY>{used_mem}</USED_MEMORY></CAPACITY>"
            f"<SYSTEM><NETRX>{host.last_monitored % 100000 * 1500}</NETRX>"
            f"<NETTX>{host.last_monitored % 100000 * 900}</NETTX></SYSTEM></MONITORING>")
    return (
        f"<HOST><ID>{host.id}</ID>{tag('NAME', host.name)}<STATE>{host.state}</STATE>"
        f"<PREV_STATE>{host.prev_state}</PREV_STATE><IM_MAD>kvm</IM_MAD><VM_MAD>kvm</VM_MAD>"
        f"<CLUSTER_ID>{host.cluster_id}</CLUSTER_ID>{tag('CLUSTER', host.cluster)}"
        f"<HOST_SHARE><MEM_USAGE>{mem_usage}</MEM_USAGE><CPU_USAGE>{cpu_usage}</CPU_USAGE>"
        f"<TOTAL_MEM>{total_mem}</TOTAL_MEM><TOTAL_CPU>{host.cpu}</TOTAL_CPU>"
        f"<MAX_MEM>{total_mem}</MAX_MEM><MAX_CPU>{host.cpu}</MAX_CPU>"
        f"<RUNNING_VMS>{len(host.vm_ids)}</RUNNING_VMS><VMS_THREAD>1</VMS_THREAD>"
        f"<DATASTORES><DISK_USAGE>0</DISK_USAGE><DS><FREE_MB>{disk_total - disk_used}</FREE_MB>"
        f"<ID>100</ID><TOTAL_MB>{disk_total}</TOTAL_MB><USED_MB>{disk_used}</USED_MB></DS>"
        f"<FREE_DISK>{disk_total - disk_used}</FREE_DISK><MAX_DISK>{disk_total}</MAX_DISK>"
        f"<USED_DISK>{disk_used}</USED_DISK></DATASTORES>"
        f"<PCI_DEVICES/><NUMA_NODES/></HOST_SHARE>"
        f"<VMS>{vm_ids}</VMS>"
        f"<TEMPLATE>{ctag('ARCH', 'x86_64')}{ctag('CPUSPEED', '2400')}"
        f"{ctag('HOSTNAME', host.name)}{ctag('HYPERVISOR', 'kvm')}{ctag('IM_MAD', 'kvm')}"
        f"{ctag('MODELNAME', 'Simulated CPU')}{ctag('RESERVED_CPU', '')}"
        f"{ctag('RESERVED_MEM', '')}{ctag('VERSION', '7.4.0')}{ctag('VM_MAD', 'kvm')}</TEMPLATE>"
        f"{monitoring}</HOST>")


def host_pool_xml(hosts: list[Host], vms: dict[int, Vm], now: int) -> str:
    return "<HOST_POOL>" + "".join(host_xml(h, vms, now) for h in hosts) + "</HOST_POOL>"


# ---------------------------------------------------------------------------- VMs

def _disk_xml(vm: Vm) -> str:
    parts = []
    for d in vm.disks:
        ds_id, ds_name, tm = d.ds
        target = "vd" + chr(ord("a") + d.disk_id)
        # A persistent image is used in place; a non-persistent one is a fresh clone per
        # deployment (SOURCE changes when the VM is recreated).
        source = (f"/var/lib/one/datastores/{ds_id}/{d.image_id:032x}" if d.persistent
                  else f"/var/lib/one/datastores/{ds_id}/{d.image_id:032x}.{vm.id}.{d.generation}")
        inner = (
            f"{ctag('ALLOW_ORPHANS', 'FORMAT')}{ctag('CLONE', 'NO' if d.persistent else 'YES')}"
            f"{ctag('CLONE_TARGET', 'SYSTEM')}{ctag('CLUSTER_ID', '0')}"
            f"{ctag('DATASTORE', ds_name)}{ctag('DATASTORE_ID', ds_id)}{ctag('DEV_PREFIX', 'vd')}"
            f"{ctag('DISK_ID', d.disk_id)}{ctag('DISK_SNAPSHOT_TOTAL_SIZE', 0)}"
            f"{ctag('DISK_TYPE', 'FILE')}{ctag('DRIVER', 'qcow2')}{ctag('FORMAT', 'qcow2')}"
            f"{ctag('IMAGE', d.image)}{ctag('IMAGE_ID', d.image_id)}"
            f"{ctag('IMAGE_STATE', 8 if d.persistent else 2)}{ctag('IMAGE_UNAME', 'oneadmin')}"
            f"{ctag('LN_TARGET', 'NONE')}{ctag('ORIGINAL_SIZE', d.size_mb)}"
            f"{ctag('PERSISTENT', 'YES' if d.persistent else 'NO')}{ctag('READONLY', 'NO')}"
            f"{ctag('SAVE', 'YES' if d.persistent else 'NO')}{ctag('SIZE', d.size_mb)}"
            f"{ctag('SOURCE', source)}{ctag('TARGET', target)}{ctag('TM_MAD', tm)}"
            f"{ctag('TYPE', 'FILE')}")
        parts.append(f"<DISK>{inner}</DISK>")
    return "".join(parts)


def _nic_xml(vm: Vm) -> str:
    return "".join(
        f"<NIC>{ctag('AR_ID', 0)}{ctag('BRIDGE', 'br0')}{ctag('IP', n.ip)}{ctag('MAC', n.mac)}"
        f"{ctag('NAME', f'NIC{n.nic_id}')}{ctag('NETWORK', n.network)}"
        f"{ctag('NETWORK_ID', n.network_id)}{ctag('NIC_ID', n.nic_id)}"
        f"{ctag('SECURITY_GROUPS', '0')}{ctag('TARGET', f'one-{vm.id}-{n.nic_id}')}"
        f"{ctag('VN_MAD', 'bridge')}</NIC>"
        for n in vm.nics)


def _user_template(vm: Vm) -> str:
    if not vm.labels:
        return "<USER_TEMPLATE/>"
    return "<USER_TEMPLATE>" + "".join(ctag(k, v) for k, v in vm.labels.items()) + "</USER_TEMPLATE>"


def _vm_monitoring(vm: Vm) -> str:
    if not vm.last_poll:
        return "<MONITORING/>"
    return (f"<MONITORING><CPU>{round(vm.cpu * 12.5, 2)}</CPU><ID>{vm.id}</ID>"
            f"<MEMORY>{vm.memory_mb * 1024 * 3 // 4}</MEMORY><NETRX>{vm.last_poll % 9973 * 100}</NETRX>"
            f"<NETTX>{vm.last_poll % 7919 * 100}</NETTX><TIMESTAMP>{vm.last_poll}</TIMESTAMP>"
            f"</MONITORING>")


def _history_xml(h: History, vm_id: int) -> str:
    return (
        f"<HISTORY><OID>{vm_id}</OID><SEQ>{h.seq}</SEQ>{tag('HOSTNAME', h.hostname)}"
        f"<HID>{h.hid}</HID><CID>{h.cid}</CID><STIME>{h.stime}</STIME><ETIME>{h.etime}</ETIME>"
        f"<VM_MAD>{h.vm_mad}</VM_MAD><TM_MAD>{h.tm_mad}</TM_MAD><DS_ID>{h.ds_id}</DS_ID>"
        f"<PLAN_ID>-1</PLAN_ID><ACTION_ID>-1</ACTION_ID>"
        f"<PSTIME>{h.pstime}</PSTIME><PETIME>{h.petime}</PETIME><RSTIME>{h.rstime}</RSTIME>"
        f"<RETIME>{h.retime}</RETIME><ESTIME>{h.estime}</ESTIME><EETIME>{h.eetime}</EETIME>"
        f"<ACTION>{h.action}</ACTION><UID>{h.uid}</UID><GID>{h.gid}</GID>"
        f"<REQUEST_ID>{h.request_id}</REQUEST_ID></HISTORY>")


def _history_short_xml(h: History, vm_id: int) -> str:
    return (
        f"<HISTORY><OID>{vm_id}</OID><SEQ>{h.seq}</SEQ>{tag('HOSTNAME', h.hostname)}"
        f"<HID>{h.hid}</HID><CID>{h.cid}</CID><DS_ID>{h.ds_id}</DS_ID>"
        f"<VM_MAD>{h.vm_mad}</VM_MAD><TM_MAD>{h.tm_mad}</TM_MAD><ACTION>{h.action}</ACTION>"
        f"</HISTORY>")


def _lock(vm: Vm) -> str:
    if vm.lock is None:
        return ""
    level, owner, when = vm.lock
    return (f"<LOCK><LOCKED>{level}</LOCKED><OWNER>{owner}</OWNER><TIME>{when}</TIME>"
            f"<REQ_ID>-1</REQ_ID></LOCK>")


def _head(vm: Vm) -> str:
    u = vm.owner
    return (f"<ID>{vm.id}</ID><UID>{u.id}</UID><GID>{u.gid}</GID>{tag('UNAME', u.name)}"
            f"{tag('GNAME', u.gname)}{tag('NAME', vm.name)}")


def _cached(vm: Vm, kind: str, build) -> str:
    key = (kind, tuple(d.generation for d in vm.disks))
    text = vm.render_cache.get(key)
    if text is None:
        text = vm.render_cache[key] = build(vm)
    return text


def _template_full(vm: Vm) -> str:
    _, _, tm = vm.system
    context = (f"<CONTEXT>{ctag('DISK_ID', len(vm.disks))}{ctag('ETH0_IP', vm.nics[0].ip)}"
               f"{ctag('NETWORK', 'YES')}{ctag('TARGET', 'hda')}</CONTEXT>") if vm.nics else ""
    return (
        f"<TEMPLATE>{ctag('AUTOMATIC_DS_REQUIREMENTS', DS_REQUIREMENTS)}"
        f"{ctag('AUTOMATIC_REQUIREMENTS', REQUIREMENTS)}"
        f"{context}{ctag('CPU', f'{vm.cpu:g}')}{_disk_xml(vm)}"
        f"<GRAPHICS>{ctag('LISTEN', '0.0.0.0')}{ctag('PORT', 5900 + vm.id)}{ctag('TYPE', 'VNC')}"
        f"</GRAPHICS>{ctag('MEMORY', vm.memory_mb)}{_nic_xml(vm)}"
        f"<OS>{ctag('ARCH', 'x86_64')}</OS>{ctag('TEMPLATE_ID', 0)}{ctag('TM_MAD_SYSTEM', tm)}"
        f"{ctag('VCPU', vm.vcpu)}{ctag('VMID', vm.id)}</TEMPLATE>{_user_template(vm)}")


def _template_short(vm: Vm) -> str:
    """VirtualMachine::to_xml_short's TEMPLATE: CPU, MEMORY, VCPU and *reduced* DISK and NIC
    vectors — no PERSISTENT, no TM_MAD — then GRAPHICS."""
    disks = "".join(
        f"<DISK>{tag('DISK_ID', d.disk_id)}{tag('DATASTORE', d.ds[1])}"
        f"{tag('DATASTORE_ID', d.ds[0])}{tag('IMAGE', d.image)}{tag('IMAGE_ID', d.image_id)}"
        f"{tag('SIZE', d.size_mb)}<TYPE>FILE</TYPE>{tag('CLONE', 'NO' if d.persistent else 'YES')}"
        f"<CLONE_TARGET>SYSTEM</CLONE_TARGET><LN_TARGET>NONE</LN_TARGET>"
        f"<DISK_SNAPSHOT_TOTAL_SIZE>0</DISK_SNAPSHOT_TOTAL_SIZE></DISK>"
        for d in vm.disks)
    nics = "".join(
        f"<NIC>{tag('IP', n.ip)}{tag('MAC', n.mac)}{tag('NETWORK', n.network)}"
        f"{tag('NETWORK_ID', n.network_id)}{tag('NIC_ID', n.nic_id)}"
        f"<SECURITY_GROUPS>0</SECURITY_GROUPS></NIC>"
        for n in vm.nics)
    return (f"<TEMPLATE>{tag('CPU', f'{vm.cpu:g}')}{tag('MEMORY', vm.memory_mb)}"
            f"{tag('VCPU', vm.vcpu)}{disks}{nics}"
            f"<GRAPHICS>{ctag('LISTEN', '0.0.0.0')}{ctag('PORT', 5900 + vm.id)}"
            f"{ctag('TYPE', 'VNC')}</GRAPHICS></TEMPLATE>")


# VirtualMachineTemplate::to_xml_short keeps only what Sunstone and the scheduler need.
SHORT_USER_TEMPLATE_KEYS = ("LABELS", "ERROR", "SCHED_MESSAGE", "SCHED_RANK", "SCHED_DS_RANK",
                            "SCHED_REQUIREMENTS", "SCHED_DS_REQUIREMENTS", "USER_PRIORITY")


def _user_template_short(vm: Vm) -> str:
    if not vm.labels:
        return "<USER_TEMPLATE/>"
    kept = "".join(tag(k, vm.labels[k]) for k in SHORT_USER_TEMPLATE_KEYS if vm.labels.get(k))
    return f"<USER_TEMPLATE>{kept}</USER_TEMPLATE>"


def _vm_monitoring_short(vm: Vm) -> str:
    if not vm.last_poll:
        return "<MONITORING/>"
    return (f"<MONITORING><CPU>{round(vm.cpu * 12.5, 2)}</CPU>"
            f"<MEMORY>{vm.memory_mb * 1024 * 3 // 4}</MEMORY></MONITORING>")


def vm_xml(vm: Vm) -> str:
    """one.vm.info / vm.xsd (also what a VM state hook gets as $TEMPLATE)."""
    history = "".join(_history_xml(h, vm.id) for h in vm.history)
    return (
        f"<VM>{_cached(vm, 'head', _head)}{VM_PERMISSIONS}<LAST_POLL>{vm.last_poll}</LAST_POLL>"
        f"<STATE>{vm.state}</STATE><LCM_STATE>{vm.lcm_state}</LCM_STATE>"
        f"<PREV_STATE>{vm.prev_state}</PREV_STATE><PREV_LCM_STATE>{vm.prev_lcm_state}</PREV_LCM_STATE>"
        f"<RESCHED>{vm.resched}</RESCHED><STIME>{vm.stime}</STIME><ETIME>{vm.etime}</ETIME>"
        f"{tag('DEPLOY_ID', vm.deploy_id)}{_lock(vm)}{_vm_monitoring(vm)}<SCHED_ACTIONS/>"
        f"{_cached(vm, 'full', _template_full)}<HISTORY_RECORDS>{history}</HISTORY_RECORDS>"
        f"<BACKUPS><BACKUP_CONFIG/><BACKUP_IDS/></BACKUPS></VM>")


def vm_short_xml(vm: Vm) -> str:
    """A one.vmpool.info entry, as VirtualMachine::to_xml_short writes it: the last history
    record only, reduced disks/NICs, and of USER_TEMPLATE only the scheduler's and Sunstone's
    attributes (so custom labels and disk persistence need one.vm.info or infoextended)."""
    last = vm.last_history
    history = (f"<HISTORY_RECORDS>{_history_short_xml(last, vm.id)}</HISTORY_RECORDS>"
               if last else "<HISTORY_RECORDS/>")
    lock = f"<LOCK><LOCKED>{vm.lock[0]}</LOCKED></LOCK>" if vm.lock else ""
    return (
        f"<VM>{_cached(vm, 'head', _head)}<LAST_POLL>{vm.last_poll}</LAST_POLL>"
        f"<STATE>{vm.state}</STATE><LCM_STATE>{vm.lcm_state}</LCM_STATE>"
        f"<RESCHED>{vm.resched}</RESCHED><STIME>{vm.stime}</STIME><ETIME>{vm.etime}</ETIME>"
        f"{tag('DEPLOY_ID', vm.deploy_id)}{lock}{_cached(vm, 'short', _template_short)}"
        f"{_vm_monitoring_short(vm)}{_cached(vm, 'labels', _user_template_short)}"
        f"{history}</VM>")


# ---------------------------------------------------------------------------- system, raft, zone

def config_xml(monitoring_interval: float, raft: dict[str, int], hooklog_retention: int,
               version_port: int = 2633) -> str:
    # oned.conf keeps whole seconds: a sub-second simulated interval is reported as 1.
    interval = max(1, int(round(monitoring_interval)))
    return (
        "<OPENNEBULA_CONFIGURATION>"
        f"<DEFAULT_AUTH>default</DEFAULT_AUTH>"
        f"<FEDERATION><MASTER_ONED/><MODE>STANDALONE</MODE><SERVER_ID>{raft['SERVER_ID']}"
        f"</SERVER_ID><ZONE_ID>0</ZONE_ID></FEDERATION>"
        f"<HOOK_LOG_CONF><LOG_RETENTION>{hooklog_retention}</LOG_RETENTION></HOOK_LOG_CONF>"
        f"<MONITORING_INTERVAL_DATASTORE>300</MONITORING_INTERVAL_DATASTORE>"
        f"<MONITORING_INTERVAL_HOST>{interval}</MONITORING_INTERVAL_HOST>"
        f"<MONITORING_INTERVAL_MARKET>600</MONITORING_INTERVAL_MARKET>"
        f"<MONITORING_INTERVAL_VM>{interval}</MONITORING_INTERVAL_VM>"
        f"<PORT>{version_port}</PORT>"
        f"<RAFT><BROADCAST_TIMEOUT_MS>{raft['BROADCAST_TIMEOUT_MS']}</BROADCAST_TIMEOUT_MS>"
        f"<ELECTION_TIMEOUT_MS>{raft['ELECTION_TIMEOUT_MS']}</ELECTION_TIMEOUT_MS>"
        f"<LIMIT_PURGE>100000</LIMIT_PURGE><LOG_PURGE_TIMEOUT>60</LOG_PURGE_TIMEOUT>"
        f"<LOG_RETENTION>{raft['LOG_RETENTION']}</LOG_RETENTION>"
        f"<XMLRPC_TIMEOUT_MS>1000</XMLRPC_TIMEOUT_MS></RAFT>"
        "</OPENNEBULA_CONFIGURATION>")


def raft_xml(status: dict[str, int]) -> str:
    keys = ("SERVER_ID", "STATE", "TERM", "VOTEDFOR", "COMMIT", "LOG_INDEX", "LOG_TERM",
            "FEDLOG_INDEX")
    return "<RAFT>" + "".join(f"<{k}>{status[k]}</{k}>" for k in keys) + "</RAFT>"


def zone_xml(zone_id: int, name: str, endpoint: str,
             servers: list[tuple[int, str, str]], root: str = "ZONE") -> str:
    pool = "".join(f"<SERVER>{tag('ENDPOINT', ep)}<ID>{sid}</ID>{tag('NAME', sname)}</SERVER>"
                   for sid, sname, ep in servers)
    return (f"<{root}><ID>{zone_id}</ID>{tag('NAME', name)}<STATE>0</STATE>"
            f"<TEMPLATE>{tag('ENDPOINT', endpoint)}</TEMPLATE>"
            f"<SERVER_POOL>{pool}</SERVER_POOL></{root}>")
