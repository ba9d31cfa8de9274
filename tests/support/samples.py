"""Realistic HOST and VM documents as oned passes them to a hook ($TEMPLATE: no namespace, no XML
declaration), for the ingest tests and benches. tests/unit/test_hook_events_xml.py proves them
valid against OpenNebula 7.4's XSDs."""

from __future__ import annotations

import base64


def _c(value: object) -> str:
    return f"<![CDATA[{value}]]>"


def host_xml(id: int = 7, name: str = "node07", state: int = 3, *, cluster_id: int = 100,
             cluster: str = "production", vm_ids: tuple[int, ...] = (42, 43),
             mon_time: int = 1764092300, template_extra: dict[str, str] | None = None) -> str:
    template = {"ARCH": "x86_64", "CPUSPEED": "2400", "HOSTNAME": name, "HYPERVISOR": "kvm",
                "IM_MAD": "kvm", "KVM_CPU_MODEL": "host-passthrough", "MODELNAME": "AMD EPYC 7313",
                "ONEHA_TEAM": "infra", "ONEHA_RACK": "r12", "RESERVED_CPU": "", "RESERVED_MEM": "",
                "VERSION": "7.4.0", "VM_MAD": "kvm"}
    template.update(template_extra or {})
    tpl = "".join(f"<{k}>{_c(v)}</{k}>" for k, v in template.items())
    vms = "".join(f"<ID>{i}</ID>" for i in vm_ids)
    cores = "".join(f"<CORE><CPUS>{2 * c},{2 * c + 1}</CPUS><DEDICATED>NO</DEDICATED><FREE>2</FREE>"
                    f"<ID>{c}</ID></CORE>" for c in range(4))
    return (
        f"<HOST><ID>{id}</ID><NAME>{name}</NAME><STATE>{state}</STATE><PREV_STATE>2</PREV_STATE>"
        f"<IM_MAD>{_c('kvm')}</IM_MAD><VM_MAD>{_c('kvm')}</VM_MAD><CLUSTER_ID>{cluster_id}</CLUSTER_ID>"
        f"<CLUSTER>{cluster}</CLUSTER><HOST_SHARE><MEM_USAGE>4194304</MEM_USAGE><CPU_USAGE>200</CPU_USAGE>"
        "<TOTAL_MEM>65859524</TOTAL_MEM><TOTAL_CPU>800</TOTAL_CPU><MAX_MEM>65859524</MAX_MEM>"
        "<MAX_CPU>800</MAX_CPU><RUNNING_VMS>2</RUNNING_VMS><VMS_THREAD>1</VMS_THREAD><DATASTORES>"
        "<DISK_USAGE>0</DISK_USAGE><DS><FREE_MB>801536</FREE_MB><ID>100</ID><TOTAL_MB>953869</TOTAL_MB>"
        "<USED_MB>152333</USED_MB></DS><FREE_DISK>801536</FREE_DISK><MAX_DISK>953869</MAX_DISK>"
        "<USED_DISK>152333</USED_DISK></DATASTORES><PCI_DEVICES/><NUMA_NODES><NODE>" + cores +
        "<MEMORY><DISTANCE>0</DISTANCE><TOTAL>65859524</TOTAL><USAGE>4194304</USAGE></MEMORY>"
        "<NODE_ID>0</NODE_ID></NODE></NUMA_NODES></HOST_SHARE>"
        f"<VMS>{vms}</VMS><TEMPLATE>{tpl}</TEMPLATE>"
        f"<MONITORING><TIMESTAMP>{mon_time}</TIMESTAMP><ID>{id}</ID><CAPACITY><FREE_CPU>600</FREE_CPU>"
        "<FREE_MEMORY>61665220</FREE_MEMORY><USED_CPU>200</USED_CPU><USED_MEMORY>4194304</USED_MEMORY>"
        "</CAPACITY><SYSTEM><NETRX>912345678</NETRX><NETTX>812345678</NETTX></SYSTEM></MONITORING></HOST>"
    )


def _history(vm_id: int, seq: int, host: str, hid: int, stime: int, etime: int, action: int) -> str:
    return (
        f"<HISTORY><OID>{vm_id}</OID><SEQ>{seq}</SEQ><HOSTNAME>{host}</HOSTNAME><HID>{hid}</HID>"
        f"<CID>100</CID><STIME>{stime}</STIME><ETIME>{etime}</ETIME><VM_MAD>{_c('kvm')}</VM_MAD>"
        f"<TM_MAD>{_c('ceph')}</TM_MAD><DS_ID>100</DS_ID><PLAN_ID>-1</PLAN_ID><ACTION_ID>-1</ACTION_ID>"
        f"<PSTIME>{stime}</PSTIME><PETIME>{stime + 20}</PETIME><RSTIME>{stime + 20}</RSTIME>"
        f"<RETIME>{etime}</RETIME><ESTIME>0</ESTIME><EETIME>0</EETIME><ACTION>{action}</ACTION>"
        f"<UID>0</UID><GID>0</GID><REQUEST_ID>{1000 + seq}</REQUEST_ID></HISTORY>")


def _disk(disk_id: int, image: str, image_id: int, persistent: bool, size: int) -> str:
    attrs = {"ALLOW_ORPHANS": "YES", "CEPH_HOST": "ceph-mon1:6789 ceph-mon2:6789 ceph-mon3:6789",
             "CEPH_SECRET": "7ebb2445-e96e-44c6-b7c7-07dc7a50f311", "CEPH_USER": "libvirt",
             "CLONE": "NO" if persistent else "YES", "CLONE_TARGET": "SELF", "CLUSTER_ID": "100",
             "DATASTORE": "ceph_img", "DATASTORE_ID": "101", "DEV_PREFIX": "vd",
             "DISK_ID": disk_id, "DISK_SNAPSHOT_TOTAL_SIZE": "0", "DISK_TYPE": "RBD",
             "DRIVER": "raw", "FORMAT": "raw", "IMAGE": image, "IMAGE_ID": image_id,
             "IMAGE_STATE": "2", "IMAGE_UNAME": "oneadmin", "LN_TARGET": "NONE",
             "ORIGINAL_SIZE": size, "PERSISTENT": "YES" if persistent else "NO",
             "POOL_NAME": "one", "READONLY": "NO", "SAVE": "YES" if persistent else "NO",
             "SIZE": size, "SOURCE": f"one/one-{image_id}", "TARGET": f"vd{'abcd'[disk_id]}",
             "TM_MAD": "ceph", "TYPE": "RBD"}
    return "<DISK>" + "".join(f"<{k}>{_c(v)}</{k}>" for k, v in attrs.items()) + "</DISK>"


def _nic(nic_id: int, vm_id: int, network: str, net_id: int, octet: int) -> str:
    ip = f"10.{net_id}.{vm_id // 250}.{vm_id % 250 + 2}"
    attrs = {"AR_ID": "0", "BRIDGE": f"br{net_id}", "BRIDGE_TYPE": "linux", "CLUSTER_ID": "100",
             "FILTER_IP_SPOOFING": "YES", "FILTER_MAC_SPOOFING": "YES", "IP": ip,
             "MAC": f"02:00:0a:{net_id:02x}:{vm_id // 250:02x}:{octet:02x}", "MODEL": "virtio",
             "NAME": f"NIC{nic_id}", "NETWORK": network, "NETWORK_ID": net_id,
             "NETWORK_UNAME": "oneadmin", "NIC_ID": nic_id, "SECURITY_GROUPS": "0",
             "TARGET": f"one-{vm_id}-{nic_id}", "VN_MAD": "bridge"}
    return "<NIC>" + "".join(f"<{k}>{_c(v)}</{k}>" for k, v in attrs.items()) + "</NIC>"


_IN_CLUSTER = '("CLUSTERS/ID" @> 100)'


def vm_xml(id: int = 42, name: str | None = None, state: int = 3, lcm_state: int = 16, *,
           host: str = "node07", host_id: int = 7, last_poll: int = 1764092300,
           owner: str = "alice", group: str = "webteam",
           user_template: dict[str, str] | None = None) -> str:
    """A VM as `onevm show -x` / $TEMPLATE gives it: ~8 KB with two disks, two NICs, context,
    three history records (deployed on node03, migrated to node05, then to `host`)."""
    name = name or f"web-{id}"
    user = {"DESCRIPTION": "Frontend web server of the shop (nginx + php-fpm)",
            "LOGO": "images/logos/ubuntu.png", "ONEHA_TEAM": "web", "ONEHA_TIER": "gold",
            "SCHED_REQUIREMENTS": "HYPERVISOR=kvm"}
    user.update(user_template or {})
    context = {"DISK_ID": "2", "ETH0_DNS": "10.0.0.53 10.0.0.54", "ETH0_GATEWAY": "10.0.0.1",
               "ETH0_IP": f"10.0.{id // 250}.{id % 250 + 2}", "ETH0_MASK": "255.255.0.0",
               "ETH0_MTU": "1500", "ETH0_NETWORK": "10.0.0.0", "NETWORK": "YES",
               "SET_HOSTNAME": name, "SSH_PUBLIC_KEY": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG"
               "b8Jq0n2Yj7pH1x9m3kL5rT0vW8sQ4uE6aZ2cF9dN1hK ops@example.com",
               "TARGET": "hdc", "TOKEN": "YES"}
    tpl = (
        f"<AUTOMATIC_DS_REQUIREMENTS>{_c(_IN_CLUSTER)}</AUTOMATIC_DS_REQUIREMENTS>"
        f"<AUTOMATIC_NIC_REQUIREMENTS>{_c(_IN_CLUSTER)}</AUTOMATIC_NIC_REQUIREMENTS>"
        f"<AUTOMATIC_REQUIREMENTS>{_c('(CLUSTER_ID = 100) & !(PUBLIC_CLOUD = YES) & !(PIN_POLICY = PINNED)')}"
        "</AUTOMATIC_REQUIREMENTS>"
        "<CONTEXT>" + "".join(f"<{k}>{_c(v)}</{k}>" for k, v in context.items()) + "</CONTEXT>"
        f"<CPU>{_c('1')}</CPU>"
        + _disk(0, "ubuntu-24.04-web", 12, True, 20480) + _disk(1, "web-data", 31, True, 102400)
        + f"<GRAPHICS><LISTEN>{_c('0.0.0.0')}</LISTEN><PORT>{_c(5900 + id)}</PORT>"
        f"<TYPE>{_c('VNC')}</TYPE></GRAPHICS><MEMORY>{_c('4096')}</MEMORY>"
        + _nic(0, id, "prod-net", 0, 1) + _nic(1, id, "backend-net", 1, 2)
        + f"<OS><ARCH>{_c('x86_64')}</ARCH><BOOT>{_c('disk0')}</BOOT></OS>"
        f"<TEMPLATE_ID>{_c('3')}</TEMPLATE_ID><TM_MAD_SYSTEM>{_c('ceph')}</TM_MAD_SYSTEM>"
        f"<VCPU>{_c('2')}</VCPU><VMID>{_c(id)}</VMID>")
    history = (_history(id, 0, "node03", 3, 1764000010, 1764030000, 2)
               + _history(id, 1, "node05", 5, 1764030000, 1764050000, 2)
               + _history(id, 2, host, host_id, 1764050000, 0, 0))
    return (
        f"<VM><ID>{id}</ID><UID>2</UID><GID>101</GID><UNAME>{owner}</UNAME><GNAME>{group}</GNAME>"
        f"<NAME>{name}</NAME><PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A>"
        "<GROUP_U>0</GROUP_U><GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A><OTHER_U>0</OTHER_U>"
        f"<OTHER_M>0</OTHER_M><OTHER_A>0</OTHER_A></PERMISSIONS><LAST_POLL>{last_poll}</LAST_POLL>"
        f"<STATE>{state}</STATE><LCM_STATE>{lcm_state}</LCM_STATE><PREV_STATE>3</PREV_STATE>"
        "<PREV_LCM_STATE>3</PREV_LCM_STATE><RESCHED>0</RESCHED><STIME>1764000000</STIME>"
        f"<ETIME>0</ETIME><DEPLOY_ID>one-{id}</DEPLOY_ID>"
        f"<MONITORING><CPU>{_c('3.02')}</CPU><DISKRDBYTES>{_c('981234567')}</DISKRDBYTES>"
        f"<DISKRDIOPS>{_c('40213')}</DISKRDIOPS><DISKWRBYTES>{_c('1771234567')}</DISKWRBYTES>"
        f"<DISKWRIOPS>{_c('90321')}</DISKWRIOPS><ID>{_c(id)}</ID><MEMORY>{_c('3931648')}</MEMORY>"
        f"<NETRX>{_c('18446744')}</NETRX><NETTX>{_c('9223372')}</NETTX>"
        f"<TIMESTAMP>{_c(last_poll)}</TIMESTAMP></MONITORING><SCHED_ACTIONS/>"
        f"<TEMPLATE>{tpl}</TEMPLATE>"
        "<USER_TEMPLATE>" + "".join(f"<{k}>{_c(v)}</{k}>" for k, v in user.items()) + "</USER_TEMPLATE>"
        f"<HISTORY_RECORDS>{history}</HISTORY_RECORDS>"
        "<BACKUPS><BACKUP_CONFIG/><BACKUP_IDS/></BACKUPS></VM>"
    )


def b64(xml: str) -> str:
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")
