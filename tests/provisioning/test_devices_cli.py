"""`kiosq devices` against the simulators, as IT staff would use it."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from kiosq.devices.sim.idcard import SimulatedCardReader
from kiosq.devices.sim.printer import PrinterSimulator
from kiosq.provisioning.cli import main


@pytest.fixture
def printer(tmp_path):
    with PrinterSimulator(preview=tmp_path / "slip.png") as sim:
        yield sim


@pytest.fixture
def reader(tmp_path):
    with SimulatedCardReader(tmp_path / "idcard") as sim:
        yield sim


def run(*args):
    return CliRunner().invoke(main, ["devices", *args])


def test_test_print_prints_chinese_a_qr_and_a_cut(printer):
    result = run("test-print", "--printer", printer.uri)
    assert result.exit_code == 0, result.output
    job = printer.wait_for_jobs(1)[0]
    assert any("T001" in line for line in job.lines) and any("打印测试" in line for line in job.lines)
    assert job.qr_payloads == ["http://127.0.0.1:8000/t/test"]
    assert printer.preview_path.stat().st_size > 1000


def test_test_print_refuses_without_paper(printer):
    printer.set_paper("out")
    result = run("test-print", "--printer", printer.uri)
    assert result.exit_code == 1 and "out of paper" in result.output
    assert printer.jobs == []


def test_read_card_shows_it_masked(reader):
    reader.command("place 1")
    result = run("read-card", "--reader", reader.uri, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["id_number"] == "999***********0010" and shown["name"] == "测*一" and shown["sex"] == "男"
    assert "999901199001010010" not in result.output and "测试一" not in result.output
    assert "address" not in shown and "birth" not in shown


def test_read_card_without_a_card_or_reader(reader, tmp_path):
    result = run("read-card", "--reader", reader.uri)
    assert result.exit_code == 1 and "no card on the reader" in result.output
    result = run("read-card", "--reader", f"serial:{tmp_path}/nothing-here")
    assert result.exit_code == 1 and "cannot open the ID card reader" in result.output
    assert run("read-card", "--reader", "/dev/ttyUSB0").exit_code == 1  # not a URI: says what one looks like


def test_probe_reports_each_device(printer, reader):
    printer.set_paper("near_end")
    result = run("probe", "--printer", printer.uri, "--reader", reader.uri, "--json")
    found = {r["device"]: r for r in json.loads(result.output)}
    assert result.exit_code == 0 and found["printer"]["paper"] == "near_end" and found["reader"]["card"] is False
    printer.set_cover_open(True)
    result = run("probe", "--printer", printer.uri)
    assert result.exit_code == 1 and result.output.startswith("FAIL printer")


def test_simulate_runs_the_devices_and_takes_commands(tmp_path):
    folder = tmp_path / "devices"
    proc = subprocess.Popen([sys.executable, "-m", "kiosq.provisioning.cli", "devices", "simulate", "--dir",
                             str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        out, _ = proc.communicate("printer paper out\ncard remove\nscanner scan 6901234567892\nquit\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert f"printer  serial:{folder / 'printer'}" in out and f"reader   serial:{folder / 'idcard'}" in out
    assert "printer: paper out" in out and "card removed" in out
    assert not (folder / "printer").exists()  # its link is gone with it


def test_test_print_on_a_port_that_never_answers_is_a_failure(tmp_path):
    from kiosq.devices.sim.scanner import SimulatedScanner

    with SimulatedScanner(tmp_path / "scanner") as not_a_printer:
        result = run("test-print", "--printer", not_a_printer.uri)
    assert result.exit_code == 1 and "never answered a status query" in result.output
