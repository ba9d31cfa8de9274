"""Hooks as oned + the Hook Execution Manager (onehem-server.rb) handle them.

Parsing and validation follow src/hm/Hook.cc, HookStateHost.cc, HookStateVM.cc, HookAPI.cc and
RMHookAPI.cc (messages verbatim); execution follows onehem-server.rb: COMMAND relative to the
hook base path, ARGUMENTS split on spaces with whole `$TEMPLATE`/`$API` tokens replaced, the
`ARGUMENTS_STDIN` quirk (only "yes", any case, turns stdin on), TIMEOUT, HOOKLOG records with
base64 STDOUT/STDERR. Commands run in a thread pool so the state machine never waits for them.

Which front-end runs a hook: oned raises hook events where they happen and every front-end runs
its own hook manager and HEM (there is no leader check in HookManager.cc, one_hm.rb or
onehem-server.rb). State changes are made by the leader (followers only apply its replicated
log), so state hooks run on the leader; an API hook runs on the front-end that served the call
(Request::execute raises the event after serving it, also when a follower only proxied a write
to the leader, which then raises its own). Each simulated front-end may have its own environment
(`frontend_env`: e.g. its own `ONEHA_HOOK_CONFIG`), so a hook's sender signs as that front-end.
"""

from __future__ import annotations

import base64
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .errors import ApiError, INTERNAL
from .states import HOST_STATE_CODES, LCM_STATE_CODES, VM_STATE_CODES
from .xmlrender import cdata, tag

VM_ON = {  # HookStateVM::parse_template
    "PROLOG": ("ACTIVE", "PROLOG"),
    "RUNNING": ("ACTIVE", "RUNNING"),
    "SHUTDOWN": ("ACTIVE", "EPILOG"),
    "STOP": ("STOPPED", "LCM_INIT"),
    "DONE": ("DONE", "LCM_INIT"),
    "UNKNOWN": ("ACTIVE", "UNKNOWN"),
}
UNSUPPORTED_API_CALLS = frozenset({  # HookAPI.cc unsupported_calls (info calls)
    "one.vm.info", "one.vmpool.info", "one.vmpool.infoextended", "one.template.info",
    "one.templatepool.info", "one.host.info", "one.hostpool.info", "one.group.info",
    "one.grouppool.info", "one.groupquota.info", "one.vn.info", "one.vnpool.info",
    "one.user.info", "one.userpool.info", "one.userquota.info", "one.datastore.info",
    "one.datastorepool.info", "one.image.info", "one.imagepool.info", "one.acl.info",
    "one.vntemplate.info", "one.vntemplatepool.info", "one.cluster.info",
    "one.clusterpool.info", "one.document.info", "one.documentpool.info", "one.zone.info",
    "one.zonepool.info", "one.secgroup.info", "one.secgrouppool.info", "one.vmgroup.info",
    "one.vmgrouppool.info", "one.vrouter.info", "one.vrouterpool.info", "one.market.info",
    "one.marketpool.info", "one.marketapp.info", "one.marketapppool.info", "one.hook.info",
    "one.hookpool.info", "one.hooklog.info", "one.system.version", "one.system.config",
    "one.zone.raftstatus",
})
# What hook.xsd allows inside HOOK/TEMPLATE, in its order. oned keeps other attributes (TIMEOUT,
# custom ones) in the template too; we keep and honour them but leave them out of the XML so
# every answer validates against the schema.
XSD_TEMPLATE_KEYS = ("ARGUMENTS", "ARGUMENTS_STDIN", "CALL", "COMMAND", "LCM_STATE", "REMOTE",
                     "RESOURCE", "STATE")

_TOKEN = re.compile(r"""\s*([A-Za-z_][A-Za-z0-9_\-]*)\s*=\s*("((?:[^"\\]|\\.)*)"|\[|[^\s#]*)""",
                    re.S)


def parse_template(text: str) -> dict[str, str]:
    """OpenNebula template syntax (`KEY = "value"`, unquoted values, `#` comments) or XML.

    Keys are upper-cased as oned does; vector attributes (`KEY = [ ... ]`) are skipped.
    """
    text = text.strip()
    if text.startswith("<"):
        return _parse_xml_template(text)
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        while pos < len(text) and (text[pos].isspace() or text[pos] == ","):
            pos += 1
        if pos >= len(text):
            break
        if text[pos] == "#":
            nl = text.find("\n", pos)
            pos = len(text) if nl < 0 else nl + 1
            continue
        m = _TOKEN.match(text, pos)
        if not m:
            line = text.count("\n", 0, pos) + 1
            raise ApiError(INTERNAL, f"Parse error: syntax error, unexpected token at line {line}")
        key = m.group(1).upper()
        if m.group(2) == "[":
            end = text.find("]", m.end())
            if end < 0:
                raise ApiError(INTERNAL, f"Parse error: unterminated vector attribute {key}")
            pos = end + 1
            continue
        value = m.group(3) if m.group(3) is not None else m.group(2)
        if m.group(3) is not None:
            value = value.replace('\\"', '"')
        out[key] = value
        pos = m.end()
    return out


def _parse_xml_template(text: str) -> dict[str, str]:
    import defusedxml.ElementTree as DET

    try:
        root = DET.fromstring(text, forbid_dtd=True)
    except Exception as exc:  # noqa: BLE001 - any XML problem is the caller's parse error
        raise ApiError(INTERNAL, f"Parse error: {exc}") from exc
    return {child.tag.upper(): (child.text or "").strip() for child in root if len(child) == 0}


@dataclass
class ExecutionRecord:
    hook_id: int
    execution_id: int
    timestamp: int
    arguments: str
    command: str
    stdout: str
    stderr: str
    code: int
    remote_host: str = ""
    retry: bool = False  # a run asked for by one.hook.retry
    server_id: int | None = None  # the front-end whose hook manager ran it


@dataclass
class Hook:
    id: int
    name: str
    type: str  # "state" | "api"
    template: dict[str, str]
    log: list[ExecutionRecord] = field(default_factory=list)
    next_execution: int = 0

    @property
    def resource(self) -> str:
        return self.template.get("RESOURCE", "").upper()

    def matches_host(self, state_name: str) -> bool:
        return self.type == "state" and self.resource == "HOST" and \
            self.template.get("STATE") == state_name

    def matches_vm(self, state_name: str, lcm_name: str) -> bool:
        return (self.type == "state" and self.resource == "VM"
                and self.template.get("STATE") == state_name
                and self.template.get("LCM_STATE") == lcm_name)

    def matches_call(self, method: str) -> bool:
        return self.type == "api" and self.template.get("CALL") == method

    @property
    def arguments_on_stdin(self) -> bool:
        # onehem-server.rb `as_stdin?`: `casecmp('yes') || casecmp('true')` then `.zero?`;
        # casecmp is truthy even on mismatch, so only "yes" (any case) enables stdin.
        value = self.template.get("ARGUMENTS_STDIN")
        return value is not None and value.lower() == "yes"

    @property
    def timeout(self) -> float | None:
        raw = self.template.get("TIMEOUT")
        if raw is None:
            return None
        try:
            seconds = int(float(raw))  # Ruby's to_i: "abc" -> 0, i.e. no timeout
        except ValueError:
            return None
        return seconds if seconds > 0 else None

    def to_xml(self, with_log: bool) -> str:
        tmpl = "".join(f"<{k}>{cdata(self.template[k])}</{k}>"
                       for k in XSD_TEMPLATE_KEYS if k in self.template)
        xml = f"<HOOK><ID>{self.id}</ID>{tag('NAME', self.name)}<TYPE>{self.type}</TYPE>" \
              f"<TEMPLATE>{tmpl}</TEMPLATE>"
        if with_log:
            xml += "<HOOKLOG>" + "".join(record_xml(r) for r in self.log) + "</HOOKLOG>"
        return xml + "</HOOK>"


def record_xml(r: ExecutionRecord) -> str:
    remote = tag("REMOTE_HOST", r.remote_host) if r.remote_host else ""
    return (f"<HOOK_EXECUTION_RECORD><HOOK_ID>{r.hook_id}</HOOK_ID>"
            f"<EXECUTION_ID>{r.execution_id}</EXECUTION_ID><TIMESTAMP>{r.timestamp}</TIMESTAMP>"
            f"{tag('ARGUMENTS', r.arguments)}<EXECUTION_RESULT>{tag('COMMAND', r.command)}"
            f"<STDOUT>{_b64_lines(r.stdout)}</STDOUT><STDERR>{_b64_lines(r.stderr)}</STDERR>"
            f"<CODE>{r.code}</CODE></EXECUTION_RESULT>{remote}"
            f"{'<RETRY>yes</RETRY>' if r.retry else ''}</HOOK_EXECUTION_RECORD>")


def _b64_lines(text: str) -> str:
    # Ruby's Base64.encode64 (not strict): 60-char lines, each ending in a newline.
    return base64.encodebytes(text.encode()).decode()


def build_hook(hook_id: int, template_text: str, existing_names: dict[str, int]) -> Hook:
    """Validate a hook template as RMHookAllocateAPI + HookPool + Hook::insert do."""
    tmpl = parse_template(template_text)
    hk_type = tmpl.get("TYPE", "")
    if hk_type.lower() not in ("state", "api"):
        raise ApiError(INTERNAL, f"Invalid Hook type: {hk_type}")
    name = tmpl.pop("NAME", "")
    if not name.strip():
        raise ApiError(INTERNAL, "Invalid name.")
    if name in existing_names:
        raise ApiError(INTERNAL, f"NAME is already taken by Hook {existing_names[name]}.")
    if not tmpl.get("COMMAND"):
        raise ApiError(INTERNAL, "No COMMAND in template for Hook.")
    remote = tmpl.get("REMOTE", "NO").upper()
    tmpl["REMOTE"] = "YES" if remote == "YES" else "NO"
    del tmpl["TYPE"]
    hk_type = hk_type.lower()
    if hk_type == "state":
        resource = tmpl.get("RESOURCE", "")
        if not resource:
            raise ApiError(INTERNAL, "RESOURCE attribute is required for STATE hooks.")
        resource = resource.upper()
        if resource not in ("VM", "HOST", "IMAGE", "NET"):
            raise ApiError(INTERNAL, f"Invalid resource type: {tmpl['RESOURCE']}")
        tmpl["RESOURCE"] = resource
        if resource == "HOST":
            state = tmpl.get("STATE", "")
            if state.upper() not in HOST_STATE_CODES:  # Host::str_to_state: live states only
                raise ApiError(INTERNAL, f"Invalid STATE: {state}")
            tmpl["STATE"] = state.upper()
        elif resource == "VM":
            on = tmpl.pop("ON", "").upper()
            if on in VM_ON:
                tmpl["STATE"], tmpl["LCM_STATE"] = VM_ON[on]
            elif on == "CUSTOM":
                vm_state = tmpl.get("STATE", "").upper()
                if vm_state not in VM_STATE_CODES:
                    raise ApiError(INTERNAL, f"Wrong STATE: {tmpl.get('STATE', '')}")
                lcm = tmpl.get("LCM_STATE", "").upper()
                if lcm not in LCM_STATE_CODES:
                    raise ApiError(INTERNAL, f"Wrong LCM_STATE: {tmpl.get('LCM_STATE', '')}")
                tmpl["STATE"], tmpl["LCM_STATE"] = vm_state, lcm
            else:
                raise ApiError(INTERNAL, f"Unkown state condition: {on}")  # sic, as oned says
    else:
        call = tmpl.get("CALL", "")
        if not call.startswith("one.") or call in UNSUPPORTED_API_CALLS:
            raise ApiError(INTERNAL, f"API call does not exist or is not supported: {call}")
    return Hook(id=hook_id, name=name, type=hk_type, template=tmpl)


def expand_arguments(arguments: str, template_b64: str, api_b64: str) -> str:
    """onehem-server.rb `arguments`: each space-separated token followed by a space, whole
    `$TEMPLATE`/`$API` tokens replaced (by "" when the event has no such part), then strip."""
    out = ""
    for arg in arguments.split():
        if arg == "$API":
            out += api_b64 + " "
        elif arg == "$TEMPLATE":
            out += template_b64 + " "
        else:
            out += arg + " "
    return out.strip()


class HookRunner:
    """Runs hook commands off the state machine's thread and records what happened."""

    def __init__(self, base_path: str, retention: int, workers: int, clock=time.time):
        self.base_path = base_path.rstrip("/")
        self.retention = retention
        self.enabled = True
        self.executions: list[dict] = []
        self._clock = clock
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sim-hook")
        self._inflight = 0
        self._idle = threading.Condition(self._lock)
        self._procs: set[subprocess.Popen] = set()
        self._closed = False
        self.frontend_env: dict[int, dict[str, str]] = {}  # server id -> extra environment

    def submit(self, hook: Hook, object_xml: str, api_xml: str = "", remote_host: str = "",
               server_id: int | None = None) -> None:
        """Queue one execution on front-end `server_id`'s hook manager; `object_xml` is the
        `<HOST>`/`<VM>` element ($TEMPLATE)."""
        if not self.enabled:
            return
        template_b64 = base64.b64encode(object_xml.encode()).decode() if object_xml else ""
        api_b64 = base64.b64encode(api_xml.encode()).decode() if api_xml else ""
        params = expand_arguments(hook.template.get("ARGUMENTS", ""), template_b64, api_b64)
        self._start(hook, params, remote_host if hook.template.get("REMOTE") == "YES" else "",
                    server_id=server_id)

    def retry(self, hook: Hook, record: ExecutionRecord) -> None:
        """onehem-server.rb `retry_action`: the hook as it is now (COMMAND, ARGUMENTS_STDIN,
        TIMEOUT) run again with the arguments the recorded run had; a new record with RETRY."""
        if self.enabled:
            self._start(hook, record.arguments, record.remote_host, retry=True,
                        server_id=record.server_id)

    def _start(self, hook: Hook, params: str, remote_host: str, retry: bool = False,
               server_id: int | None = None) -> None:
        command = hook.template["COMMAND"]
        if not command.startswith("/"):
            command = f"{self.base_path}/{command}"
        stdin = None
        if hook.arguments_on_stdin:
            stdin = params
        elif params:
            command = f"{command} {params}"
        with self._lock:
            if self._closed:
                return
            self._inflight += 1
        self._pool.submit(self._run, hook, command, stdin, params, remote_host, retry, server_id)

    def _run(self, hook: Hook, command: str, stdin: str | None, params: str, remote: str,
             retry: bool, server_id: int | None = None) -> None:
        started = self._clock()
        try:
            env = self.frontend_env.get(server_id) if server_id is not None else None
            stdout, stderr, code = self._execute(command, stdin, hook.timeout, env)
            record = ExecutionRecord(
                hook_id=hook.id, execution_id=-1, timestamp=int(started), arguments=params,
                command=command, stdout=stdout, stderr=stderr, code=code, remote_host=remote,
                retry=retry, server_id=server_id)
            with self._lock:
                record.execution_id = hook.next_execution
                hook.next_execution += 1
                hook.log.append(record)
                if len(hook.log) > self.retention:  # HookLog::add keeps LOG_RETENTION per hook
                    del hook.log[: len(hook.log) - self.retention]
                self.executions.append({
                    "hook_id": hook.id, "hook_name": hook.name, "execution_id": record.execution_id,
                    "rc": code, "stdout": stdout, "stderr": stderr, "t": started,
                    "command": command, "stdin": stdin is not None, "retry": retry,
                    "server_id": server_id})
        finally:
            with self._lock:
                self._inflight -= 1
                self._idle.notify_all()

    def _execute(self, command: str, stdin: str | None, timeout: float | None,
                 env: dict[str, str] | None = None):
        # Like Ruby's Open3 on a command string: through /bin/sh; the environment of the
        # simulator process, plus the running front-end's own (`frontend_env`).
        import os

        try:
            proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True,
                                    env={**os.environ, **env} if env else None)
        except OSError as exc:
            return "", f"Internal error {exc}", 255
        with self._lock:
            self._procs.add(proc)
        try:
            out, err = proc.communicate(stdin.encode() if stdin is not None else b"",
                                        timeout=timeout)
            code = proc.returncode if proc.returncode >= 0 else 255
            return out.decode(errors="replace"), err.decode(errors="replace"), code
        except subprocess.TimeoutExpired:
            self._kill(proc)
            proc.communicate()
            return "", f"Timeout executing {command}", 255
        finally:
            with self._lock:
                self._procs.discard(proc)

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        import os
        import signal

        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the shell and what it started
        except ProcessLookupError:
            pass

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            procs = list(self._procs)
        for proc in procs:
            self._kill(proc)
        self._pool.shutdown(wait=True, cancel_futures=True)
