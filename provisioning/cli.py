"""The `kiosq` command: one entry point for the hall server, the kiosk and IT tooling.

Each command group is its own module (server_cli, demo, content_cli, kiosk_cli,
devices_cli, terminal_cli); this one is the root group that wires them. Each command
imports what it runs lazily, so `kiosq server` never loads Kivy. Exit codes: 0 success,
2 bad usage (click's own), 1 failure with one plain sentence on stderr.
"""

import click

from kiosq.provisioning.content_cli import content
from kiosq.provisioning.demo import demo
from kiosq.provisioning.devices_cli import devices
from kiosq.provisioning.kiosk_cli import kiosk
from kiosq.provisioning.options import CONTEXT
from kiosq.provisioning.server_cli import server
from kiosq.provisioning.terminal_cli import doctor, enroll, provision


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="kiosq")
def main() -> None:
    """kiosq: self-service kiosks and queue tickets for government service halls.

    \b
    Example:
      kiosq server --data-dir data          # run the hall server
      kiosq server token --role terminal --name T01
    """


for command in (server, demo, content, kiosk, devices, provision, doctor, enroll):
    main.add_command(command)


if __name__ == "__main__":
    main()
