"""The Execute step of autograding, hardened for hostile and broken submissions.

:class:`GuardedExecute` replaces nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors``
(see nbgrader_config.py). It runs the notebook in the sandboxed kernel
(:class:`~course_grader.sandbox.SandboxedKernelManager`) and adds:

* a cap on each cell's output, so a print in an endless loop cannot fill memory or the
  feedback (the rest is replaced by a note on stdout, which costs no points);
* survival of a dying kernel (``os._exit``, a segfault, the CPU limit): the cell that killed it
  gets an error naming the cause, a fresh kernel replays the cells above it, and grading goes
  on with the next cell. A kernel that ignores the interrupt after a timeout is treated alike;
* the grading guard (:mod:`lstm_ref.grading.guard`): before each test cell the grading
  helpers, numpy and the notebook's ``grading``/``np``/``REF`` are put back as they were, and a
  test during which the student's code changed them fails.

What happened is recorded in the graded notebook's metadata under ``lm_grading`` for the batch
log (:mod:`course_grader.batch`).
"""

from __future__ import annotations

import ast
import signal
import time
from queue import Empty

from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Bool, Enum, Integer

from .sandbox import Sandbox, SandboxedKernelManager

_GUARD = "__import__('lstm_ref.grading.guard', fromlist=['_']).{}()"
_SIGNALS = {
    signal.SIGKILL: "was killed (SIGKILL): it most likely hit the CPU time limit",
    signal.SIGSEGV: "crashed with a segmentation fault",
    signal.SIGXCPU: "used up its CPU time",
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "crashed (bus error)",
    signal.SIGXFSZ: "wrote a file larger than the limit",
}


class GuardedExecute(Execute):
    """nbgrader's Execute with the sandboxed kernel, an output cap, kernel recovery and the guard."""

    max_output_bytes = Integer(100_000, help="Output kept per cell; the rest is cut.").tag(config=True)
    kernel_restarts = Integer(3, help="Kernels restarted per notebook before giving up on it.").tag(config=True)
    guard = Bool(True, help="Restore the grading helpers before every test cell.").tag(config=True)
    guard_timeout = Integer(20, help="Seconds the kernel gets to answer the grader between cells.").tag(config=True)
    raise_on_iopub_timeout = Bool(False, help="Keep grading when a cell's output is lost.").tag(config=True)
    # The graded notebook is complete when the kernel is stopped, so nothing is lost by killing it
    # at once; a graceful shutdown waits for the sandboxed kernel to exit (over 1 s per notebook).
    # SIGKILL goes to bubblewrap, whose death ends every process in the sandbox's pid namespace.
    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate",
                           help="How the kernel is stopped after the notebook ran.").tag(config=True)

    def __init__(self, **kw):
        kw.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(**kw)

    # ------------------------------------------------------------------------------------------
    # The notebook and its cells.

    def preprocess(self, nb, resources=None, km=None):
        self._events: list[str] = []
        self._restarts = 0
        self._gave_up = ""
        self._guarded = self._guard_on = False
        self._no_replay: set[int] = set()
        self._cell_bytes = 0
        self._cut = False
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            nb.metadata["lm_grading"] = {
                "sandbox": Sandbox(parent=self).enabled,
                "events": self._events,
                "kernel_restarts": self._restarts,
            }
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        if self._gave_up:
            cell.outputs = [_error("NotRun", f"not run: {self._gave_up}")]
            return cell, resources
        meta = cell.metadata.get("nbgrader", {})
        locked = bool(meta.get("locked")) and not meta.get("solution")  # the instructor's code
        test = locked and bool(meta.get("grade"))
        name = meta.get("grade_id", f"cell {index}")
        self._cell_bytes, self._cut = 0, False
        try:
            if self.guard and not self._guarded:
                self._install_guard()
            if self._guard_on:
                if test:  # before_locked and restore in one request: each request is a round trip
                    undone = self._guard_call("before_test")
                    if undone:
                        self._event(f"before {name}: undid {'; '.join(undone)}")
                elif locked:
                    self._guard_call("before_locked")
            cell, resources = super().preprocess_cell(cell, resources, index)
            if _timed_out(cell) and not self._responsive():
                cell.outputs.append(_error("KernelUnresponsive", "the kernel ignored the interrupt after the "
                                           "timeout; it was restarted and the cells above were run again"))
                self._event(f"{name}: timed out and the kernel ignored the interrupt")
                self._recover(index)
                return cell, resources
            if _timed_out(cell):
                self._no_replay.add(index)
                self._event(f"{name}: timed out after {self.timeout} s")
            strays = self.km.kill_strays() if hasattr(self.km, "kill_strays") else 0
            if strays:
                self._event(f"{name}: ended {strays} process(es) the cell left running")
            if self._guard_on and locked:
                changed = []
                if test:  # restore and after_locked in one request
                    changed = self._guard_call("after_test")
                else:
                    self._guard_call("after_locked")
                if changed:
                    cell.outputs.append(_error(
                        "GradingTampered",
                        "while this test ran, the code under test changed what the tests rely on: "
                        + "; ".join(changed[:5]) + ". The test does not count.",
                    ))
                    self._event(f"{name}: tampering during the test: {'; '.join(changed)}")
        except DeadKernelError:
            reason = self._death_reason()
            cell.outputs.append(_error("KernelDied", f"the kernel {reason} while this cell ran"))
            self._event(f"{name}: the kernel {reason}")
            self._recover(index)
        except TimeoutError:
            cell.outputs.append(_error("KernelUnresponsive", "the kernel stopped answering the grader"))
            self._event(f"{name}: the kernel stopped answering the grader")
            self._recover(index)
        return cell, resources

    # ------------------------------------------------------------------------------------------
    # Output cap.

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg["msg_type"] == "error":
            content["traceback"] = [t[:2000] for t in content.get("traceback", [])[:60]]
            return super().output(outs, msg, display_id, cell_index)
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        room = self.max_output_bytes - self._cell_bytes
        self._cell_bytes += size
        if size <= room:
            return super().output(outs, msg, display_id, cell_index)
        if msg["msg_type"] == "stream" and room > 0:
            content["text"] = content["text"][:room]
            super().output(outs, msg, display_id, cell_index)
        if not self._cut:
            self._cut = True
            self._event(f"cell {cell_index}: output cut at {self.max_output_bytes} bytes")
            outs.append(new_output("stream", name="stdout",
                                   text=f"\n[grader] output cut: a cell may print at most {self.max_output_bytes} bytes.\n"))
        return None

    # ------------------------------------------------------------------------------------------
    # Talking to the kernel between cells.

    async def _async_request(self, code="", user_expressions=None, timeout=None):
        """Run code silently (no history, no hooks); return the reply, or raise TimeoutError."""
        msg_id = await ensure_async(self.kc.execute(code, silent=True, store_history=False,
                                                    user_expressions=user_expressions or {}, allow_stdin=False))
        deadline = time.monotonic() + (timeout or self.guard_timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(code[:80])
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=min(left, 1.0)))
            except Empty:
                if not await ensure_async(self.kc.is_alive()):
                    raise DeadKernelError("Kernel died") from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    _request = run_sync(_async_request)

    def _guard_call(self, function: str) -> list[str]:
        reply = self._request(user_expressions={"g": _GUARD.format(function)})
        result = reply["content"].get("user_expressions", {}).get("g", {})
        if result.get("status") != "ok":
            return [f"the grading guard failed ({result.get('ename', '?')}: {result.get('evalue', '')})"]
        value = ast.literal_eval(result["data"]["text/plain"])
        return value if isinstance(value, list) else []

    def _install_guard(self) -> None:
        """Install the guard in a fresh kernel, before any student code; without it, say so."""
        failed = self._guard_call("install")
        self._guarded, self._guard_on = True, not failed
        if failed:
            self._event(f"the grading guard could not be installed, tests run unguarded: {failed[0]}")

    def _responsive(self) -> bool:
        try:
            self._request(timeout=max(5, self.guard_timeout))
            return True
        except (TimeoutError, DeadKernelError):
            return False

    # ------------------------------------------------------------------------------------------
    # A dead or hung kernel: start another, replay the cells above, go on.

    def _death_reason(self) -> str:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        code = process.poll() if process is not None else None
        if code is None:
            return "stopped responding"
        signum = -code if code < 0 else code - 128 if code > 128 else 0
        if signum in _SIGNALS:
            return _SIGNALS[signum]
        if signum > 0:
            return f"was killed by signal {signum}"
        return f"exited with status {code} (exit(), os._exit() or a fatal error)"

    def _recover(self, index: int) -> None:
        self._no_replay.add(index)
        self._restarts += 1
        if self._restarts > self.kernel_restarts:
            self._gave_up = f"the kernel was restarted {self.kernel_restarts} times; the rest of the notebook is not run"
            self._event(self._gave_up)
            self._stop_kernel()
            return
        try:
            self._fresh_kernel()
            for j, cell in enumerate(self.nb.cells[:index]):
                if cell.cell_type == "code" and cell.source.strip() and j not in self._no_replay:
                    self._replay(cell)
        except (DeadKernelError, TimeoutError, RuntimeError) as exc:
            self._gave_up = f"the kernel could not be brought back to this cell ({type(exc).__name__})"
            self._event(self._gave_up)
            self._stop_kernel()

    def _replay(self, cell) -> None:
        meta = cell.metadata.get("nbgrader", {})
        locked = bool(meta.get("locked")) and not meta.get("solution")
        if self._guard_on and locked:
            self._guard_call("before_locked")
        self._request(cell.source, timeout=self.timeout)
        if self._guard_on and locked:
            self._guard_call("after_locked")

    def _fresh_kernel(self) -> None:
        self._stop_kernel()
        self.km = self.create_kernel_manager()
        self.start_new_kernel()
        self.start_new_kernel_client()
        self._guarded = self._guard_on = False
        if self.guard:
            self._install_guard()

    def _stop_kernel(self) -> None:
        if self.km is not None:
            try:
                self._cleanup_kernel()
            except Exception:  # a kernel that is already gone
                pass
        self.km, self.kc = None, None

    def _event(self, text: str) -> None:
        self.log.warning("%s", text)
        self._events.append(text)

    # nbclient's own cleanup must cope with a kernel we already stopped after giving up
    async def _async_cleanup_kernel(self):
        if self.km is None:
            return
        await super()._async_cleanup_kernel()

    _cleanup_kernel = run_sync(_async_cleanup_kernel)


def _error(ename: str, evalue: str):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _timed_out(cell) -> bool:
    return any(o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError" for o in cell.outputs)


__all__ = ["GuardedExecute"]
