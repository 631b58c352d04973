"""Wrong solutions for the GRU and memory-training exercise: each must lose the points of exactly the part it breaks."""

GRU_STEP = '''
def gru_step_forward(x, h_prev, params):
    p = params
    z = sigmoid(x @ p["W_xz"] + h_prev @ p["W_hz"] + p["b_z"])
    r = sigmoid(x @ p["W_xr"] + h_prev @ p["W_hr"] + p["b_r"])
    h_tilde = np.tanh(x @ p["W_xh"] + r * (h_prev @ p["W_hh"]) + p["b_h"])
    h = z * h_prev + (1.0 - z) * h_tilde
    return h, (x, h_prev, z, r, h_tilde)
'''

TRAIN = '''
def train_memory_model(lag, seed):
    rng = np.random.default_rng(seed)
    model = init_lstm_model(H=16, rng=rng, forget_bias=3.0)
    state, losses = {}, []
    for step in range(1000):
        xs, targets = recall_data(64, lag, rng)
        loss, grads = loss_and_grads(model, xs, targets)
        losses.append(loss)
        if len(losses) >= 20 and np.mean(losses[-20:]) < 0.02:
            break
        adam_update(model, clip_by_norm(grads, 1.0), state, lr=0.02)
    xs, targets = recall_data(2000, lag, np.random.default_rng([seed, 1]))
    accuracy = float(np.mean(predict(model, xs) == targets))
    return model, accuracy
'''

GRU_CELLS = ["test_gru_step_forward_visible", "test_gru_step_forward_hidden"]
TRAIN_ACCURACY = ["test_train_memory_model_visible", "test_train_memory_model_hidden"]
TRAIN_ALL = TRAIN_ACCURACY + ["test_train_memory_model_honest"]

WRONG = {
    "gru_update_gate_inverted": {
        # z taken as "how much to write": the convention of some texts, not the one the exercise asks for
        "cells": {"gru_step_forward": GRU_STEP.replace("h = z * h_prev + (1.0 - z) * h_tilde",
                                                        "h = z * h_tilde + (1.0 - z) * h_prev")},
        "loses": GRU_CELLS,
    },
    "gru_reset_gate_before_the_product": {
        # the 2014 paper's form, (r * h_prev) @ W_hh: a different function from nn.GRU's
        "cells": {"gru_step_forward": GRU_STEP.replace('r * (h_prev @ p["W_hh"])', '(r * h_prev) @ p["W_hh"]')},
        "loses": GRU_CELLS,
    },
    "gru_step_calls_lstm_ref": {
        "cells": {"gru_step_forward": (
            "import lstm_ref\n\n\ndef gru_step_forward(x, h_prev, params):\n"
            "    return lstm_ref.gru_step_forward(x, h_prev, params)\n")},
        "loses": GRU_CELLS,
    },
    "rnn_submitted_for_the_memory_task": {
        # trained and reported honestly, but a plain RNN stays at chance at lag 20
        "cells": {"train_memory_model": TRAIN.replace("init_lstm_model(H=16, rng=rng, forget_bias=3.0)",
                                                      "init_rnn_model(H=16, rng=rng)")},
        "loses": TRAIN_ACCURACY,
    },
    "training_loop_never_updates_the_weights": {
        # Adam updates a copy of the model, so the returned model keeps its initial weights
        "cells": {"train_memory_model": TRAIN.replace("adam_update(model,",
                                                      "adam_update({k: v.copy() for k, v in model.items()},")},
        "loses": TRAIN_ACCURACY,
    },
    "accuracy_measured_on_the_training_set": {
        # one fixed set of 32 sequences, trained on until memorised, and "evaluated" on the same set:
        # reports 1.0 while the model is near chance on fresh sequences
        "cells": {"train_memory_model": TRAIN.replace(
            "    for step in range(1000):\n        xs, targets = recall_data(64, lag, rng)\n",
            "    train_xs, train_targets = recall_data(32, lag, rng)\n"
            "    for step in range(1000):\n        xs, targets = train_xs, train_targets\n").replace(
            "xs, targets = recall_data(2000, lag, np.random.default_rng([seed, 1]))",
            "xs, targets = train_xs, train_targets")},
        "loses": TRAIN_ALL,
    },
    "hard_coded_accuracy": {
        # too little training, and a typed-in accuracy that hides it
        "cells": {"train_memory_model": TRAIN.replace("range(1000)", "range(30)").replace(
            "return model, accuracy", "return model, 1.0")},
        "loses": TRAIN_ALL,
    },
    "training_data_from_lstm_ref": {
        # lstm_ref.data.delayed_recall instead of the notebook's recall_data: a call into lstm_ref
        "cells": {"train_memory_model": "import lstm_ref\n" + TRAIN.replace(
            "recall_data(64, lag, rng)", "lstm_ref.data.delayed_recall(64, lag + 6, lag, rng)")},
        "loses": TRAIN_ALL,
    },
}
