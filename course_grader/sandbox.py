"""A Jupyter kernel that runs a student's notebook inside a bubblewrap sandbox.

Autograding executes whatever a student handed in. :class:`SandboxedKernelManager` starts the
kernel with ``bwrap`` (bubblewrap) so that the code in a notebook

* sees a read-only system (``/usr``, ``/etc``, the Python installation and ``lstm_ref``) and
  nothing of the course folder: no gradebook, no ``solutions/``, no other student's files;
* can write only to its own ``/tmp`` (a small tmpfs, thrown away with the kernel), where it
  also runs (``/tmp/work``, with read-only copies of the assignment's data files);
* has no network (its own empty network namespace), sees only its own processes (its own
  PID namespace) and runs as an unprivileged user without capabilities;
* is held to limits set with ``prlimit``: CPU seconds, address space, processes, file size.

The grader still talks to the kernel: the kernel's ZeroMQ sockets are Unix sockets (the
``ipc`` transport) in a directory shared with the sandbox, which needs no network at all.

Where the sandbox cannot start, starting a kernel raises :class:`SandboxUnavailable` with the
reason and the explicit opt-out (``--Sandbox.enabled=False``); it never falls back silently.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, DottedObjectName, Integer, List, Type, Unicode
from traitlets.config import LoggingConfigurable

WORKDIR = "/tmp/work"  # the kernel's working directory inside the sandbox
OPT_OUT = "--Sandbox.enabled=False"
IMPORT_FAILED = "the kernel cannot import"  # how a probe that bubblewrap passed but Python failed begins
_SYSTEM_DIRS = ("/usr", "/etc")
_ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_MB = 1024 * 1024


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start here; grading refuses to run students' code without it."""


class Sandbox(LoggingConfigurable):
    """Settings of the grading sandbox (set them as ``c.Sandbox.NAME`` in nbgrader_config.py)."""

    enabled = Bool(
        True,
        help="Run students' kernels inside bubblewrap. Set to False only to grade, knowingly, "
        "without any protection (the kernel then runs with your permissions).",
    ).tag(config=True)
    bwrap = Unicode("bwrap", help="The bubblewrap program.").tag(config=True)
    cpu_seconds = Integer(900, help="CPU seconds one kernel may use in all (RLIMIT_CPU).").tag(config=True)
    memory_mb = Integer(2048, help="Address space of the kernel, in MiB (RLIMIT_AS).").tag(config=True)
    processes = Integer(64, help="Processes and threads of the kernel's user (RLIMIT_NPROC).").tag(config=True)
    file_mb = Integer(64, help="Largest file the kernel may write, in MiB (RLIMIT_FSIZE).").tag(config=True)
    scratch_mb = Integer(256, help="Size of the kernel's writable /tmp, in MiB.").tag(config=True)
    open_files = Integer(1024, help="Open files of the kernel (RLIMIT_NOFILE).").tag(config=True)
    uid_base = Integer(
        1_500_000_000,
        help="When grading as root, the kernel runs as user uid_base + the grader's process id: "
        "an id no account uses, distinct for every grader running at the same time.",
    ).tag(config=True)
    extra_paths = List(Unicode(), help="More host paths the kernel may read.").tag(config=True)

    def sandbox_uid(self) -> int | None:
        """The user id the kernel runs as when grading as root; None when not root."""
        return self.uid_base + os.getpid() if os.geteuid() == 0 else None


def unavailable_message(reason: str) -> str:
    """What the instructor reads when the sandbox cannot be used: the reason, and what to do about it."""
    if reason.startswith(IMPORT_FAILED):  # bubblewrap works; the kernel would not find the course's code
        return (
            f"Autograding cannot run in the sandbox here: {reason}\n"
            "The kernel sees only the Python installation and the lstm_ref package the grader imports. "
            "Install lstm_ref into the grading environment from a folder the sandbox may show (not from "
            "inside the course folder's parents), e.g. `pip install -e .` in a checkout outside /tmp, or add "
            "its folder to c.Sandbox.extra_paths."
        )
    return (
        "Autograding refuses to run students' code outside the sandbox, and the sandbox cannot start "
        f"here: {reason}\n"
        "Install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; it needs unprivileged user "
        "namespaces when not run as root), or, only if you accept that every submission runs with your "
        f"permissions and can read or change any of your files, grade without it: add {OPT_OUT} to the "
        "nbgrader command, or `SANDBOX=off` to `make grade` (see the instructor guide)."
    )


# ---------------------------------------------------------------------------------------------
# What the kernel may see.


def _is_under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def visible_paths(extra: list[str] | tuple = (), hide: list[str] | tuple = ()) -> list[str]:
    """Host folders bound read-only into the sandbox: the Python installation and lstm_ref.

    The folder the grader runs in (the course), the folders in hide (the one holding the
    notebook being graded) and their parents are never among them, so the gradebook,
    solutions/ and submitted/ stay out of sight. Returns absolute paths, none inside another.
    """
    import lstm_ref

    hidden = [os.path.realpath(p) for p in (os.getcwd(), *hide)]
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
                  os.path.dirname(os.path.abspath(lstm_ref.__file__)), *sys.path, *extra]
    paths = set()
    for p in candidates:
        if not p or not os.path.isdir(p):
            continue
        for q in {os.path.abspath(p), os.path.realpath(p)}:
            if q == "/" or any(_is_under(h, q) for h in hidden) or any(_is_under(q, s) for s in _SYSTEM_DIRS):
                continue  # "/" or an ancestor of the course folder would show the gradebook
            paths.add(q)
    kept: list[str] = []
    for p in sorted(paths, key=len):
        if not any(_is_under(p, k) for k in kept):
            kept.append(p)
    return sorted(kept)


def _package_parent() -> str:
    """The folder holding the lstm_ref package the grader imports (an editable install's checkout).

    Inside the sandbox only the package folder itself is bound there, so putting its parent on
    PYTHONPATH finds lstm_ref even where the installation's own path hooks cannot (a checkout
    under /tmp, whose host /tmp the sandbox replaces, or one reached through PYTHONPATH).
    """
    import lstm_ref

    return os.path.dirname(os.path.dirname(os.path.abspath(lstm_ref.__file__)))


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


@functools.lru_cache(maxsize=None)
def _bwrap_supports(bwrap: str, option: str) -> bool:
    try:
        out = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    return option in out.stdout + out.stderr


def build_command(
    argv: list[str],
    box: Sandbox,
    *,
    shared_dir: str | None = None,
    files: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    hide: list[str] | tuple = (),
) -> list[str]:
    """The command that runs argv inside the sandbox.

    argv: the program and its arguments, with host paths (the same paths exist inside);
    shared_dir: a host folder the program may write, bound at the same path (the kernel's
    sockets live there); files: {name: host path} shown read-only in the working directory;
    env: extra environment variables (the host's environment is not passed on); hide: host
    folders that must stay out of sight (see :func:`visible_paths`).
    """
    bwrap = shutil.which(box.bwrap) or box.bwrap
    uid = box.sandbox_uid()
    cmd = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--hostname", "grading"]
    if uid is None:  # an ordinary user: bwrap makes a user namespace, where it may also forbid more
        cmd += ["--unshare-user"]
        if _bwrap_supports(bwrap, "--disable-userns"):
            cmd += ["--disable-userns"]
    for d in _SYSTEM_DIRS:
        if os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
    for d in _ROOT_LINKS:
        if os.path.islink(d):
            cmd += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
    cmd += ["--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(box.scratch_mb * _MB), "--tmpfs", "/tmp",
            "--perms", "0777", "--dir", WORKDIR]
    made = {"/tmp", WORKDIR}
    binds = [(p, "--ro-bind") for p in visible_paths(box.extra_paths, hide=hide)]
    if shared_dir:
        binds.append((os.path.realpath(shared_dir), "--bind"))
    for path, how in binds:
        for a in _ancestors(path):
            if a not in made and not any(_is_under(a, s) for s in (*_SYSTEM_DIRS, *_ROOT_LINKS)):
                cmd += ["--perms", "0755", "--dir", a]
                made.add(a)
        cmd += [how, path, path]
        made.add(path)
    for name, host in sorted((files or {}).items()):
        cmd += ["--ro-bind", host, f"{WORKDIR}/{name}"]
    environment = {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": WORKDIR,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "PYTHONNOUSERSITE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
        "IPYTHONDIR": "/tmp/.ipython",
        "MPLCONFIGDIR": "/tmp/.matplotlib",
    }
    environment["PYTHONPATH"] = _package_parent()  # lstm_ref as the grader imports it, wherever it is installed
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "NBGRADER_EXECUTION", "TZ"):
        if name in os.environ:
            environment[name] = os.environ[name]
    environment.update(env or {})
    cmd += ["--chdir", WORKDIR, "--clearenv"]
    for name, value in sorted(environment.items()):
        cmd += ["--setenv", name, value]
    if uid is not None:  # root: become a user that owns nothing, with no capabilities left
        cmd += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--bounding-set=-all",
                "--inh-caps=-all", "--no-new-privs"]
    # the soft CPU limit sends SIGXCPU, the hard one (a little later) SIGKILL
    cmd += ["prlimit", f"--cpu={box.cpu_seconds}:{box.cpu_seconds + 5}", f"--as={box.memory_mb * _MB}",
            f"--nproc={box.processes}", f"--fsize={box.file_mb * _MB}", f"--nofile={box.open_files}",
            "--core=0", "--"]
    return cmd + list(argv)


_PROBE = r"""
import os, sys
try:
    import numpy, lstm_ref.grading
except Exception as exc:
    print(f"import-failed: {type(exc).__name__}: {exc}")
    raise SystemExit(0)
hidden = [p for p in sys.argv[1:] if os.path.exists(p)]
print("visible: " + ", ".join(hidden) if hidden else "sandbox-ok")
"""


@functools.lru_cache(maxsize=None)
def _probe(key: tuple) -> str | None:
    box = Sandbox()
    box.bwrap, box.extra_paths = key[0], list(key[1])
    if shutil.which(box.bwrap) is None:
        return f"`{box.bwrap}` is not installed (no such program on PATH)."
    here = os.getcwd()
    secrets = [os.path.join(here, name) for name in ("gradebook.db", "nbgrader_config.py", "submitted")]
    with tempfile.TemporaryDirectory(prefix="lm-probe-") as shared:
        cmd = build_command([sys.executable, "-c", _PROBE, *secrets], box, shared_dir=shared)
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"running bwrap failed: {exc}"
    if out.stdout.strip() == "sandbox-ok":
        return None
    if out.stdout.startswith("import-failed:"):
        import lstm_ref

        return (f"{IMPORT_FAILED} numpy and lstm_ref.grading inside the sandbox ({out.stdout.strip()[15:]}); "
                f"the grader's lstm_ref is {os.path.dirname(os.path.abspath(lstm_ref.__file__))}.")
    if out.stdout.startswith("visible:"):
        return f"the sandbox would still show the course folder ({out.stdout.strip()[9:]})."
    return f"bwrap exited {out.returncode}: {(out.stderr or out.stdout).strip()[-600:]}"


def probe(box: Sandbox) -> str | None:
    """None if a sandboxed Python starts here and cannot see the course folder; else why not."""
    return _probe((box.bwrap, tuple(box.extra_paths), os.getcwd(), sys.executable))


# ---------------------------------------------------------------------------------------------
# Signals go to the processes inside, never to bwrap itself (which would end the sandbox).


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _ns_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return None


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def processes_inside(bwrap_pid: int) -> list[int]:
    """Host pids of the processes in the sandbox started by bwrap_pid, except its init."""
    found, todo = [], _children(bwrap_pid)
    while todo:
        pid = todo.pop()
        todo.extend(_children(pid))
        if _ns_pid(pid) != 1:
            found.append(pid)
    return found


# What `python -m ipykernel_launcher` does, without the debugger: ipykernel imports debugpy when it
# can, about 75 ms of every grading kernel's start, for a debugger no grading run attaches to.
_KERNEL_LAUNCHER = """
import sys
if sys.path[0] == "":
    del sys.path[0]
sys.modules["debugpy"] = None
from ipykernel import kernelapp
kernelapp.launch_new_instance()
"""


class GradingKernelClient(AsyncKernelClient):
    """The kernel client the grader uses: ready as soon as the kernel has shown it is.

    jupyter_client's own wait_for_ready ends by listening to IOPub until it has been quiet for
    0.2 s, in every notebook, although nothing is waiting there: the notebook client and the guard
    each match the replies to their own requests and pass over any other message. This one waits
    for a reply to kernel_info on the shell channel and one message on IOPub (both sockets are
    connected) and then returns.
    """

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:  # a message on IOPub: that socket is connected too (else ask again)
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass
                else:
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self.is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")


class SandboxedKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernel runs inside the grading sandbox (see the module doc)."""

    client_class = DottedObjectName("course_grader.sandbox.GradingKernelClient")
    client_factory = Type(default_value=GradingKernelClient, klass=AsyncKernelClient)

    def __init__(self, **kwargs):
        self.box = Sandbox(parent=kwargs.get("parent"), config=kwargs.get("config"))
        super().__init__(**kwargs)
        self._box_dir: str | None = None
        self._files: dict[str, str] = {}
        self._cwd: str | None = None
        # Unix sockets in a private folder, sandbox or not: kernels started at the same time on TCP
        # ports can race for one port ("Address already in use"), which no student should pay for.
        self.transport = "ipc"

    async def _async_pre_start_kernel(self, **kw):
        if self.box.enabled:
            reason = probe(self.box)
            if reason:
                raise SandboxUnavailable(unavailable_message(reason))
            cwd = os.path.realpath(kw.get("cwd") or os.getcwd())
            shown = [p for p in (*_SYSTEM_DIRS, *visible_paths(self.box.extra_paths, hide=[cwd])) if _is_under(cwd, p)]
            if shown:
                raise SandboxUnavailable(unavailable_message(
                    f"the notebook's folder {cwd} is inside {shown[0]}, which the sandbox shows read-only; "
                    "keep the course folder elsewhere."))
            self._prepare(kw.get("cwd"))
            # what the kernel writes to its own stdout/stderr (not the notebook's output, which
            # goes through ZeroMQ) must not reach the grader's terminal or log unbounded
            kw.setdefault("stdout", subprocess.DEVNULL)
            kw.setdefault("stderr", subprocess.DEVNULL)
        else:
            self.log.warning("UNSANDBOXED: this kernel runs the student's code with your permissions.")
            self._prepare(None)
        return await super()._async_pre_start_kernel(**kw)

    def _prepare(self, cwd: str | None) -> None:
        if self._box_dir is None:  # kept across restarts: the connection file names its sockets
            self._box_dir = os.path.realpath(tempfile.mkdtemp(prefix="lm-kernel-"))
            run = os.path.join(self._box_dir, "run")
            os.mkdir(run, 0o700)
            uid = self.box.sandbox_uid()
            if uid is not None and self.box.enabled:
                os.chown(run, uid, uid)
            self.connection_file = os.path.join(run, "kernel.json")
            self.ip = os.path.join(run, "kernel")
        # the assignment's data files, read-only; never a notebook (the one being graded holds
        # the hidden tests) and nothing hidden (checkpoints)
        self._files = {}
        self._cwd = os.path.realpath(cwd) if cwd else None
        if cwd and os.path.isdir(cwd):
            for name in os.listdir(cwd):
                path = os.path.join(cwd, name)
                if not name.startswith(".") and not name.endswith(".ipynb") and not os.path.islink(path):
                    self._files[name] = path

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if not self.box.enabled:
            return cmd
        uid = self.box.sandbox_uid()
        if uid is not None:
            os.chown(self.connection_file, uid, uid)
        # The course's notebooks are Python: run them on this interpreter, whatever kernelspec
        # the submission names, since it is the one whose files the sandbox shows.
        argv = [sys.executable, "-c", _KERNEL_LAUNCHER, "-f", self.connection_file, *(extra_arguments or [])]
        return build_command(argv, self.box, shared_dir=os.path.dirname(self.connection_file), files=self._files,
                             hide=[self._cwd] if self._cwd else [])

    def _signal_inside(self, signum: int) -> None:
        process = getattr(self.provisioner, "process", None)
        if process is None:
            return
        for pid in processes_inside(process.pid):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def kill_strays(self) -> int:
        """End every process in the sandbox but the kernel (what a cell forked); return how many."""
        process = getattr(self.provisioner, "process", None)
        if not self.box.enabled or process is None:
            return 0
        strays = [pid for pid in processes_inside(process.pid) if _ns_pid(pid) != 2 and not _zombie(pid)]  # 2: the kernel
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(strays)

    async def _async_interrupt_kernel(self):
        if self.box.enabled and self.has_kernel:
            self._signal_inside(signal.SIGINT)
        else:
            await super()._async_interrupt_kernel()

    async def _async_signal_kernel(self, signum):
        if self.box.enabled and signum not in (signal.SIGKILL, signal.SIGTERM):
            self._signal_inside(signum)
        else:
            await super()._async_signal_kernel(signum)

    async def _async_cleanup_resources(self, restart: bool = False):
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self._box_dir:
            shutil.rmtree(self._box_dir, ignore_errors=True)
            self._box_dir = None

    interrupt_kernel = _async_interrupt_kernel
    signal_kernel = _async_signal_kernel
    cleanup_resources = _async_cleanup_resources
