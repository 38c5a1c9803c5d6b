"""The one Newton solver every rating fit uses (Bradley-Terry, Davidson, style control, Plackett-Luce).

Every one of these log-likelihoods is concave, so damped Newton ascent (full Newton step, halved
until the objective does not decrease) converges from any start, quadratically near the optimum.
One stopping rule for all of them: stop when the largest component of the gradient of the
objective (a sum over votes, not a mean) is at most ``GRADIENT_TOL`` = 1e-8, the bound the README
promises; or earlier when a step no longer changes the parameters in floating point (the gradient
then sits at the rounding floor of the sums that make it up).

Ratings are identified only up to a constant: the objective depends on the first ``n_centred``
parameters (the strengths) only through their differences, apart from an optional ridge
``-alpha/2 |theta|^2``, so its maximiser has mean-zero strengths. The solver keeps them at mean
zero and adds u u^T (u = 1/sqrt(n_centred) on that block) to the information before solving: the
gradient is orthogonal to u, so the step is the same as with the pseudo-inverse and stays
orthogonal to u, and the system is positive definite even without a prior.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg

GRADIENT_TOL = 1e-8
MAX_ITERATIONS = 200
# a trial step is accepted when the objective does not fall by more than this share of its size:
# at the optimum float noise is all that is left, and it must not stall the line search
_NOISE = 1e-12


class ConvergenceError(RuntimeError):
    """Newton's method did not reach the gradient tolerance."""


@dataclass(frozen=True)
class NewtonSolution:
    """params: the maximiser (strength block at mean zero); gradient and information (minus the
    Hessian) of the objective there; iterations: Newton steps taken."""

    params: np.ndarray
    gradient: np.ndarray
    information: np.ndarray
    iterations: int

    @property
    def max_abs_gradient(self) -> float:
        return float(np.max(np.abs(self.gradient))) if self.gradient.size else 0.0


Evaluate = Callable[[np.ndarray, bool], "float | tuple[float, np.ndarray, np.ndarray]"]


def newton_ascent(evaluate: Evaluate, start: np.ndarray, *, n_centred: int, tol: float = GRADIENT_TOL,
                  max_iter: int = MAX_ITERATIONS, what: str = "the fit",
                  hint: str = "the data may be nearly separable: pass alpha > 0") -> NewtonSolution:
    """Maximise a concave objective by damped Newton ascent (see the module docstring).

    ``evaluate(params, derivatives)``: the objective at ``params`` when ``derivatives`` is False,
    else ``(objective, gradient, information)``. The full step is evaluated with derivatives (it
    is almost always accepted, and they are needed next); shorter trial steps only need the value.
    ``what`` and ``hint`` name the fit and the fix in the ConvergenceError.
    """
    params = np.array(start, dtype=np.float64)
    params[:n_centred] -= params[:n_centred].mean()
    value, gradient, information = evaluate(params, True)
    for iteration in range(max_iter):
        if np.max(np.abs(gradient), initial=0.0) <= tol:
            return NewtonSolution(params, gradient, information, iteration)
        direction = _newton_direction(information, gradient, n_centred)
        step, evaluation = 1.0, None
        while True:
            candidate = params + step * direction
            candidate[:n_centred] -= candidate[:n_centred].mean()
            if step == 1.0:
                evaluation = evaluate(candidate, True)
                candidate_value = evaluation[0]
            else:
                candidate_value = evaluate(candidate, False)
            if candidate_value >= value - _NOISE * max(1.0, abs(value)) or step < 1e-10:
                break
            step *= 0.5
        if step != 1.0:
            evaluation = evaluate(candidate, True)
        at_float_resolution = np.max(np.abs(candidate - params)) < 1e-15 * max(1.0, np.max(np.abs(params)))
        params = candidate
        value, gradient, information = evaluation
        if at_float_resolution:
            return NewtonSolution(params, gradient, information, iteration + 1)
    if np.max(np.abs(gradient), initial=0.0) <= tol:
        return NewtonSolution(params, gradient, information, max_iter)
    raise ConvergenceError(
        f"{what}: Newton's method stopped after {max_iter} iterations with max |gradient| "
        f"{np.max(np.abs(gradient)):.3g} > {tol:g}; {hint}")


def _newton_direction(information: np.ndarray, gradient: np.ndarray, n_centred: int) -> np.ndarray:
    matrix = information.copy()
    matrix[:n_centred, :n_centred] += 1.0 / n_centred
    try:
        factor = scipy.linalg.cho_factor(matrix, check_finite=False)
        return scipy.linalg.cho_solve(factor, gradient, check_finite=False)
    except np.linalg.LinAlgError:  # near-singular (probabilities at 0/1 in float): least squares
        return np.linalg.lstsq(matrix, gradient, rcond=None)[0]
