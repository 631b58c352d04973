"""The LSTM cell diagram of chapters 4 and 5: one time step, drawn with matplotlib.

Chapter 4 highlights the parts of the forward pass one at a time; chapter 5 draws the gradients of the
backward pass on top of the same picture, in a second colour and a second line style (dashed, with
arrowheads pointing back), so the two can be told apart without colour vision. The pages import it
(`from lstm_diagram import draw_lstm_cell`), since the kernel that executes a page runs in its folder.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyBboxPatch

SIGMOID_FILL, TANH_FILL, BELT, DIM = "#56B4E9", "#E69F00", "#0072B2", "0.82"  # Okabe-Ito
GRADIENT = "#D55E00"  # Okabe-Ito vermillion: apart from the blues and the orange fill for every colour vision
GRADIENT_DASHES = (0, (3.2, 1.6))
PARTS = {"belt": {"cell", "update"}, "f": {"forget", "update"}, "i": {"input", "update"},
         "g": {"candidate", "update"}, "o": {"output"}, "mul_f": {"cell", "forget", "update"},
         "mul_i": {"input", "candidate", "update"}, "add": {"cell", "update"}, "out": {"output"}}

# The backward pass, one step of the derivation per key. "parts": the boxes and nodes the gradient passes
# (they keep their colours; the rest of the forward picture is greyed out); "paths": polylines from where
# the gradient arrives to where it goes, an arrowhead at the end, each in a lane 0.2 beside the forward
# wire it runs back along, so the two never overlap; "labels": (x, y, text).
BACKWARD = {
    "output": {
        "parts": {"o", "out_mul"},
        "paths": [([9.9, 9.9], [6.75, 3.2]), ([11.8, 9.25], [3.1, 3.1]), ([8.8, 8.16], [3.1, 3.1])],
        "labels": [(10.35, 3.3, r"from $t+1$"), (9.05, 3.3, r"$dh_t$"), (9.3, 6.2, r"$g_t$"),
                   (8.15, 2.2, r"$do_t$")],
    },
    "cell": {
        "parts": {"out_mul", "out_tanh", "add"},
        "paths": [([9.2, 9.2], [3.12, 3.86]), ([9.2, 9.2], [4.74, 5.22]), ([11.8, 5.85], [5.2, 5.2])],
        "labels": [(9.35, 3.35, r"$dh_t \odot o_t$"), (10.6, 4.8, r"$dc_t^{\mathrm{next}}$"),
                   (7.0, 4.8, r"$dc_t$")],
    },
    "forget": {
        "parts": {"add", "mul_f", "f"},
        "paths": [([5.4, 3.2], [5.2, 5.2]), ([2.78, 0.0], [5.2, 5.2]), ([2.8, 2.8], [5.05, 3.36])],
        "labels": [(4.1, 4.8, r"$dc_t$"), (0.0, 4.75, r"$dc_{t-1}^{\mathrm{next}}$"), (2.05, 4.0, r"$df_t$")],
    },
    "input": {
        "parts": {"add", "mul_i", "i", "g"},
        "paths": [([7.0, 5.85, 5.85], [5.2, 5.2, 4.45]), ([5.42, 4.4, 4.4], [4.5, 4.5, 3.36]),
                  ([5.78, 6.0, 6.0], [4.1, 4.1, 3.36])],
        "labels": [(6.6, 4.75, r"$dc_t$"), (3.65, 3.75, r"$di_t$"), (6.45, 4.0, r"$d\tilde c_t$")],
    },
    "merge": {
        "parts": {"f", "i", "g", "o"},
        "paths": [([x - 0.2, x - 0.2], [2.44, 1.4]) for x in (3.0, 4.6, 6.2, 7.6)]
        + [([7.4, 0.0], [1.4, 1.4]), ([1.5, 1.5], [1.4, -0.25])],
        "labels": [(3.1, 1.75, r"$da_f$"), (4.7, 1.75, r"$da_i$"), (6.3, 1.75, r"$da_c$"),
                   (7.7, 1.75, r"$da_o$"), (0.0, 1.6, r"$dh_{t-1}$"), (0.65, -0.2, r"$dx_t$")],
    },
}

def draw_lstm_cell(highlight=None, backward=None):
    """Draw one LSTM step, as chapter 4's figures show it.

    highlight: None for the whole cell in colour, or one part of the forward pass ("cell", "forget",
        "input", "candidate", "update", "output"): only that part keeps its colours.
    backward: None, or one step of the backward pass (a key of BACKWARD: "output", "cell", "forget",
        "input", "merge"): the forward picture is greyed out except the boxes and nodes that step
        passes through, and its gradients are drawn on top, dashed, in vermillion, pointing back.
    """
    fig, ax = plt.subplots(figsize=(9, 5.2))
    lit_parts = BACKWARD[backward]["parts"] if backward else set()
    on = lambda part: backward is None and (highlight is None or highlight in PARTS[part])
    ink = lambda part: "black" if on(part) else DIM

    def line(xs, ys, part, arrow=False, color=None, lw=1.8):
        color = color or ink(part)
        ax.plot(xs, ys, color=color, lw=lw, solid_capstyle="butt")
        if arrow:
            ax.annotate("", xy=(xs[-1], ys[-1]), xytext=(xs[-2], ys[-2]),
                        arrowprops=dict(arrowstyle="-|>", color=color, lw=lw, mutation_scale=16))

    def node(x, y, symbol, part, name=None):
        color = "black" if (name or part) in lit_parts else ink(part)
        ax.add_patch(Circle((x, y), 0.27, fc="white", ec=color, lw=1.8, zorder=3))
        ax.text(x, y, symbol, ha="center", va="center", fontsize=15, color=color, zorder=4)

    def box(x, y, label, part, fill, name=None):
        lit = on(part) or (name or part) in lit_parts
        ax.add_patch(FancyBboxPatch((x - 0.475, y - 0.38), 0.95, 0.76, boxstyle="round,pad=0.04",
                                    fc=fill if lit else "0.93", ec="black" if lit else DIM, lw=1.5, zorder=3))
        ax.text(x, y, label, ha="center", va="center", fontsize=13, color="black" if lit else DIM, zorder=4)

    ax.add_patch(FancyBboxPatch((1.0, 0.55), 9.5, 5.55, boxstyle="round,pad=0.1", fc="0.97", ec="0.6"))
    belt = BELT if on("belt") else DIM
    line([0.0, 2.73], [5.4, 5.4], "belt", color=belt, lw=4)
    line([3.27, 5.33], [5.4, 5.4], "belt", color=belt, lw=4)
    line([5.87, 11.8], [5.4, 5.4], "belt", arrow=True, color=belt, lw=4)
    ax.text(0.0, 5.7, r"$c_{t-1}$", fontsize=14, color=ink("belt"))
    ax.text(11.3, 5.7, r"$c_t$", fontsize=14, color=ink("belt"))
    ax.text(5.75, 6.45, "cell state: the conveyor belt", ha="center", fontsize=12, color=ink("belt"))
    ax.plot([0.0, 7.6], [1.2, 1.2], color="0.35", lw=1.8)
    line([1.7, 1.7], [-0.25, 1.2], "bus", arrow=True, color="0.35")
    ax.text(0.0, 0.78, r"$h_{t-1}$", fontsize=14, color="0.25")
    ax.text(1.85, -0.2, r"$x_t$", fontsize=14, color="0.25")
    ax.text(3.75, 0.78, r"$[x_t,\ h_{t-1}]$ feeds all four boxes", fontsize=11, color="0.25")
    for x, part, label, fill, name in [(3.0, "f", r"$\sigma$", SIGMOID_FILL, r"$f_t$"),
                                       (4.6, "i", r"$\sigma$", SIGMOID_FILL, r"$i_t$"),
                                       (6.2, "g", "tanh", TANH_FILL, r"$\tilde c_t$"),
                                       (7.6, "o", r"$\sigma$", SIGMOID_FILL, r"$o_t$")]:
        ax.plot([x, x], [1.2, 2.52], color=ink(part) if highlight or backward else "0.35", lw=1.8)
        box(x, 2.9, label, part, fill)
        ax.text(x + 0.12, 3.55, name, fontsize=14, color="black" if part in lit_parts else ink(part))
    line([3.0, 3.0], [3.28, 5.13], "f", arrow=True)        # f_t scales the belt
    node(3.0, 5.4, r"$\times$", "mul_f")
    line([4.6, 4.6, 5.33], [3.28, 4.3, 4.3], "i", arrow=True)   # i_t times the candidate ...
    line([6.2, 6.2, 5.87], [3.28, 4.3, 4.3], "g", arrow=True)
    node(5.6, 4.3, r"$\times$", "mul_i")
    line([5.6, 5.6], [4.57, 5.13], "mul_i", arrow=True)          # ... is added to the belt
    node(5.6, 5.4, "+", "add")
    line([9.0, 9.0], [5.4, 4.66], "out", arrow=True)             # h_t = o_t * tanh(c_t)
    box(9.0, 4.3, "tanh", "out", TANH_FILL, name="out_tanh")
    line([9.0, 9.0], [3.92, 3.17], "out", arrow=True)
    line([8.08, 8.73], [2.9, 2.9], "o", arrow=True)
    node(9.0, 2.9, r"$\times$", "out", name="out_mul")
    line([9.27, 11.8], [2.9, 2.9], "out", arrow=True)
    line([10.1, 10.1], [2.9, 5.22], "out")
    line([10.1, 10.1], [5.58, 6.9], "out", arrow=True)
    ax.text(11.3, 2.45, r"$h_t$", fontsize=14, color=ink("out"))
    ax.text(10.25, 6.6, r"$h_t$ to the next layer", fontsize=11, color=ink("out"))
    if backward:
        _draw_gradients(ax, BACKWARD[backward])
    ax.set(xlim=(-0.2, 12.2), ylim=(-0.45, 7.1), aspect="equal")
    ax.axis("off")
    plt.show()


def _draw_gradients(ax, step):
    """The gradients of one backward step, over the greyed-out cell, and a key to the line style."""
    for xs, ys in step["paths"]:
        ax.plot(xs, ys, color=GRADIENT, lw=3, ls=GRADIENT_DASHES, zorder=2.5)
        ax.annotate("", xy=(xs[-1], ys[-1]), xytext=(xs[-2], ys[-2]), zorder=2.6,
                    arrowprops=dict(arrowstyle="-|>", color=GRADIENT, lw=2, mutation_scale=20))
    for x, y, text in step["labels"]:
        ax.text(x, y, text, fontsize=14, color=GRADIENT, zorder=5,
                bbox=dict(fc="white", ec="none", pad=0.5, alpha=0.85))
    ax.plot([8.7, 9.7], [0.1, 0.1], color=GRADIENT, lw=3, ls=GRADIENT_DASHES)
    ax.text(9.85, 0.1, "gradient,\nflowing back", va="center", fontsize=11, color=GRADIENT)
