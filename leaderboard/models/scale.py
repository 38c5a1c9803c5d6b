"""The reporting scale shared by every fitter.

Fitters work in natural-log units (``theta``: P(i beats j) = 1 / (1 + exp(theta_j - theta_i))).
Reports use the familiar Elo-like scale: 400 / ln 10 points per natural-log unit, centred at 1000.
"""

import math

import numpy as np

ELO_PER_NAT = 400.0 / math.log(10.0)
ELO_CENTER = 1000.0


def nats_to_elo(theta, center: float = ELO_CENTER):
    """Natural-log strengths -> rating points (works on floats and numpy arrays)."""
    return center + ELO_PER_NAT * theta


def elo_to_nats(rating, center: float = ELO_CENTER):
    """Rating points -> natural-log strengths."""
    return (rating - center) / ELO_PER_NAT


def rating_transform(models: list[str], anchor: tuple[str, float] | None) -> tuple[np.ndarray, float]:
    """(transform, offset) with rating = offset + transform @ theta: mean ELO_CENTER, or the anchor
    model pinned at its rating (``anchor`` = (model, rating); the model must be in ``models``).
    Intervals follow as transform @ covariance @ transform.T."""
    n_models = len(models)
    if anchor is None:
        return ELO_PER_NAT * np.eye(n_models), ELO_CENTER
    transform = np.eye(n_models)
    transform[:, models.index(anchor[0])] -= 1.0
    return ELO_PER_NAT * transform, float(anchor[1])
