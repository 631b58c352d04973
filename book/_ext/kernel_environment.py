"""A Sphinx extension of this book: the kernels that execute the chapters get the same environment
on every machine, whatever the caller's shell says.

The kernels inherit this process's environment. Two settings in it would change the book:

- ``MPLBACKEND``. The chapters draw their figures with ``plt.show()``, which in a Jupyter kernel
  emits the figure as an image because ipykernel picks matplotlib's inline backend, but only when
  the environment does not name a backend already. A caller with ``MPLBACKEND=Agg`` (common on
  headless machines and in CI) would get a book without figures, and the build would stop at the
  first reference to one ("undefined label: fig-..."). It is removed, so every kernel chooses its
  backend as a fresh Jupyter kernel does.
- The thread counts of numpy's BLAS and of torch (``OMP_NUM_THREADS`` and the libraries' own
  variables). A matrix product split over another number of threads adds its terms in another
  order, and a long training run can amplify that last-bit difference into other printed
  digits. Every kernel runs its numerical libraries on one thread, so the book prints the same
  numbers whether the caller has 1 core, 2 or 64 (the chapters' matrices are small; one thread
  is also the fastest for them). The BLAS *kernel* a CPU picks still varies between machines:
  the chapters' experiments are designed so that their conclusions hold under any of them.

The kernels also talk to the build over Unix sockets in a folder of their own, not over TCP ports
(``JUPYTER_DEFAULT_PROVISIONER_NAME``, :mod:`course_grader.unix_kernels`). A TCP port is picked a
second before the kernel binds it, and anything else starting on the machine can take it first;
the two editions build at the same time, so a page would now and then fail with "Address already
in use".

The caller's values are put back when the build ends. _config.yml puts this folder on the path
(``sphinx: local_extensions``) and enables the extension (``sphinx: config: extensions``), so
``make book``, ``jupyter-book build .`` and the tests' build (tests/book_build.py) all load it.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points

# the provisioner of course_grader/unix_kernels.py, under the name pyproject.toml registers
PROVISIONER = "long-memory-ipc"

# What every kernel gets: None removes the variable.
KERNEL_ENVIRONMENT = {
    "MPLBACKEND": None,
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

_callers: list[dict[str, str | None]] = []  # the caller's values while the build runs
_factory_default: list[str] = []  # the provisioner factory's default before the build, if it had read one


def _restore(app, exception) -> None:
    if _factory_default:
        from jupyter_client.provisioning.factory import KernelProvisionerFactory

        KernelProvisionerFactory.instance().default_provisioner_name = _factory_default.pop()
    while _callers:
        for name, value in _callers.pop().items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def set_for_build(values: dict[str, str | None]) -> None:
    """Give the kernels of this build these variables (None removes one); the caller's come back
    when the build ends. Other extensions of the book call it too (figure_language)."""
    _callers.append({name: os.environ.get(name) for name in values})
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _unix_socket_kernels() -> dict[str, str]:
    if not entry_points(group="jupyter_client.kernel_provisioners", name=PROVISIONER):
        raise RuntimeError(f"the kernel provisioner {PROVISIONER!r} is not installed; build the book with "
                           "`make book`, or install the project first: pip install -e '.[dev]'")
    from jupyter_client.provisioning.factory import KernelProvisionerFactory

    if KernelProvisionerFactory.initialized():  # it read the variable already: set it, and put it back after
        factory = KernelProvisionerFactory.instance()
        _factory_default.append(factory.default_provisioner_name)
        factory.default_provisioner_name = PROVISIONER
    return {"JUPYTER_DEFAULT_PROVISIONER_NAME": PROVISIONER}


def setup(app):
    set_for_build({**KERNEL_ENVIRONMENT, **_unix_socket_kernels()})
    app.connect("build-finished", _restore)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
