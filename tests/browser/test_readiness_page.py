"""The readiness page read in a real browser, wide and on a phone: the clusters' answers, the
hosts, the VMs that would not come back by themselves, the alert path — in English and
Portuguese, with nothing wider than the screen at 390 px."""

import os
import time

import pytest

from gateway.adapters.store.readiness import ReadinessStore
from gateway.domain import readiness
from gateway.domain.objects import Disk, HistoryRecord, HostInfo, VmInfo
from gateway.domain.remediation.policy import RemediationConfig

pytestmark = pytest.mark.browser
GB = 1024 * 1024
SHOTS = os.environ.get("ONEHA_SCREENSHOTS")  # a directory: keep the screenshots to look at


def _report(now):
    hosts = [HostInfo(id=i, name=f"node0{i}", state=2, cluster_id=0, cluster="c0",
                      max_mem=8 * GB, mem_usage=(7 if i == 1 else 6) * GB, max_cpu=800,
                      cpu_usage=0) for i in (1, 2, 3)]

    def vm(vid, host, mem=1, persistent=False, tm="shared", shared=True, labels=None):
        return VmInfo(id=vid, name=f"vm-{vid:03d}", state=3, lcm_state=3, cpu=1,
                      memory_mb=mem * 1024, system_tm_mad="shared" if shared else "ssh",
                      history=(HistoryRecord(seq=0, host_id=host, host_name=f"node0{host}"),),
                      disks=(Disk(0, 1, "img", persistent, 1, "ds", tm),), labels=labels or {})

    vms = [vm(i, 1) for i in range(1, 7)] + [
        vm(9, 2, persistent=True), vm(7, 2, persistent=True, tm="ssh", shared=False),
        vm(8, 3, labels={"ONEHA_POLICY": "off"})]
    cfg = RemediationConfig(mode="auto")
    return readiness.assess(readiness.Inputs(hosts=hosts, vms=vms, policy_for=cfg.for_labels,
                                             now=now, monitoring_interval=60.0))


@pytest.mark.parametrize("width", [1280, 390])
def test_the_readiness_page_wide_and_on_a_phone(live_gateway, page, width):
    gw = live_gateway(ingest={"frontends": {"fe1": {"keys": ["k1"]}, "fe2": {"keys": ["k2"]}}})
    now = time.time()
    store = ReadinessStore.of(gw.runtime)
    store.save_report(_report(now - 30).to_dict())
    store.save_heartbeat("fe1", {"at": now - 40, "sent_at": now - 40, "spooled": 0})
    store.note_bad_key("fe2", now - 20)
    store.save_drill("0123456789abcdef", {"id": "0123456789abcdef", "sent_at": now - 100,
                                          "reached_at": now - 99.2, "frontend": "fe1"})
    page.set_viewport_size({"width": width, "height": 900})
    gw.login(page, then="/readiness")
    page.goto(gw.url + "/readiness")
    body = page.locator("main").inner_text()
    assert "NO" in page.locator("#clusters").inner_text()
    assert "node01: 2 VMs without room" in body
    assert "no fencing" in page.locator("#held").inner_text()
    assert "ONEHA_POLICY opts this VM out" in body
    assert "fe2" in page.locator("#heartbeats").inner_text()
    assert "never" in page.locator("#heartbeats").inner_text()  # fe2 never beat
    assert "fe1" in page.locator("#drills").inner_text()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px wider than the screen"
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/readiness-{width}.png", full_page=True)
    page.goto(gw.url + "/language/pt-BR?next=/readiness")
    body = page.locator("main").inner_text()
    assert "Se um host falhasse agora" in body and "sem espaço" in body
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/readiness-{width}-pt.png", full_page=True)
