"""Input checks shared by every cell: shapes, dtypes and parameter dicts.

Every public function of ``lstm_ref`` validates what it is given before it computes
anything, and raises ``ValueError`` with a message that says what was expected and
what came. Nothing is broadcast, cast or reshaped behind the caller's back: a
``(N,)`` hidden state where ``(N, H)`` is expected is an error, not a convenience.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


def check_array(name: str, value, shape: tuple, dims: str | None = None, note: str = "") -> np.ndarray:
    """Check that ``value`` is a floating numpy array of the given shape.

    ``shape`` is a tuple whose entries are ints (must match) or ``None`` (any size);
    ``dims`` spells the expected shape in the course notation, e.g. ``"(N, D)"``,
    for the error message, and ``note`` adds where the sizes come from. Returns ``value``.
    """
    want = dims or str(tuple("?" if s is None else s for s in shape))
    note = f" {note}" if note else ""
    if not isinstance(value, np.ndarray):
        raise ValueError(
            f"{name} must be a numpy array of shape {want}; got {_describe(value)}. "
            "Convert it with np.asarray(...) first."
        )
    if value.dtype not in FLOAT_DTYPES:
        raise ValueError(
            f"{name} must have dtype float32 or float64; got {value.dtype}. "
            "Integer or object arrays are not converted silently: use .astype(np.float64)."
        )
    if value.ndim != len(shape):
        raise ValueError(
            f"{name} must have {len(shape)} dimensions {want}; got shape {value.shape} "
            f"({value.ndim} dimensions)."
        )
    for axis, (got, expected) in enumerate(zip(value.shape, shape)):
        if expected is not None and got != expected:
            filled = tuple(value.shape[i] if s is None else s for i, s in enumerate(shape))
            named = f"{want} = {filled}" if dims and any(c.isalpha() for c in dims) else str(filled)
            raise ValueError(
                f"{name} must have shape {named}{note}; got {value.shape} "
                f"(axis {axis} is {got}, expected {expected})."
            )
    return value


def check_sequence(name: str, xs, dims: str = "(T, N, D)") -> np.ndarray:
    """Check a time-major sequence ``(T, N, D)`` with at least one step and one sample."""
    check_array(name, xs, (None, None, None), dims)
    if xs.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one time step; got T = 0 (shape {xs.shape}).")
    if xs.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one sample; got N = 0 (shape {xs.shape}).")
    return xs


def check_params(family: str, params, shapes: Mapping[str, tuple], sizes: str = "") -> np.dtype:
    """Check a parameter dict: exactly the expected keys, each with its shape, one dtype.

    ``shapes`` maps each key to its expected shape (ints); ``sizes`` says where those sizes
    come from (e.g. ``"D = 3, H = 5"``, read off the inputs) for the error message.
    Returns the common dtype.
    """
    if not isinstance(params, Mapping):
        raise ValueError(f"{family} params must be a dict of numpy arrays; got {_describe(params)}.")
    missing = [k for k in shapes if k not in params]
    extra = [k for k in params if k not in shapes]
    if missing:
        raise ValueError(
            f"{family} params are missing {missing}; expected exactly the keys {list(shapes)}."
        )
    if extra:
        raise ValueError(
            f"{family} params have unexpected keys {extra}; expected exactly the keys {list(shapes)}."
        )
    for key, shape in shapes.items():
        dims = "(" + ", ".join(str(s) for s in shape) + (",)" if len(shape) == 1 else ")")
        note = f"({sizes})" if sizes else ""
        check_array(f"params[{key!r}]", params[key], shape, dims, note)
    check_same_dtype({f"params[{k!r}]": params[k] for k in shapes})
    return params[next(iter(shapes))].dtype


def check_same_dtype(arrays: Mapping[str, np.ndarray]) -> np.dtype:
    """Check that every array has the same floating dtype; return it."""
    dtypes = {name: a.dtype for name, a in arrays.items()}
    distinct = set(dtypes.values())
    if len(distinct) > 1:
        listing = ", ".join(f"{name}: {dt}" for name, dt in dtypes.items())
        raise ValueError(
            "all inputs and parameters must share one dtype (float32 or float64), "
            f"nothing is cast silently; got {listing}."
        )
    return next(iter(distinct))


def check_like(name: str, value, like: np.ndarray, dims: str) -> np.ndarray:
    """Check that an upstream gradient matches the shape and dtype of what it differentiates."""
    check_array(name, value, like.shape, dims)
    if value.dtype != like.dtype:
        raise ValueError(
            f"{name} must have dtype {like.dtype} like the forward output it differentiates; "
            f"got {value.dtype}."
        )
    return value


def check_cache(name: str, cache, kind: str) -> None:
    """Check that ``cache`` came from the matching forward function."""
    if getattr(cache, "kind", None) != kind:
        raise ValueError(
            f"{name} must be the cache returned by the matching forward function ({kind}); "
            f"got {_describe(cache)}."
        )


class Cache:
    """What a forward pass keeps for its backward pass.

    ``kind`` names the forward function that made it (``"lstm_step"``, ``"rnn"``, ...), so a
    backward function handed the wrong cache says so instead of failing deep inside numpy.
    The other fields are attributes; their meaning is documented in each forward function.
    """

    def __init__(self, kind: str, **fields):
        self.kind = kind
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        keys = ", ".join(k for k in self.__dict__ if k != "kind")
        return f"Cache(kind={self.kind!r}; {keys})"


def check_sizes(**sizes) -> None:
    """Check that every named size (``D=3, H=5``) is a positive integer."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")


def check_rng(rng) -> None:
    """Check that ``rng`` is a numpy Generator (seeded randomness is passed in, never global)."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng must be a numpy Generator, e.g. np.random.default_rng(0); got a {type(rng).__name__}."
        )


def check_cell_inputs(family: str, x, states: Mapping[str, np.ndarray], params, param_shapes) -> None:
    """Check one step's inputs: x (N, D), each state (N, H), the parameter dict, one dtype.

    states maps names to arrays in order ({"h_prev": ..., "c_prev": ...}); H is read off the
    first. param_shapes(D, H) gives the expected parameter shapes.
    """
    check_array("x", x, (None, None), "(N, D)")
    N, D = x.shape
    if N == 0:
        raise ValueError(f"x must hold at least one sample; got N = 0 (shape {x.shape}).")
    names = list(states)
    check_array(names[0], states[names[0]], (N, None), "(N, H)")
    H = states[names[0]].shape[1]
    for name in names[1:]:
        check_array(name, states[name], (N, H), "(N, H)")
    check_params(family, params, param_shapes(D, H), f"D = {D} from x, H = {H} from {names[0]}")
    first = next(iter(param_shapes(D, H)))
    check_same_dtype({"x": x, **states, f"params[{first!r}]": params[first]})


def check_ids(name: str, ids, shape: tuple, dims: str, V: int | None = None) -> np.ndarray:
    """Check an integer array of token ids: its shape, no empty axis, every id in [0, V).

    ``shape`` holds ints or ``None`` as in check_array; ``V`` is the vocabulary size the ids
    index into (None skips the range check). Booleans and floats are refused, not cast:
    a float array of "ids" is almost always logits or probabilities passed by mistake.
    """
    if not isinstance(ids, np.ndarray):
        raise ValueError(
            f"{name} must be a numpy integer array of shape {dims}; got {_describe(ids)}. "
            "Convert it with np.asarray(..., dtype=np.int64) first."
        )
    if ids.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must hold integer token ids (dtype int64 or another integer type); got dtype "
            f"{ids.dtype}. Floats or booleans are not converted silently: did you pass logits or "
            "probabilities instead of ids?"
        )
    if ids.ndim != len(shape):
        raise ValueError(f"{name} must have {len(shape)} dimensions {dims}; got shape {ids.shape}.")
    for axis, (got, expected) in enumerate(zip(ids.shape, shape)):
        if expected is not None and got != expected:
            raise ValueError(
                f"{name} must have shape {dims} = {tuple(ids.shape[i] if s is None else s for i, s in enumerate(shape))}; "
                f"got {ids.shape} (axis {axis} is {got}, expected {expected})."
            )
        if got == 0:
            raise ValueError(f"{name} must not be empty; got shape {ids.shape} (axis {axis} has length 0).")
    if V is not None:
        bad = np.flatnonzero((ids.reshape(-1) < 0) | (ids.reshape(-1) >= V))
        if bad.size:
            where = np.unravel_index(bad[0], ids.shape)
            raise ValueError(
                f"{name} must hold ids in [0, V) = [0, {V}); got {ids.reshape(-1)[bad[0]]} at index "
                f"{tuple(int(i) for i in where)} ({bad.size} id(s) out of range)."
            )
    return ids


def check_mask(name: str, mask, shape: tuple, dims: str) -> np.ndarray:
    """Check a boolean mask of exactly the given shape (True marks the entries that count)."""
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        got = f"dtype {mask.dtype}" if isinstance(mask, np.ndarray) else _describe(mask)
        raise ValueError(
            f"{name} must be a boolean numpy array of shape {dims} = {shape} or None; got {got}. "
            "Use mask.astype(bool) if it holds 0/1."
        )
    if mask.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {dims} = {tuple(shape)}; got {mask.shape}.")
    return mask


def check_temperature(temperature) -> float:
    """Check a sampling temperature: a finite real number >= 0 (0 means greedy). Returns it as a float."""
    if isinstance(temperature, (bool, np.bool_)) or not isinstance(temperature, (int, float, np.integer, np.floating)):
        raise ValueError(f"temperature must be a real number >= 0; got {_describe(temperature)}.")
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(
            f"temperature must be a finite number >= 0 (0 means greedy, 1 the model's own distribution); "
            f"got {temperature!r}."
        )
    return float(temperature)


# Checks of plain arguments: counts, positive numbers, dtypes, arrays of any shape, dicts of arrays.


def check_float_dtype(dtype) -> np.dtype:
    """The numpy dtype named by dtype if it is float32 or float64; ValueError otherwise."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64; got {dtype!r}.")
    return dt


def check_count(name: str, value, low: int = 0) -> None:
    """Like check_sizes, for counts that may be zero (a lag of 0 steps is a valid task)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")


def check_positive(name: str, value) -> None:
    """A real number > 0 (not a bool, not nan)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
        raise ValueError(f"{name} must be a positive number; got {value!r}.")


def check_float_array(name: str, z) -> np.ndarray:
    """A float32 or float64 numpy array of any shape."""
    if not isinstance(z, np.ndarray):
        raise ValueError(f"{name} must be a numpy array; got a {type(z).__name__}.")
    return check_array(name, z, (None,) * z.ndim, "(any shape)")


def check_grads(grads) -> None:
    """A non-empty dict of float arrays of any shapes (what a backward pass returns)."""
    if not isinstance(grads, Mapping):
        raise ValueError(f"grads must be a dict of numpy arrays; got {_describe(grads)}.")
    if not grads:
        raise ValueError("grads must hold at least one array; got an empty dict.")
    for key, g in grads.items():
        check_array(f"grads[{key!r}]", g, (None,) * np.ndim(g), "(any shape)")
