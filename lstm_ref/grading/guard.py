"""Inside a student's kernel: put the grading machinery back the way it was before each test.

A test cell trusts ``lstm_ref.grading``, numpy and the notebook's names ``grading``, ``np``,
``REF``. A notebook can reassign any of them (``grading.compare = lambda *a, **k: None``),
register IPython hooks that rewrite the cells that follow, or patch the kernel. The grader
(:class:`course_grader.execute.GuardedExecute`) calls these functions between cells
through ``user_expressions``, which bypass the notebook's input transformers:

* :func:`install`, before any student code: record the protected modules' namespaces, the
  IPython hooks, the tracers and the standard streams;
* :func:`before_locked` / :func:`after_locked`, around each of the instructor's cells: the
  module-valued names those cells bind (``np``, ``grading``, ``REF``) become protected too;
* :func:`restore`: undo every change to the above and return what was undone. Called before a
  test cell (changes made by the student's cells), and after it (changes made by the student's
  functions while the test ran, which fail the test).

This is a guard against tampering that a reader of the notebook would call cheating, not a
security boundary: code in the same process can always defeat it. The sandbox is the boundary.
"""

import sys
import threading
import types

_PREFIXES = ("lstm_ref", "_lstm_ref_grading_reference")
_MODULES = ("builtins", "math", "numpy", "numpy.random", "numpy.linalg", "numpy.lib", "warnings")
# builtins that IPython itself rebinds around every execution
_VOLATILE = {"_", "__", "___", "exit", "quit", "get_ipython", "display", "__IPYTHON__", "__builtins__", "_ih", "_oh",
             "_dh", "In", "Out"}
_TRUSTED_HOOKS = ("IPython", "ipykernel", "matplotlib", "matplotlib_inline", "ipywidgets", "comm")
_state = {}


def _protected(name):
    if name == __name__:  # the guard's own record of what to restore
        return False
    return name in _MODULES or any(name == p or name.startswith(p + ".") for p in _PREFIXES)


def _shell():
    return _state["shell"]


def _overrides(obj):
    """Instance attributes that shadow a method of the class (a patched ``run_cell``)."""
    cls = type(obj)
    return {k: v for k, v in vars(obj).items() if callable(getattr(cls, k, None))}


def _hook_lists(shell):
    manager = shell.input_transformer_manager
    lists = {
        "input_transformers_cleanup": manager.cleanup_transforms,
        "input line transforms": manager.line_transforms,
        "input token transformers": manager.token_transformers,
        "input_transformers_post": shell.input_transformers_post,
        "ast_transformers": shell.ast_transformers,
    }
    for event, callbacks in shell.events.callbacks.items():
        lists[f"events[{event!r}]"] = callbacks
    return lists


def _snapshot_modules():
    return {name: (module, dict(vars(module))) for name, module in list(sys.modules.items())
            if isinstance(module, types.ModuleType) and _protected(name)}


def install():
    """Record the state the grading machinery starts from; call before any student code."""
    import numpy  # noqa: F401  (imported so that it is recorded)
    import numpy.linalg  # noqa: F401
    import numpy.random  # noqa: F401

    import lstm_ref.grading

    lstm_ref.grading.reference()  # the private reference exists before any student code runs
    shell = sys.modules["IPython"].get_ipython()
    _state.clear()
    _state.update(
        shell=shell,
        modules=_snapshot_modules(),
        manager=shell.input_transformer_manager,
        hooks={k: list(v) for k, v in _hook_lists(shell).items()},
        overrides={id(o): (o, _overrides(o)) for o in (shell, shell.kernel, shell.kernel.session)},
        streams=(sys.stdout, sys.stderr, sys.displayhook, sys.excepthook),
        tracers=(sys.gettrace(), sys.getprofile()),
        bindings={},
        before={},
    )
    return "installed"


def before_locked():
    """Remember the notebook's bindings before one of the instructor's cells runs."""
    _state["before"] = {k: id(v) for k, v in _shell().user_ns.items()}
    return "ok"


def after_locked():
    """Protect the protected modules the instructor's cell just bound to names (np, grading, REF)."""
    modules = {id(m) for m, _ in _state["modules"].values()}
    before = _state["before"]
    for name, value in _shell().user_ns.items():
        if isinstance(value, types.ModuleType) and id(value) in modules and before.get(name) != id(value):
            _state["bindings"][name] = value
    return "ok"


def before_test():
    """before_locked() and restore() in one round trip from the grader; returns restore()'s list."""
    try:
        before_locked()
    except Exception:  # as when called alone: a failure here only loses the binding record
        pass
    return restore()


def after_test():
    """restore() and after_locked() in one round trip from the grader; returns restore()'s list."""
    changed = restore()
    try:
        after_locked()
    except Exception:
        pass
    return changed


def restore():
    """Undo every change to what the tests rely on; return a description of each change undone."""
    if not _state:
        return ["the grading guard was not installed"]
    changed = []
    shell = _shell()
    for name, (module, namespace) in _state["modules"].items():
        if sys.modules.get(name) is not module:
            sys.modules[name] = module
            changed.append(f"sys.modules[{name!r}] replaced")
        current = vars(module)
        for key, value in namespace.items():
            if name == "builtins" and key in _VOLATILE:
                continue
            if current.get(key, namespace) is not value:
                current[key] = value
                changed.append(f"{name}.{key} reassigned")
    if shell.input_transformer_manager is not _state["manager"]:
        shell.input_transformer_manager = _state["manager"]
        changed.append("the input transformer manager replaced")
    lists = _hook_lists(shell)
    for key, saved in _state["hooks"].items():
        current = lists.get(key)
        if current is None:
            continue
        extra = [f for f in current if f not in saved and not _trusted_hook(f)]
        if extra or any(f not in current for f in saved):
            current[:] = saved + [f for f in current if f not in saved and _trusted_hook(f)]
            changed.append(f"IPython {key} changed ({', '.join(_name(f) for f in extra) or 'entries removed'})")
    for obj, saved in _state["overrides"].values():
        for key, value in _overrides(obj).items():
            if saved.get(key) is not value:
                if key in saved:
                    setattr(obj, key, saved[key])
                else:
                    delattr(obj, key)
                changed.append(f"{type(obj).__name__}.{key} patched")
    stdout, stderr, displayhook, excepthook = _state["streams"]
    if (sys.stdout, sys.stderr, sys.displayhook, sys.excepthook) != (stdout, stderr, displayhook, excepthook):
        sys.stdout, sys.stderr, sys.displayhook, sys.excepthook = stdout, stderr, displayhook, excepthook
        changed.append("sys.stdout, sys.stderr or a system hook replaced")
    trace, profile = _state["tracers"]
    if sys.gettrace() is not trace or sys.getprofile() is not profile:
        sys.settrace(trace)
        sys.setprofile(profile)
        changed.append("a trace or profile function set")
    if getattr(threading, "_trace_hook", None) is not None or getattr(threading, "_profile_hook", None) is not None:
        threading.settrace(None)
        threading.setprofile(None)
        changed.append("a thread trace or profile function set")
    user_ns = shell.user_ns
    for name, module in _state["bindings"].items():
        if user_ns.get(name) is not module:
            user_ns[name] = module
            changed.append(f"the notebook's name {name!r} rebound")
    return changed


def _trusted_hook(f):
    module = getattr(f, "__module__", "") or ""
    return module.split(".")[0] in _TRUSTED_HOOKS


def _name(f):
    return f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', type(f).__name__)}"
