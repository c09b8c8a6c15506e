"""Reports each pytest case to conformance/run.

Every finished test appends one line, "pass NAME", "fail NAME" or "skip NAME", to the file named
by CONFORMANCE_RESULTS, so the runner can add up suites written with different tools. A test
fails if any of its phases (setup, call, teardown) failed.
"""

import os

_outcomes: dict[str, str] = {}


def pytest_runtest_logreport(report):
    previous = _outcomes.get(report.nodeid)
    if report.failed:
        _outcomes[report.nodeid] = "fail"
    elif report.skipped and previous is None:
        _outcomes[report.nodeid] = "skip"
    elif report.when == "call" and report.passed and previous is None:
        _outcomes[report.nodeid] = "pass"


def pytest_runtest_logfinish(nodeid, location):
    path = os.environ.get("CONFORMANCE_RESULTS")
    outcome = _outcomes.pop(nodeid, "fail")
    if path:
        with open(path, "a", encoding="utf-8") as results:
            results.write(f"{outcome} {nodeid}\n")
