import xmlrpc.client

import pyone
import pytest
from lxml import etree
from pyone.server_xrpc import RequestsTransport

from simulator import CloudSpec, Simulator


from tests.support.xsd import NS, XSD_DIR
FAST = dict(monitoring_interval=0.1, boot_time=0.1, prolog_time=0.05, epilog_time=0.05,
            sched_interval=0.05, election_timeout=0.3)

# Which schema each method's answer must satisfy.
SCHEMA_OF = {
    "one.host.info": "host.xsd", "one.hostpool.info": "host_pool.xsd",
    "one.vm.info": "vm.xsd", "one.vmpool.info": "vm_pool.xsd",
    "one.vmpool.infoextended": "vm_pool_extended.xsd", "one.vmpool.infoset": "vm_pool.xsd",
    "one.hook.info": "hook.xsd", "one.hookpool.info": "hook_pool.xsd",
    "one.zone.info": "zone.xsd", "one.zonepool.info": "zone_pool.xsd",
    "one.zone.raftstatus": "raftstatus.xsd", "one.system.config": "opennebula_configuration.xsd",
}


class Schemas:
    """The official XSDs; documents get the schemas' namespace added before validation,
    because oned's answers (like ours) carry none."""

    def __init__(self):
        self._cache = {}

    def get(self, name):
        if name not in self._cache:
            self._cache[name] = etree.XMLSchema(etree.parse(str(XSD_DIR / name)))
        return self._cache[name]

    def errors(self, xml: str, name: str) -> list[str]:
        root = etree.fromstring(xml.encode())
        for el in root.iter():
            if isinstance(el.tag, str) and not el.tag.startswith("{"):
                el.tag = f"{{{NS}}}{el.tag}"
        schema = self.get(name)
        if schema.validate(root):
            return []
        return [f"{e.line}: {e.message}" for e in schema.error_log]

    def assert_valid(self, xml: str, name: str) -> None:
        errors = self.errors(xml, name)
        assert not errors, f"{name}: {errors[:5]}\n{xml[:600]}"


@pytest.fixture(scope="session")
def schemas():
    assert (XSD_DIR / "vm.xsd").is_file(), f"OpenNebula XSDs not found in {XSD_DIR}"
    return Schemas()


class RecordingTransport(RequestsTransport):
    """pyone's own transport, also keeping each (method, raw XML answer) for XSD checks."""

    def __init__(self):
        super().__init__()
        self.answers: list[tuple[str, str]] = []
        self._method = None

    def request(self, host, handler, request_body, verbose=False):
        self._method = xmlrpc.client.loads(request_body)[1]
        return super().request(host, handler, request_body, verbose)

    def parse_response(self, response):
        result = super().parse_response(response)
        value = result[0]
        if value[0] and isinstance(value[1], str) and value[1].startswith("<"):
            self.answers.append((self._method, value[1]))
        return result


def client(endpoint: str, session: str) -> pyone.OneServer:
    return pyone.OneServer(endpoint, session=session)


def recording_client(endpoint: str, session: str):
    one = pyone.OneServer(endpoint, session=session)
    transport = RecordingTransport()
    transport.set_https(False)
    transport.set_https_verify(True)
    one._ServerProxy__transport = transport
    return one, transport


@pytest.fixture
def make_sim():
    started = []

    def make(**kwargs):
        spec = CloudSpec(**{**FAST, **kwargs})
        sim = Simulator(spec).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()
    for sim in started:  # a failing timer callback is a simulator bug, whatever the test saw
        assert sim.cloud.timers.errors == [], sim.cloud.timers.errors


@pytest.fixture
def sim(make_sim):
    return make_sim()


@pytest.fixture
def one(sim):
    return client(sim.endpoints[0], sim.session)
