"""course_grader/unix_kernels.py: the kernels the book's build starts talk over Unix sockets in a
folder of their own, so two of them starting at once (the two editions build side by side, next to
the tests) never race for a TCP port."""

from __future__ import annotations

import asyncio
import os

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.factory import KernelProvisionerFactory
from nbclient import NotebookClient

from course_grader import unix_kernels


@pytest.fixture
def unix_socket_default(monkeypatch):
    """What the book's build does (book/_ext/kernel_environment.py): the provisioner is the default."""
    monkeypatch.setattr(KernelProvisionerFactory.instance(), "default_provisioner_name", unix_kernels.NAME)


def _notebook(code: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])


def test_the_provisioner_is_registered_under_the_name_the_build_uses():
    factory = KernelProvisionerFactory.instance()
    assert factory._check_availability(unix_kernels.NAME)
    assert factory.provisioners[unix_kernels.NAME].load() is unix_kernels.UnixSocketProvisioner


def test_two_kernels_started_at_once_each_get_a_private_folder_of_sockets_removed_at_shutdown(unix_socket_default):
    seen = {}

    async def run(name: str):
        nb = _notebook("print(6 * 7)")
        client = NotebookClient(nb, kernel_name="python3", timeout=60)
        async with client.async_setup_kernel():
            km = client.km
            folder = os.path.dirname(km.ip)
            seen[name] = (km.transport, km.ip, os.stat(folder).st_mode, sorted(os.listdir(folder)))
            await client.async_execute_cell(nb.cells[0], 0)
        return nb.cells[0].outputs[0]["text"]

    async def both():
        return await asyncio.gather(run("a"), run("b"))

    assert asyncio.run(both()) == ["42\n", "42\n"]
    (ta, ipa, mode, files_a), (tb, ipb, _, files_b) = seen["a"], seen["b"]
    assert ta == tb == "ipc", "a kernel of the build must not be on TCP ports"
    folder_a, folder_b = os.path.dirname(ipa), os.path.dirname(ipb)
    assert folder_a != folder_b and os.path.basename(folder_a).startswith("lm-ipc-")
    assert files_a == [f"kernel-{i}" for i in range(1, 6)], files_a  # shell, iopub, stdin, hb, control
    assert mode & 0o077 == 0, "the folder of a kernel's sockets is its owner's alone"
    assert not os.path.exists(folder_a) and not os.path.exists(folder_b), "shutting down leaves the folder behind"


def test_a_restarted_kernel_keeps_its_sockets_and_the_folder_goes_at_the_end(unix_socket_default):
    async def go():
        km = AsyncKernelManager(kernel_name="python3")
        await km.start_kernel()
        try:
            first = km.ip
            await km.restart_kernel(now=True)
            assert km.ip == first and km.transport == "ipc"
            client = km.client()
            client.start_channels()
            await client.wait_for_ready(timeout=60)
            reply = await client.execute_interactive("x = 1", timeout=60)
            assert reply["content"]["status"] == "ok"
            client.stop_channels()
        finally:
            await km.shutdown_kernel(now=True)
        return first

    ip = asyncio.run(go())
    assert not os.path.exists(os.path.dirname(ip))


def test_a_manager_that_chose_ipc_itself_keeps_its_own_folder(unix_socket_default, tmp_path):
    async def go():
        km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "mine"))
        await km.start_kernel()
        try:
            client = km.client()
            client.start_channels()
            await client.wait_for_ready(timeout=60)
            client.stop_channels()
            assert km.ip == str(tmp_path / "mine")
            assert (tmp_path / f"mine-{km.shell_port}").exists()
        finally:
            await km.shutdown_kernel(now=True)

    asyncio.run(go())
    assert tmp_path.is_dir(), "the provisioner must only remove folders it made"
