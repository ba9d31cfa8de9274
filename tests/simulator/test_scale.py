"""A 500-VM cloud answers whole pools correctly (speed: `python -m simulator.bench`)."""

from gateway.domain.objects import parse_vm_pool
from simulator import HostSpec

from .conftest import client, recording_client


def test_500_vm_pool(make_sim, schemas):
    hosts = [HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in range(25)]
    sim = make_sim(hosts=hosts, vms=500, monitoring_interval=0.5)
    one, rec = recording_client(sim.endpoints[0], sim.session)
    pool = one.vmpool.info(-2, -1, -1, -1)
    assert [v.ID for v in pool.VM] == list(range(500))
    assert all((v.STATE, v.LCM_STATE) == (3, 3) for v in pool.VM)
    xml = rec.answers[-1][1]
    schemas.assert_valid(xml, "vm_pool.xsd")
    vms = parse_vm_pool(xml)  # oneha's own reader agrees
    assert len({v.host_id for v in vms}) == 25
    hosts = client(sim.endpoints[1], sim.session).hostpool.info().HOST
    assert sum(len(h.VMS.ID) for h in hosts) == 500
    # the scheduler spread them: striping leaves no host empty or overfull
    assert max(len(h.VMS.ID) for h in hosts) - min(len(h.VMS.ID) for h in hosts) <= 1


def test_initial_placement_respects_capacity(make_sim):
    # default hosts (8 cores): 20 one-core VMs on 2 hosts leave 4 PENDING, as oned would
    sim = make_sim(hosts=2, vms=20)
    one = client(sim.endpoints[0], sim.session)
    states = [v.STATE for v in one.vmpool.info(-2, -1, -1, -1).VM]
    assert states.count(3) == 16 and states.count(1) == 4
