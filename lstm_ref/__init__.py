"""lstm_ref: the numpy reference implementation of the *Long memory* course.

RNN, LSTM and GRU cells, step and sequence, forward and backward, with the gradient checks,
gradient-flow tools and toy tasks the chapters and exercises use. Shapes are time-major,
as in PyTorch's default: a sequence is (T, N, D), hidden states are (T, N, H).

Importing this package never imports torch; ``lstm_ref.torch_interop`` does, when asked for.
"""

from . import data, gradients
from .activations import dsigmoid, dtanh, sigmoid, sigmoid_grad, tanh, tanh_grad
from .gradcheck import directional_check, numerical_gradient, rel_error
from .gru import (
    count_gru_params,
    gru_backward,
    gru_forward,
    gru_param_shapes,
    gru_step_backward,
    gru_step_forward,
    init_gru_params,
)
from .language_model import (
    char_vocabulary,
    decode,
    embedding_backward,
    embedding_forward,
    encode,
    init_lm_params,
    lm_backward,
    lm_forward,
    lm_param_shapes,
    perplexity,
    sample,
    sample_next,
    softmax,
    temporal_softmax_loss,
)
from .lstm import (
    count_lstm_params,
    init_lstm_params,
    lstm_backward,
    lstm_forward,
    lstm_param_shapes,
    lstm_step_backward,
    lstm_step_forward,
)
from .rnn import init_rnn_params, rnn_backward, rnn_forward, rnn_param_shapes, rnn_step_backward, rnn_step_forward

__version__ = "0.1.0"
