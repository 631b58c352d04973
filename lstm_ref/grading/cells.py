"""Recurrent cells (RNN, LSTM, GRU): forward and backward, step and sequence, checked with diagnoses."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ._common import NDARRAY as _NDARRAY
from ._common import GradingError
from ._common import describe as _describe
from ._common import fmt as _fmt
from .calls import call_student, trusted
from .compare import compare
from .reference import check_numpy_intact, reference

def _family(family: str):
    """The reference's CellFamily for "rnn", "lstm" or "gru" (see lstm_ref.families)."""
    return reference().families.family(family)


def cell_case(family: str, T: int, N: int, D: int, H: int, seed: int, dtype=np.float64, scale: float = 1.0):
    """Random inputs for a cell: (xs (T, N, D), states [(N, H), ...], params), seeded.

    Parameters are drawn at scale/sqrt(H) so gates are neither saturated nor all near 0.5.
    """
    cell = _family(family)
    rng = np.random.default_rng(seed)
    params = {k: (rng.standard_normal(s) * scale / np.sqrt(H)).astype(dtype) for k, s in cell.param_shapes(D, H).items()}
    xs = rng.standard_normal((T, N, D)).astype(dtype)
    states = [rng.standard_normal((N, H)).astype(dtype) for _ in range(cell.n_states)]
    return xs, states, params


def _term(key: str, family: str) -> str:
    gate = key.split("_")[1][-1]
    where = _family(family).gate_names.get(gate, "")
    if key.startswith("W_x"):
        return f"x @ {key}" + (f" ({where})" if where else "")
    if key.startswith("W_h"):
        return f"h_prev @ {key}" + (f" ({where})" if where else "")
    return f"+ {key}" + (f" ({where})" if where else "")


def _outputs(result, n_out: int, name: str, returns: str):
    if not isinstance(result, tuple) or len(result) != n_out + 1:
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else _describe(result)
        raise GradingError(f"{name} should return {returns}; got {got}.")
    return list(result[:n_out]), result[n_out]


def _forward_differs(student_fn, family, step, x, states, params, atol, name) -> bool:
    cell = _family(family)
    n_states, ref_fn = cell.n_states, cell.step_forward if step else cell.forward
    expected = ref_fn(x, *states, params)[:n_states]
    got, _ = call_student(student_fn, x, *states, params, name=name)
    if not isinstance(got, tuple) or len(got) < n_states:
        return True
    for g, e in zip(got[:n_states], expected):
        if not isinstance(g, _NDARRAY) or g.shape != e.shape:
            return True
        if float(_NDARRAY.max((_NDARRAY.astype(g, np.float64) - e).__abs__(), initial=0.0)) > atol:
            return True
    return False


def _probe(student_fn, family, step, x, states, params, atol, name) -> str:
    """Find the terms that are wrong: zero every parameter but one and compare again."""
    zero = {k: _NDARRAY.copy(v) * 0 for k, v in params.items()}
    wrong = []
    if _forward_differs(student_fn, family, step, x, states, zero, atol, name):
        wrong.append("with every parameter zero")
    for key in params:
        only = dict(zero, **{key: params[key]})
        if _forward_differs(student_fn, family, step, x, states, only, atol, name):
            wrong.append(_term(key, family))
    if not wrong:
        return ""
    if wrong[0] == "with every parameter zero":
        return (" Isolation probe: the output is already wrong with every parameter zero, so the way the "
                "gates and states are combined (not a weight) is at fault"
                + (f"; the terms {', '.join(wrong[1:])} differ too." if len(wrong) > 1 else "."))
    return (" Isolation probes (all parameters zero but one) find the error in: " + ", ".join(wrong)
            + ". Check the gate each of these feeds, and whether a matrix is transposed.")


def check_forward(
    student_fn: Callable,
    family: str,
    *,
    step: bool,
    name: str,
    cases: Iterable[tuple],
    atol: float = 1e-10,
    student_step: Callable | None = None,
    step_name: str = "",
) -> None:
    """Check a student's step or sequence forward against the reference on several cases.

    student_fn: (x, *states, params) -> (h, cache) for the RNN/GRU, (h, c, cache) for the LSTM
    (sequences: (hs, cache) / (hs, cs, cache)); family: "rnn", "lstm" or "gru"; step: True for
    a step function (x (N, D)), False for a sequence (xs (T, N, D)); cases: tuples
    (T, N, D, H, seed) or (T, N, D, H, seed, dtype). On a mismatch the message names the first
    wrong entry and, from isolation probes, the term at fault; for a sequence it also says
    whether the student's step function (student_step) is already wrong, or at which time step
    the sequence first goes wrong. A sequence forward's cache must be the list of its T step
    caches. Inside ``substitute(globals(), lstm_step_forward=...)`` the
    name ``lstm_step_forward`` is the stand-in, so save the student's step under another name
    before entering the block and pass that as student_step.
    """
    check_numpy_intact()
    cell = _family(family)
    n_states, ref_fn = cell.n_states, cell.step_forward if step else cell.forward
    outs = ["h", "c"][:n_states] if step else ["hs", "cs"][:n_states]
    returns = "(" + ", ".join(outs + ["cache"]) + ")"
    for case in cases:
        T, N, D, H, seed, *rest = case
        dtype = rest[0] if rest else np.float64
        xs, states, params = cell_case(family, 1 if step else T, N, D, H, seed, dtype)
        x = xs[0] if step else xs
        expected = ref_fn(x, *states, params)[:n_states]
        result, _ = call_student(student_fn, x, *states, params, name=name)
        got, cache = _outputs(result, n_states, name, returns)
        shape_desc = f"(N, D, H) = {(N, D, H)}" if step else f"(T, N, D, H) = {(T, N, D, H)}"
        inputs = f"{shape_desc}, {np.dtype(dtype).name}, seed {seed}"
        for label, g, e in zip(outs, got, expected):
            try:
                compare(g, e, name=f"{label} from {name}", atol=atol, inputs=inputs)
            except GradingError as err:
                message = str(err)
                if not step and isinstance(g, _NDARRAY) and g.shape == e.shape:
                    message += _first_bad_step(g, e, atol)
                    if student_step is not None:
                        message += _step_verdict(student_step, family, xs, states, params, atol, step_name)
                if isinstance(g, _NDARRAY) and g.shape == e.shape and g.dtype == e.dtype:
                    message += _probe(student_fn, family, step, x, states, params, atol, name)
                raise GradingError(message) from None
        if not step:  # the values are right; the backward needs the cache in the agreed form too
            _check_step_caches(cache, T, name)


def _check_step_caches(cache, T: int, name: str) -> None:
    """The exercises fix a sequence forward's cache as the list of its T step caches, in time order."""
    if not isinstance(cache, list) or len(cache) != T:
        got = f"a list of {len(cache)}" if isinstance(cache, list) else _describe(cache)
        raise GradingError(
            f"The cache that {name} returns should be the list of its T = {T} step caches, in time order; "
            f"got {got}. The backward pass reads one step's cache per time step: append each step's cache to a list."
        )


def step_loop(family: str) -> Callable:
    """A trusted sequence forward that loops the reference step and caches the list of step caches.

    The exercises fix the cache of a sequence forward as the list of its steps' caches, in time
    order; a student's sequence backward is then tested on the caches this function makes, so
    a bug in the student's own sequence forward is not charged to the backward as well.
    Returns f(xs, *states, params) -> (hs[, cs], [cache_0, ..., cache_{T-1}]).
    """
    cell = _family(family)
    n_states, ref_step = cell.n_states, cell.step_forward

    def loop(xs, *args):
        *states, params = args
        outs, caches = [[] for _ in range(n_states)], []
        for x in xs:
            *states, cache = ref_step(x, *states, params)
            for n in range(n_states):
                outs[n].append(states[n])
            caches.append(cache)
        return (*(np.stack(o) for o in outs), caches)

    return trusted(loop)


def _first_bad_step(got, expected, atol) -> str:
    bad = (_NDARRAY.astype(got, np.float64) - expected).__abs__() > atol
    per_step = [bool(_NDARRAY.any(bad[t])) for t in range(bad.shape[0])]
    first = per_step.index(True)
    return f" The first wrong time step is t = {first} of T = {bad.shape[0]}."


def _step_verdict(student_step, family, xs, states, params, atol, step_name) -> str:
    try:
        wrong = _forward_differs(student_step, family, True, xs[0], states, params, atol, step_name)
    except GradingError:
        wrong = True
    if wrong:
        return f" Your {step_name} is already wrong on the first step: fix it first."
    return (f" Your {step_name} is right on the first step, so the loop is at fault: is each step fed the "
            "state the previous step returned, and is every step's output stored?")


def _scalar_loss(student_fwd, family, upstream, name):
    """The scalar sum(upstream * outputs) as a function of one input, for finite differences."""
    n_states = _family(family).n_states
    n_up = len(upstream)

    def loss(args):
        result, _ = call_student(student_fwd, *args, name=name)
        outs, _ = _outputs(result, n_states, name, "its outputs and a cache")
        total = 0.0
        for o, u in zip(outs[:n_up], upstream):
            total += float(_NDARRAY.sum(_NDARRAY.astype(o, np.float64) * u))
        return total

    return loss


def check_backward(
    student_fwd: Callable,
    student_bwd: Callable,
    family: str,
    *,
    step: bool,
    name: str,
    fwd_name: str,
    cases: Iterable[tuple],
    tol: float = 1e-6,
) -> None:
    """Check a student's backward pass by finite differences of the student's own forward.

    Judging the backward against the derivative of the student's forward (not the reference's)
    charges a wrong forward to the forward only. student_fwd/student_bwd: the pair to check;
    step: True for a step backward, (dh[, dc], cache) -> (dx, dh_prev[, dc_prev], grads);
    False for a sequence backward, (dhs, cache) -> (dxs, dh0[, dc0], grads); cases: tuples
    (T, N, D, H, seed); tol: bound on the norm-wise relative error of each gradient. Every
    input gradient and every parameter gradient is checked, and the message names the first
    that fails, its worst entry and, for a sequence, whether the error enters at the last step.
    """
    check_numpy_intact()
    cell = _family(family)
    n_states, shapes = cell.n_states, cell.param_shapes
    ref = reference()
    for case in cases:
        T, N, D, H, seed = case[:5]
        xs, states, params = cell_case(family, 1 if step else T, N, D, H, seed)
        x = xs[0] if step else xs
        rng = np.random.default_rng(seed + 1)
        out_shape = (N, H) if step else (T, N, H)
        upstream = [rng.standard_normal(out_shape)]
        if step and n_states == 2:
            upstream.append(rng.standard_normal((N, H)))
        result, _ = call_student(student_fwd, x, *states, params, name=fwd_name)
        _, cache = _outputs(result, n_states, fwd_name, "its outputs and a cache")
        back, _ = call_student(student_bwd, *upstream, cache, name=name, allow_mutation=True)
        in_names = (["dx"] if step else ["dxs"]) + (["dh_prev", "dc_prev"] if step else ["dh0", "dc0"])[:n_states]
        returns = "(" + ", ".join(in_names + ["grads"]) + ")"
        if not isinstance(back, tuple) or len(back) != n_states + 2:
            raise GradingError(f"{name} should return {returns}; got {_describe(back) if not isinstance(back, tuple) else f'a tuple of {len(back)}'}.")
        *dins, grads = back
        if not isinstance(grads, dict) or set(grads) != set(params):
            got = sorted(grads) if isinstance(grads, dict) else _describe(grads)
            raise GradingError(f"{name}'s grads should be a dict with the keys {sorted(params)}; got {got}.")
        loss = _scalar_loss(student_fwd, family, upstream, fwd_name)
        shape_desc = f"(N, D, H) = {(N, D, H)}" if step else f"(T, N, D, H) = {(T, N, D, H)}"
        checks = [(in_names[0], dins[0], lambda v: loss([v, *states, params]), x)]
        for n in range(n_states):
            def f_state(v, n=n):
                st = list(states)
                st[n] = v
                return loss([x, *st, params])
            checks.append((in_names[1 + n], dins[1 + n], f_state, states[n]))
        for key in shapes(D, H):
            checks.append((f"grads[{key!r}]", grads[key], lambda v, key=key: loss([x, *states, dict(params, **{key: v})]), params[key]))
        for label, analytic, f, at in checks:
            if not isinstance(analytic, _NDARRAY) or analytic.shape != at.shape:
                raise GradingError(f"{label} from {name} should have shape {at.shape}; got {_describe(analytic)} ({shape_desc}).")
            numeric = ref.gradcheck.numerical_gradient(f, _NDARRAY.copy(at))
            err = ref.gradcheck.rel_error(analytic, numeric)
            if not err <= tol:
                diff = (_NDARRAY.astype(analytic, np.float64) - numeric).__abs__()
                idx = tuple(int(i) for i in np.unravel_index(int(_NDARRAY.argmax(diff)), diff.shape))
                message = (
                    f"{label} from {name} fails the gradient check ({shape_desc}, seed {seed}): relative "
                    f"error {err:.1e} > {tol:.0e} against finite differences of your {fwd_name}. Worst "
                    f"entry {idx}: yours {_fmt(analytic[idx])}, finite differences {_fmt(numeric[idx])}."
                )
                if not step and analytic.ndim == 3:
                    scale = 1.0 + float(_NDARRAY.max(numeric.__abs__()))
                    bad = [bool(_NDARRAY.any(diff[t] > 1e-6 * scale)) for t in range(T)]
                    if any(bad):
                        carried = "h and c" if n_states == 2 else "h"
                        message += f" Per time step it is wrong at t = {[t for t, b in enumerate(bad) if b]}"
                        message += (f" (earlier steps only: is the gradient carried back through {carried}?)"
                                    if not bad[-1] else " (including the last step: check the step backward itself)")
                raise GradingError(message)
