"""Can these votes be fitted? Connectivity and existence checks on the comparison graph.

Ratings are only comparable within a connected component of the comparison graph, so a
disconnected graph is an error, not something to fit. And the Bradley-Terry MLE is finite only
if the "beat" graph (an edge i -> j when i scored against j: a win, or half of a tie) is
strongly connected (Ford, 1957); otherwise some group of models never lost (or never won) against
everyone else and its ratings run off to infinity, unless a prior (alpha > 0) holds them.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components


class DisconnectedGraphError(ValueError):
    """The comparison graph has several components; ``components`` lists the model names of each."""

    def __init__(self, components: list[list[str]]):
        self.components = components
        shown = "; ".join(_show(group) for group in components[:5])
        more = f" (and {len(components) - 5} more groups)" if len(components) > 5 else ""
        super().__init__(
            f"the votes split the models into {len(components)} groups that were never compared with "
            f"each other, so their ratings cannot be put on one scale: {shown}{more}. "
            "Collect votes between the groups, or fit each group separately (e.g. --where)."
        )

    def __reduce__(self):
        # Rebuild from the components, not the message, when sent between processes.
        return (type(self), (self.components,))


class NoMaximumLikelihoodError(ValueError):
    """The MLE does not exist (infinite ratings). ``models`` names the models concerned."""

    def __init__(self, message: str, models: list[str]):
        self.models = models
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.args[0], self.models))


def components(n_models: int, pair_i: np.ndarray, pair_j: np.ndarray, *, strong_edges: tuple | None = None):
    """Component labels of the comparison graph (undirected), or of a directed graph when
    ``strong_edges=(sources, targets)`` is given (strong components)."""
    if strong_edges is None:
        graph = coo_matrix((np.ones(len(pair_i)), (pair_i, pair_j)), shape=(n_models, n_models))
        return connected_components(graph, directed=False)
    sources, targets = strong_edges
    graph = coo_matrix((np.ones(len(sources)), (sources, targets)), shape=(n_models, n_models))
    return connected_components(graph, directed=True, connection="strong")


def check_connected(models: list[str], pair_i: np.ndarray, pair_j: np.ndarray) -> None:
    """Raise DisconnectedGraphError unless every model is linked to every other by comparisons."""
    n_models = len(models)
    if n_models <= 1:
        return
    n_components, labels = components(n_models, pair_i, pair_j)
    if n_components > 1:
        raise DisconnectedGraphError(_groups(models, labels, n_components))


def check_mle_exists(models: list[str], pair_i: np.ndarray, pair_j: np.ndarray,
                     i_scored: np.ndarray, j_scored: np.ndarray) -> None:
    """Raise NoMaximumLikelihoodError unless the beat graph is strongly connected.

    ``i_scored[p]``: model pair_i[p] scored against pair_j[p] at least once (won, or tied when ties
    count half); ``j_scored`` the other way round.
    """
    n_models = len(models)
    if n_models <= 1:
        return
    sources = np.concatenate([pair_i[i_scored], pair_j[j_scored]])
    targets = np.concatenate([pair_j[i_scored], pair_i[j_scored]])
    n_components, labels = components(n_models, pair_i, pair_j, strong_edges=(sources, targets))
    if n_components == 1:
        return
    # a group with no edge coming in never lost to an outsider (ratings -> +inf); a group with
    # no edge going out never beat one (-> -inf)
    crossing = labels[sources] != labels[targets]
    has_in = np.zeros(n_components, dtype=bool)
    has_out = np.zeros(n_components, dtype=bool)
    has_in[labels[targets[crossing]]] = True
    has_out[labels[sources[crossing]]] = True
    groups = _groups(models, labels, n_components, keep_order=True)
    never_lost = [groups[c] for c in range(n_components) if not has_in[c]]
    never_won = [groups[c] for c in range(n_components) if not has_out[c]]
    named = sorted({name for group in never_lost + never_won for name in group})
    parts = []
    if never_lost:
        parts.append("never lost to any model outside their group: " + "; ".join(_show(g) for g in never_lost[:5]))
    if never_won:
        parts.append("never beat any model outside their group: " + "; ".join(_show(g) for g in never_won[:5]))
    raise NoMaximumLikelihoodError(
        "the maximum-likelihood ratings are infinite because some models "
        + ", and some ".join(parts)
        + ". Collect more votes for them, or fit with a small prior (alpha > 0, e.g. alpha=0.01) "
        "that keeps every rating finite.",
        named,
    )


def reachable(n_models: int, sources: np.ndarray, targets: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
    """(below, above): the models ``start`` reaches along the directed edges sources -> targets,
    and the models that reach it; (M,) masks."""
    graph = coo_matrix((np.ones(sources.size), (sources, targets)), shape=(n_models, n_models)).tocsr()
    below = np.zeros(n_models, dtype=bool)
    below[breadth_first_order(graph, start, directed=True, return_predecessors=False)] = True
    above = np.zeros(n_models, dtype=bool)
    above[breadth_first_order(graph.T.tocsr(), start, directed=True, return_predecessors=False)] = True
    return below, above


def runaway_limits(n_models: int, sources: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
    """None when the beat graph (edge i -> j: i scored against j) is strongly connected; else a
    (M,) array that is 0 on its largest strongly connected group, +inf on models that reach the
    group but are not reached from it (never lost to it), -inf on the reverse, NaN on the rest:
    where each model goes in the limit of a likelihood without a maximum (a bootstrap resample)."""
    n_components, labels = components(n_models, sources, targets, strong_edges=(sources, targets))
    if n_components == 1:
        return None
    group = labels == np.argmax(np.bincount(labels, minlength=n_components))
    below, above = reachable(n_models, sources, targets, int(np.flatnonzero(group)[0]))
    limits = np.full(n_models, np.nan)
    limits[group] = 0.0
    limits[below & ~group] = -np.inf
    limits[above & ~group] = np.inf
    return limits


def scored_edges(pair_i, pair_j, i_scored, j_scored) -> tuple[np.ndarray, np.ndarray]:
    """(sources, targets) of the beat graph: i -> j where i scored against j, and the reverse."""
    return (np.concatenate([pair_i[i_scored], pair_j[j_scored]]), np.concatenate([pair_j[i_scored], pair_i[j_scored]]))


def with_limits(theta: np.ndarray, limits: np.ndarray | None) -> np.ndarray:
    """``theta`` with the runaway models at their ``limits`` (see runaway_limits), the finite ones re-centred."""
    if limits is None:
        return theta
    out = np.where(limits == 0, theta, limits)
    finite = limits == 0
    out[finite] -= out[finite].mean()
    return out


def _groups(models: list[str], labels: np.ndarray, n_components: int, keep_order: bool = False) -> list[list[str]]:
    groups: list[list[str]] = [[] for _ in range(n_components)]
    for name, label in zip(models, labels):
        groups[label].append(name)
    if keep_order:
        return groups
    return sorted(groups, key=lambda g: (-len(g), g))


def _show(group: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(name) for name in group[:limit])
    return "[" + shown + (f", ... {len(group) - limit} more" if len(group) > limit else "") + "]"
