"""Local kernels that talk over Unix sockets in a folder of their own, never over TCP ports.

jupyter_client's default provisioner gives each kernel five TCP ports. It finds them by binding
port 0 and letting go; the kernel binds the same numbers about a second later, once Python has
started. Whatever takes one of those ports in between (another kernel starting at the same time,
a browser's or a test's outgoing connection) makes the kernel die with "Address already in use"
before it answers, and the page that needed it fails to build. The book's two editions build at
the same time, and the tests run next to them, so this happens.

:class:`UnixSocketProvisioner` is that provisioner with the ``ipc`` transport instead: the
kernel's sockets are files in a private folder made for it, which nothing else can take. It is
registered as the entry point ``long-memory-ipc`` (pyproject.toml), and the book's build makes it
the default for every kernel it starts (book/_ext/kernel_environment.py). The grading sandbox
puts its kernels on Unix sockets its own way (:mod:`.sandbox`).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from jupyter_client.provisioning import LocalProvisioner

NAME = "long-memory-ipc"  # the entry point's name, in the group "jupyter_client.kernel_provisioners"
_PREFIX = "lm-ipc-"


class UnixSocketProvisioner(LocalProvisioner):
    """:class:`~jupyter_client.provisioning.LocalProvisioner` on the ``ipc`` transport, with the
    sockets in a folder of this kernel's own, removed when the kernel is shut down."""

    async def pre_launch(self, **kwargs):
        km = self.parent
        # A manager already on ipc has its sockets where it wants them: the sandbox's, or this
        # one's after a restart (each start has a new provisioner; the manager keeps the folder).
        if km is not None and km.transport == "tcp":
            km.transport = "ipc"
            km.ip = os.path.join(tempfile.mkdtemp(prefix=_PREFIX), "kernel")  # sockets kernel-1 ... kernel-5
            km.cache_ports = False  # the port cache is for TCP ports
        return await super().pre_launch(**kwargs)

    async def cleanup(self, restart: bool = False) -> None:
        await super().cleanup(restart=restart)
        km = self.parent
        if not restart and km is not None and km.transport == "ipc":
            folder = os.path.dirname(km.ip)
            if os.path.basename(folder).startswith(_PREFIX):  # one this provisioner made
                shutil.rmtree(folder, ignore_errors=True)
