"""A real `kiosq server` on 127.0.0.1 for the provisioning tests (tests/queue/conftest.py's
ServerProcess): started once per module, with a terminal token."""

from __future__ import annotations

import pytest

from tests.queue.conftest import KIOSQ, ServerProcess, free_port  # noqa: F401 (KIOSQ, free_port: for the tests)


@pytest.fixture(scope="module")
def hall_server(tmp_path_factory):
    """A running hall server; `.terminal_token` is a terminal token it knows."""
    folder = tmp_path_factory.mktemp("hall")
    server = ServerProcess(folder / "data", folder)
    server.terminal_token = server.token("terminal", "T03")
    server.start()
    yield server
    server.stop()
