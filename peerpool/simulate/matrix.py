"""Who exchanges how much with whom: a sparse, gravity-like member-to-member matrix.

Peering is a choice: big networks peer with almost everyone, small ones with a few. The
chance that two members peer grows with the product of their sizes; a scale factor is found
by bisection so the number of peering sessions hits a target (about 20 per member, so ~20k
directed pairs at 500 members). Over the chosen pairs, volume follows a gravity model
(sender's outbound weight x receiver's inbound weight x noise), then iterative proportional
fitting makes every member send and receive close to what its size and kind say (content
networks send, eyeball networks receive).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SESSIONS_PER_MEMBER = 20
MAX_DENSITY = 0.85


@dataclass(frozen=True)
class PairMatrix:
    """Directed member pairs and their volume at profile peak, in Gbps."""

    src: npt.NDArray[np.int64]
    dst: npt.NDArray[np.int64]
    gbps: npt.NDArray[np.float64]

    def sent(self, members: int) -> npt.NDArray[np.float64]:
        return np.bincount(self.src, weights=self.gbps, minlength=members).astype(np.float64)

    def received(self, members: int) -> npt.NDArray[np.float64]:
        return np.bincount(self.dst, weights=self.gbps, minlength=members).astype(np.float64)


def choose_sessions(rng: np.random.Generator, sizes: npt.NDArray[np.float64]) -> list[tuple[int, int]]:
    """Undirected peering sessions (a < b)."""
    n = sizes.shape[0]
    a, b = np.triu_indices(n, k=1)
    affinity = (sizes[a] * sizes[b]) ** 0.4
    target = min(MAX_DENSITY * a.shape[0], float(SESSIONS_PER_MEMBER * n))
    lo, hi = 0.0, 1.0
    while float(np.minimum(1.0, hi * affinity).sum()) < target and hi < 1e12:
        hi *= 2.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(np.minimum(1.0, mid * affinity).sum()) < target:
            lo = mid
        else:
            hi = mid
    chance = np.minimum(1.0, hi * affinity)
    chosen = rng.random(a.shape[0]) < chance
    sessions = {(int(x), int(y)) for x, y in zip(a[chosen], b[chosen], strict=True)}
    biggest = int(np.argmax(sizes))
    degree = np.zeros(n, dtype=np.int64)
    for x, y in sessions:
        degree[x] += 1
        degree[y] += 1
    for m in range(n):  # nobody joins an exchange to talk to no one
        if degree[m] == 0:
            other = biggest if biggest != m else int(np.argsort(sizes)[-2])
            sessions.add((min(m, other), max(m, other)))
    return sorted(sessions)


def fit_matrix(
    rng: np.random.Generator,
    sessions: list[tuple[int, int]],
    out_target: npt.NDArray[np.float64],
    in_target: npt.NDArray[np.float64],
    iterations: int = 30,
) -> PairMatrix:
    """Gravity volumes over both directions of every session, fitted to the members' targets."""
    n = out_target.shape[0]
    pairs = np.array(sessions, dtype=np.int64).reshape(-1, 2)
    src = np.concatenate([pairs[:, 0], pairs[:, 1]])
    dst = np.concatenate([pairs[:, 1], pairs[:, 0]])
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    total = (out_target.sum() + in_target.sum()) / 2.0
    out_t = out_target * (total / out_target.sum())
    in_t = in_target * (total / in_target.sum())
    weights = out_t[src] * in_t[dst] * rng.lognormal(0.0, 0.7, src.shape[0])
    for _ in range(iterations):
        row = np.bincount(src, weights=weights, minlength=n)
        weights *= (out_t / np.where(row > 0, row, 1.0))[src]
        col = np.bincount(dst, weights=weights, minlength=n)
        weights *= (in_t / np.where(col > 0, col, 1.0))[dst]
    return PairMatrix(src=src, dst=dst, gbps=weights)
