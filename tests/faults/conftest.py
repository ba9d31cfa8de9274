"""Print the fault table (tests/faults/table.py) once, after every fault test has run."""

from tests.faults.table import ROWS, render


def pytest_terminal_summary(terminalreporter):
    if ROWS:
        terminalreporter.section("faults: nothing acknowledged is lost, nothing is done twice")
        terminalreporter.write_line(render(ROWS))
