"""Measure what each recovery action costs a VM, on the simulator, and write the operator's guide's
table (docs/guide.en.md and docs/guia.pt-BR.md, between the `recovery-table` markers).

    .venv/bin/python docs/recovery_table.py           # measure, rewrite both tables
    .venv/bin/python docs/recovery_table.py --check   # measure, exit 1 if a table is stale

Each action runs through OpenNebula's XML-RPC API (the simulator's, the same calls oneha makes)
against a VM in the state oneha uses it for; the VM is polled every few milliseconds from the
failure until it is RUNNING again. What the table says is read from that run, not written by
hand: the lifecycle states passed through (a BOOT state means the guest started from its disks:
memory lost, connections dropped), the host it ends on and whether its
non-persistent disks were replaced by fresh copies (data written on them lost). Durations are the
simulator's (monitoring every 0.3 s, prolog 0.1 s, boot 0.2 s) and are given in those units so
they scale to a real cloud: multiply by its monitoring interval, transfer and boot times.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyone

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator import CloudSpec, Simulator  # noqa: E402
from simulator.spec import DiskSpec, HostSpec, VmSpec  # noqa: E402

GUIDES = {"en": ROOT / "docs" / "guide.en.md", "pt-BR": ROOT / "docs" / "guia.pt-BR.md"}
BEGIN, END = "<!-- recovery-table:begin -->", "<!-- recovery-table:end -->"
MONITORING, PROLOG, BOOT = 0.3, 0.1, 0.2
RUNNING_LCM, UNKNOWN_LCM = 3, 16
POLL = 0.005


@dataclass
class Run:
    action: str
    scenario: str
    noticed: float = 0.0  # failure → OpenNebula shows it (UNKNOWN / *_FAILURE)
    action_to_running: float = 0.0
    downtime: float = 0.0  # failure → RUNNING again
    states: list[str] = field(default_factory=list)
    booted: bool = False
    host_changed: bool = False
    disks_replaced: bool = False
    persistent_kept: bool = True
    ips_kept: bool = True


def _ips(one) -> list[str]:
    """The VM's NIC addresses as OpenNebula reports them."""
    nics = one.vm.info(0).TEMPLATE.get("NIC") or []
    return sorted(str(n.get("IP", "")) for n in (nics if isinstance(nics, list) else [nics]))


def _spec(system_ds: str, disks: tuple[DiskSpec, ...]) -> CloudSpec:
    return CloudSpec(hosts=[HostSpec("node01"), HostSpec("node02")],
                     vms=[VmSpec("web", host="node01", system_ds=system_ds, disks=disks)],
                     frontends=1, monitoring_interval=MONITORING, prolog_time=PROLOG,
                     boot_time=BOOT, sched_interval=0.2)


def _wait(sim, pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        vm = sim.vm(0)
        if pred(vm):
            return vm
        time.sleep(POLL)
    raise TimeoutError(f"VM never reached the expected state: {sim.vm(0)['lcm_state_name']}")


def _measure(action: str, scenario: str, system_ds: str, disks, fail, broken, act) -> Run:
    run = Run(action, scenario)
    with Simulator(_spec(system_ds, disks), control_port=None) as sim:
        one = pyone.OneServer(sim.endpoints[0], session=sim.session)
        before = _wait(sim, lambda v: v["lcm_state"] == RUNNING_LCM)
        ips_before = _ips(one)
        t0 = time.monotonic()
        fail(sim)
        failed = _wait(sim, broken)
        t_noticed = time.monotonic()
        act(one, sim)
        t_action = time.monotonic()
        seen = [failed["lcm_state_name"]]
        while True:
            vm = sim.vm(0)
            if vm["lcm_state_name"] != seen[-1]:
                seen.append(vm["lcm_state_name"])
            if vm["lcm_state"] == RUNNING_LCM and vm["state"] == 3:
                break
            if time.monotonic() - t_action > 30:
                raise TimeoutError(f"{action}: not RUNNING after 30 s ({seen})")
            time.sleep(POLL)
        t1 = time.monotonic()
        after = sim.vm(0)
        run.noticed, run.action_to_running, run.downtime = t_noticed - t0, t1 - t_action, t1 - t0
        run.states = seen
        run.booted = any(s.startswith("BOOT") for s in seen[1:])
        run.host_changed = after["host_id"] != failed["host_id"]  # what the action moved
        run.ips_kept = _ips(one) == ips_before
        gens = list(zip(before["disk_generations"], after["disk_generations"], disks))
        run.disks_replaced = any(b != a for b, a, d in gens if not d.persistent)
        run.persistent_kept = all(b == a for b, a, d in gens if d.persistent)
    return run


def measure() -> list[Run]:
    disks = (DiskSpec(persistent=False), DiskSpec(persistent=True))
    # oneha recreates only a VM without persistent images (guards.recreatable)
    local = (DiskSpec(persistent=False, datastore="local"),)

    def crash(sim):
        sim.crash_host(0)

    def unknown(v):
        return v["lcm_state"] == UNKNOWN_LCM

    def resched(one, sim):
        one.vm.action("resched", 0)

    def crash_then_failed_move(sim):
        """The host fails, the VM is moved, and its boot on the new host fails."""
        crash(sim)
        _wait(sim, unknown)
        sim.fail_vm(0, "boot")
        pyone.OneServer(sim.endpoints[0], session=sim.session).vm.action("resched", 0)

    return [
        _measure("resume", "guest hung, host healthy (VM UNKNOWN)", "shared", disks,
                 lambda sim: sim.freeze_vm(0), unknown,
                 lambda one, sim: one.vm.action("resume", 0)),
        _measure("resched", "host failed, shared system datastore", "shared", disks,
                 crash, unknown, resched),
        _measure("recreate", "host failed, local (ssh) system datastore", "local", local,
                 crash, unknown, lambda one, sim: one.vm.recover(0, 4)),
        _measure("retry", "host failed; the move's boot failed (BOOT_*_FAILURE)", "shared",
                 disks, crash_then_failed_move, lambda v: v["lcm_state_name"].endswith("FAILURE"),
                 lambda one, sim: one.vm.recover(0, 2)),
    ]


def _cycles(seconds: float, lang: str) -> str:
    if lang == "en":
        return f"{seconds:.2f} s ({seconds / MONITORING:.1f} cycles)"
    return f"{seconds:.2f} s ({seconds / MONITORING:.1f} ciclos)".replace(".", ",")


TEXT = {
    "en": {
        "head": "| action | measured case | downtime (failure → RUNNING) | of which the action | "
                "states the VM went through | memory state lost? | connections drop? | "
                "data lost? |\n|---|---|---|---|---|---|---|---|",
        "yes_boot": "yes: the guest boots again from its disks",
        "no_boot": "no",
        "conn_boot": "yes (the guest restarted{moved})",
        "moved": "; same IP, another host",
        "moved_new_ip": "; another host, another IP",
        "conn_no": "no",
        "data_fresh": "yes: its disks are fresh copies of their images (everything written "
                      "since the deploy is lost)",
        "data_crash": "only writes the guest had not flushed when it stopped (disks kept, "
                      "crash-consistent)",
        "data_none": "no",
        "foot": "Measured on the simulator by `docs/recovery_table.py` ({when}); monitoring every "
                "{mon} s, prolog {prolog} s, boot {boot} s. A *cycle* is one monitoring interval: "
                "on a real cloud, downtime ≈ cycles to notice × its monitoring interval + oneha's "
                "grace (`remediation.grace_cycles`, 2 cycles by default, 0 here) + transfer "
                "(prolog) + boot.",
    },
    "pt-BR": {
        "head": "| ação | caso medido | indisponibilidade (falha → RUNNING) | dos quais a ação | "
                "estados por que a VM passou | perde o estado da memória? | conexões caem? | "
                "perde dados? |\n|---|---|---|---|---|---|---|---|",
        "yes_boot": "sim: o convidado inicia de novo a partir dos discos",
        "no_boot": "não",
        "conn_boot": "sim (o convidado reiniciou{moved})",
        "moved": "; mesmo IP, outro host",
        "moved_new_ip": "; outro host, outro IP",
        "conn_no": "não",
        "data_fresh": "sim: os discos são cópias novas das imagens (tudo o que foi gravado "
                      "desde o deploy se perde)",
        "data_crash": "só o que o convidado ainda não tinha gravado quando parou (discos mantidos, "
                      "consistentes como após uma queda de energia)",
        "data_none": "não",
        "foot": "Medido no simulador por `docs/recovery_table.py` ({when}); monitoramento a cada "
                "{mon} s, prolog {prolog} s, boot {boot} s. Um *ciclo* é um intervalo de "
                "monitoramento: numa nuvem real, indisponibilidade ≈ ciclos até perceber × o "
                "intervalo de monitoramento + a carência do oneha (`remediation.grace_cycles`, 2 "
                "ciclos por padrão, 0 aqui) + transferência (prolog) + boot.",
    },
}
SCENARIOS_PT = {
    "guest hung, host healthy (VM UNKNOWN)": "convidado travado, host saudável (VM UNKNOWN)",
    "host failed, shared system datastore": "host falhou, datastore de sistema compartilhado",
    "host failed, local (ssh) system datastore": "host falhou, datastore de sistema local (ssh)",
    "host failed; the move's boot failed (BOOT_*_FAILURE)":
        "host falhou; o boot da mudança falhou (BOOT_*_FAILURE)",
}


def table(runs: list[Run], lang: str, when: str) -> str:
    t = TEXT[lang]
    rows = [t["head"]]
    for r in runs:
        scenario = r.scenario if lang == "en" else SCENARIOS_PT[r.scenario]
        memory = t["yes_boot"] if r.booted else t["no_boot"]
        moved = (t["moved"] if r.ips_kept else t["moved_new_ip"]) if r.host_changed else ""
        conns = (t["conn_boot"].format(moved=moved)
                 if r.booted else t["conn_no"])
        data = (t["data_fresh"] if r.disks_replaced else t["data_crash"] if r.booted
                else t["data_none"])
        rows.append(f"| `{r.action}` | {scenario} | {_cycles(r.downtime, lang)} | "
                    f"{_cycles(r.action_to_running, lang)} | {' → '.join(r.states)} | "
                    f"{memory} | {conns} | {data} |")
    rows.append("")
    rows.append(t["foot"].format(when=when, mon=MONITORING, prolog=PROLOG, boot=BOOT))
    return "\n".join(rows)


def rewrite(path: Path, body: str) -> str:
    text = path.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no {BEGIN} … {END} markers")
    return pattern.sub(lambda _: f"{BEGIN}\n{body}\n{END}", text)


def _structure(text: str) -> str:
    """The table without its numbers and date: what --check compares."""
    return re.sub(r"\d+(\.\d+)?|\(\d{4}-\d\d-\d\d\)", "#", text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a guide's table says something the runs do not")
    args = parser.parse_args(argv)
    runs = measure()
    when = time.strftime("%Y-%m-%d", time.gmtime())
    stale = []
    for lang, path in GUIDES.items():
        new = rewrite(path, table(runs, lang, when))
        if args.check:
            if _structure(new) != _structure(path.read_text()):
                stale.append(str(path))
        else:
            path.write_text(new)
    for r in runs:
        print(f"{r.action:9} downtime {r.downtime:.2f}s (action {r.action_to_running:.2f}s, "
              f"noticed {r.noticed:.2f}s) states {' > '.join(r.states)} booted={r.booted} "
              f"moved={r.host_changed} ips_kept={r.ips_kept} fresh_disks={r.disks_replaced}")
    if stale:
        print("stale table (run docs/recovery_table.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
