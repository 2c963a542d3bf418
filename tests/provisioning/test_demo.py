"""`kiosq demo` (what `make demo` runs): a server a newcomer can use at once, with tokens
and simulated devices that work."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from click.testing import CliRunner

from kiosq.provisioning.cli import main


@pytest.mark.slow
def test_demo_serves_prints_tokens_and_runs_the_devices(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = tmp_path / "data"
    # A certificate in the data folder (someone ran tls init there): the demo stays plain HTTP
    # on loopback, which its own kiosk and pages speak.
    made = subprocess.run([sys.executable, "-m", "kiosq.provisioning.cli", "server", "tls", "init", "--data-dir",
                           str(data)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    with open(tmp_path / "demo.log", "w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "kiosq.provisioning.cli", "demo", "--port", str(port),
                                 "--data-dir", str(data)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as r:
                        if json.load(r)["ok"]:
                            break
                except OSError:
                    time.sleep(0.1)
            else:
                pytest.fail("the demo server did not come up:\n" + (tmp_path / "demo.log").read_text())
            printed = (tmp_path / "demo.log").read_text()
            env = dict(line.removeprefix("export ").split("=", 1)
                       for line in (data / "demo-tokens.env").read_text().splitlines())
            assert env["KIOSQ_TERMINAL_TOKEN"] in printed and f"serial:{data / 'devices' / 'printer'}" in printed
            assert f"kiosq server tls init --data-dir {data} --host NAME" in printed  # how to run it with TLS
            # The rating device's page and its one-time code (好差评, #18): the code enrolls it.
            code = printed.split("enrollment code ", 1)[1].split(",", 1)[0]
            assert f"http://127.0.0.1:{port}/rate/window/1" in printed
            enrolling = urllib.request.Request(f"http://127.0.0.1:{port}/api/terminals/enroll", method="POST",
                                               data=json.dumps({"code": code}).encode(),
                                               headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(enrolling, timeout=5) as r:
                assert json.load(r)["terminal"] == "demo-rate-w1"
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/tickets", method="POST",
                                             data=b'{"service": "A"}', headers={
                                                 "Authorization": f"Bearer {env['KIOSQ_TERMINAL_TOKEN']}",
                                                 "Idempotency-Key": "demo-1", "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as r:
                assert r.status == 201 and json.load(r)["number"] == "A001"
            # The printed accounts sign in (the console and /admin take a login and password).
            password = env["KIOSQ_DEMO_CLERK_PASSWORD"]
            assert f"demo-clerk / {password}" in printed
            signing_in = urllib.request.Request(f"http://127.0.0.1:{port}/api/session", method="POST", data=json.dumps(
                {"login": "demo-clerk", "password": password}).encode(), headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(signing_in, timeout=5) as r:
                assert json.load(r)["windows"] == [1, 2] and "kiosq_session=" in r.headers["Set-Cookie"]
            runner = CliRunner()
            printer = f"serial:{data / 'devices' / 'printer'}"
            printed_slip = runner.invoke(main, ["devices", "test-print", "--printer", printer])
            assert printed_slip.exit_code == 0, printed_slip.output
            reader = f"serial:{data / 'devices' / 'idcard'}"
            card = runner.invoke(main, ["devices", "read-card", "--reader", reader, "--json"])
            assert card.exit_code == 0 and json.loads(card.output)["sex"] == "男"
        finally:
            proc.terminate()
            proc.wait(15)
