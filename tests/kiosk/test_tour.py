"""The screenshot tour (kiosq.kiosk.tour): every screen in zh, en and elder mode, landscape
and portrait, as real PNGs. A Kivy process hosts one window and this test session already
has one (conftest's app), so the tour runs in a subprocess of its own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PIL import Image

from kiosq.kiosk.tour import ORIENTATIONS, expected_names
from tests.kiosk.test_kiosk_ticket import Server


def run_tour(out_dir, *args: str, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "kiosq.kiosk.tour", str(out_dir), *args],
                          capture_output=True, text=True, timeout=240, check=False,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


def check_pngs(out_dir, names: list[str]) -> None:
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(names)
    for name in names:
        with Image.open(out_dir / name) as image:
            orientation = name.rsplit("-", 1)[1].removesuffix(".png")
            assert image.format == "PNG" and image.size == ORIENTATIONS[orientation], name
            rgb = image.convert("RGB")
            colours = rgb.getcolors(maxcolors=1 << 22)
            assert colours is not None and len(colours) > 50, f"{name}: {len(colours or [])} colours"
            assert any(low != high for low, high in rgb.getextrema()), f"{name} is one colour"


def test_tour_without_a_server_shoots_home_guide_and_detail(tmp_path):
    printed = run_tour(tmp_path)
    names = expected_names(with_server=False)
    assert len(names) == 18 and [p.rsplit("/", 1)[1] for p in printed] == names
    check_pngs(tmp_path, names)


@pytest.fixture
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("tour-server"))
    srv.start()
    yield srv
    srv.stop()


def test_tour_with_a_server_adds_the_ticket_screens(tmp_path, server):
    run_tour(tmp_path, "--server", server.url, env={"KIOSQ_TERMINAL_TOKEN": server.terminal_token})
    names = expected_names(with_server=True)
    assert len(names) == 36 and "ticket_done-elder-portrait.png" in names
    check_pngs(tmp_path, names)


def test_tour_with_a_card_reader_adds_the_application_screens(tmp_path, server):
    from kiosq.devices.sim.idcard import SimulatedCardReader

    with SimulatedCardReader() as reader:
        reader.place()
        run_tour(tmp_path, "--server", server.url, "--card-reader", reader.uri,
                 env={"KIOSQ_TERMINAL_TOKEN": server.terminal_token})
    names = expected_names(with_server=True, with_card=True)
    assert len(names) == 72 and "apply_done-elder-portrait.png" in names and "progress_result-en-landscape.png" in names
    check_pngs(tmp_path, names)
