"""lstm_ref's LSTM against torch.nn.LSTM on the CPU: forward + backward, as a ratio in one run.

    python benchmarks/bench_lstm.py [--repeats K] [--quick]

For each size and dtype both implementations compute the hidden states of a whole sequence
and then every gradient (inputs, initial states, all weights) for the same upstream gradient.
Before timing, the outputs and gradients are compared, so a wrong computation is never timed.
Each timing is the best of K repeats after a warm-up; the ratio ours/torch is what to read,
since both are measured on the same machine in the same minute.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lstm_ref import init_lstm_params, lstm_backward, lstm_forward
from lstm_ref.torch_interop import lstm_params_from_torch, lstm_params_to_torch

SIZES = [(100, 1, 10, 32), (100, 32, 64, 128), (200, 64, 128, 256)]
TARGETS = {  # (dtype, size) -> largest acceptable ratio ours/torch
    ("float32", (100, 32, 64, 128)): 1.5,
    **{("float64", s): 1.0 for s in SIZES},
}


def make_case(T, N, D, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = init_lstm_params(D, H, rng, dtype=dtype)
    xs = rng.standard_normal((T, N, D)).astype(dtype)
    h0 = rng.standard_normal((N, H)).astype(dtype)
    c0 = rng.standard_normal((N, H)).astype(dtype)
    dhs = rng.standard_normal((T, N, H)).astype(dtype)
    module = torch.nn.LSTM(D, H).to(torch.float64 if dtype == np.float64 else torch.float32)
    lstm_params_to_torch(params, module)
    return params, xs, h0, c0, dhs, module


def ours(params, xs, h0, c0, dhs):
    hs, _, cache = lstm_forward(xs, h0, c0, params)
    dxs, dh0, dc0, grads = lstm_backward(dhs, cache)
    return hs, dxs, dh0, dc0, grads


def theirs(module, xs, h0, c0, dhs):
    module.zero_grad(set_to_none=True)
    x = torch.from_numpy(xs).requires_grad_()
    h = torch.from_numpy(h0)[None].requires_grad_()
    c = torch.from_numpy(c0)[None].requires_grad_()
    out, _ = module(x, (h, c))
    out.backward(torch.from_numpy(dhs))
    return out, x.grad, h.grad[0], c.grad[0]


def max_difference(params, xs, h0, c0, dhs, module) -> float:
    """Largest absolute difference over the outputs and every gradient."""
    hs, dxs, dh0, dc0, grads = ours(params, xs, h0, c0, dhs)
    out, dx, dh, dc = theirs(module, xs, h0, c0, dhs)
    # torch's weight gradients, in our layout (its two biases get the same gradient)
    torch_grads = {k.replace("weight", "W"): p.grad for k, p in module.named_parameters()}
    as_ours = lstm_params_from_torch(_grads_as_module(module, torch_grads))
    pairs = [(hs, out), (dxs, dx), (dh0, dh), (dc0, dc)] + [(grads[k], as_ours[k] / (2 if k.startswith("b_") else 1)) for k in grads]
    return max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b.detach().numpy() if torch.is_tensor(b) else b, np.float64)))) for a, b in pairs)


def _grads_as_module(module, torch_grads):
    """A copy of the module whose parameters hold the gradients, so the converter can unstack them."""
    copy = torch.nn.LSTM(module.input_size, module.hidden_size).to(module.weight_ih_l0.dtype)
    with torch.no_grad():
        for name, p in copy.named_parameters():
            p.copy_(torch_grads[name.replace("weight", "W")])
    return copy


def best_of(fn, repeats) -> float:
    fn()  # warm-up: allocations, torch's first-call dispatch
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (best is kept)")
    parser.add_argument("--quick", action="store_true", help="the two smaller sizes only")
    args = parser.parse_args()
    sizes = SIZES[:2] if args.quick else SIZES
    print(f"torch {torch.__version__}, numpy {np.__version__}, torch threads: {torch.get_num_threads()}")
    print(f"best of {args.repeats} runs of forward + backward over the whole sequence\n")
    header = f"{'dtype':8} {'T':>4} {'N':>4} {'D':>4} {'H':>4} {'ours ms':>9} {'torch ms':>9} {'ratio':>6} {'max diff':>9}  target"
    print(header)
    print("-" * len(header))
    for dtype in (np.float32, np.float64):
        for size in sizes:
            params, xs, h0, c0, dhs, module = make_case(*size, dtype)
            diff = max_difference(params, xs, h0, c0, dhs, module)
            tol = 1e-3 if dtype == np.float32 else 1e-9
            if diff > tol:
                raise SystemExit(f"{np.dtype(dtype).name} {size}: ours and torch differ by {diff:.2e}; not timing a wrong result")
            t_ours = best_of(lambda: ours(params, xs, h0, c0, dhs), args.repeats)
            t_torch = best_of(lambda: theirs(module, xs, h0, c0, dhs), args.repeats)
            ratio = t_ours / t_torch
            name = np.dtype(dtype).name
            target = TARGETS.get((name, size))
            verdict = "" if target is None else f"<= {target:.1f}: {'met' if ratio <= target else 'MISSED'}"
            print(f"{name:8} {size[0]:>4} {size[1]:>4} {size[2]:>4} {size[3]:>4} "
                  f"{t_ours * 1e3:>9.2f} {t_torch * 1e3:>9.2f} {ratio:>6.2f} {diff:>9.1e}  {verdict}")


if __name__ == "__main__":
    main()
