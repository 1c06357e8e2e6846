"""Browser tests: one JupyterLab (and, when asked for, one Notebook 7) server on loopback and
one headless Chromium for the whole session, driven with Playwright.

They need /usr/bin/chromium (Debian's package; `.ci/run` installs it) and skip with a reason
without it. Screenshots go to `test-artifacts/`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nbdriver import CHROMIUM, CHROMIUM_ARGS, Server


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
            # `make test` runs pytest-xdist with --dist loadgroup: every browser test on one
            # worker, sharing one JupyterLab and one Chromium
            item.add_marker(pytest.mark.xdist_group("browser"))


def _skip_without_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does)")
    pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    _skip_without_browser()
    server = Server("lab", tmp_path_factory.mktemp("lab"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def notebook7_server(tmp_path_factory):
    _skip_without_browser()
    server = Server("notebook", tmp_path_factory.mktemp("nb7"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    _skip_without_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 2400})
    pg = context.new_page()
    pg.requests = []
    pg.on("request", lambda req: pg.requests.append(req.url))
    yield pg
    context.close()


