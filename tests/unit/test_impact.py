from gateway.domain import impact
from gateway.domain.objects import Disk, HistoryRecord, VmInfo


def _disk(persistent, tm, image):
    return Disk(disk_id=0, image_id=1, image=image, persistent=persistent, datastore_id=1,
                datastore="ds", tm_mad=tm)


BEFORE = VmInfo(id=3, name="web", state=3, lcm_state=16, last_poll=1000,
                history=(HistoryRecord(seq=0, host_id=1, host_name="n1", rstime=100, retime=0),),
                disks=(_disk(True, "shared", "data"), _disk(False, "ssh", "os")))


def _after(rstime):
    return VmInfo(id=3, name="web", state=3, lcm_state=3, history=BEFORE.history + (
        HistoryRecord(seq=1, host_id=2, host_name="n2", stime=1050, rstime=rstime),))


def test_downtime_is_last_poll_to_new_running_section():
    i = impact.vm_impact(BEFORE, _after(1070), "resched", failed_at=1030)
    assert i.downtime_s == 70.0 and i.memory_lost and i.connections_dropped
    assert "RSTIME of history 1" in i.evidence and "last monitoring poll" in i.evidence
    assert "data: persistent on shared storage, only unflushed writes" in i.data_loss_risk
    assert "os: on local storage" in i.data_loss_risk


def test_without_a_poll_the_closed_running_section_counts_and_recreate_loses_changes():
    before = VmInfo(id=3, name="web", state=3, lcm_state=16, history=(
        HistoryRecord(seq=0, host_id=1, host_name="n1", rstime=100, retime=950),))
    i = impact.vm_impact(before, _after(1000), "recreate", failed_at=960)
    assert i.downtime_s == 50.0 and "changes since deploy are lost" in i.data_loss_risk
    assert "RETIME of history 0" in i.evidence
    nothing = VmInfo(id=3, name="web", state=3, lcm_state=16)
    assert impact.vm_impact(nothing, _after(1000), "resched", failed_at=960).downtime_s == 40.0


def test_not_running_yet_has_no_downtime_and_observation_is_the_fallback():
    assert impact.vm_impact(BEFORE, BEFORE, "resume", failed_at=1030).downtime_s is None
    same_host = VmInfo(id=3, name="web", state=3, lcm_state=3, history=BEFORE.history)
    i = impact.vm_impact(BEFORE, same_host, "resume", failed_at=1030, observed_running_at=1012.5)
    assert i.downtime_s == 12.5 and "saw it RUNNING" in i.evidence
    s = impact.summary([i, impact.vm_impact(BEFORE, _after(1070), "resched", 1030)])
    assert s["vms"] == 2 and s["max_downtime_s"] == 70.0
