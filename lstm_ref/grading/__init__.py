"""The helpers the exercise notebooks' test cells call, inside the student's kernel.

A test cell hands a student's function to these helpers, which run it on inputs of their
choosing, compare what comes back with the reference implementation, and fail with an
``AssertionError`` (a :class:`GradingError`) whose message a student can act on: what was
expected, what came back, the shape and dtype, and the most likely cause.

Four promises keep the grades honest:

* The reference is a private copy of ``lstm_ref`` loaded from its source files, so a notebook
  that reassigns ``lstm_ref.sigmoid`` (or anything else in the package) changes nothing here.
* Comparisons use only ndarray arithmetic and methods, which a notebook cannot reassign, never
  ``np.allclose``, ``np.testing`` or ``math.isclose``; if the notebook has replaced one of the
  numpy functions the reference relies on, the check fails and says so.
* A student function that calls into ``lstm_ref`` while it runs earns nothing: every call is
  traced, and a call into the package is reported.
* nbgrader gives a cell zero if anything reaches stderr, so warnings raised by a student's
  code (numpy ``RuntimeWarning``, deprecations) are captured and reported as hints on stdout
  instead, unless the check itself is about them (a sigmoid that overflows).

The modules, by concern: :mod:`.reference` (the private reference and numpy's integrity),
:mod:`.calls` (running a student's function), :mod:`.compare` (arrays against the reference),
:mod:`.checks` (ready-made checks), :mod:`.cells` (recurrent cells), :mod:`.language_model`
(exercise 7's loss, embedding and sampling, imported by its notebook), and :mod:`.guard`, which the
grader calls between cells to undo tampering with all of these.
"""

from ._common import FLOAT32_ATOL, FLOAT32_RTOL, GradingError
from .calls import CallRecord, call_student, check_raises, substitute, trusted
from .cells import cell_case, check_backward, check_forward, step_loop
from .checks import check_cases, check_elementwise, check_gradient, random_inputs
from .compare import compare
from .reference import check_numpy_intact, reference

__all__ = [
    "GradingError",
    "CallRecord",
    "FLOAT32_ATOL",
    "FLOAT32_RTOL",
    "reference",
    "call_student",
    "compare",
    "check_elementwise",
    "check_cases",
    "check_raises",
    "substitute",
    "trusted",
    "step_loop",
    "check_forward",
    "check_backward",
    "cell_case",
    "check_gradient",
    "check_numpy_intact",
    "random_inputs",
]
