"""Joint weights for a skill's checks, used only where they rank runs better out of fold.

Each check's own weight comes from its held-out figures (`Measured.weights`), and a run's
compliance sums them. Checks that ask nearly the same thing ("do not end on a failed call",
"at most one failed call", "`search` failing with ...") are then counted once each, so a run
that breaks all three falls as if it had broken three lessons. A joint fit weighs them
together: a logistic regression of success on which checks each run complied with, its
weights pulled towards the checks' own (an L2 penalty around them), fitted by Newton's method
on the distinct answer patterns. It is kept only when, with folds by task, its out-of-fold
scores rank the runs better (AUROC) than the summed own weights by `MIN_GAIN`. Pure, no I/O.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from evolver.checks import Measured, Profile
from evolver.evaluate import auroc

__all__ = ["MIN_GAIN", "PULL", "joint_weights"]

PULL = 2.0  # L2 penalty around the checks' own weights: larger keeps closer to them
MIN_GAIN = 0.01  # out-of-fold AUROC the joint fit must add to be used
MIN_RUNS = 20  # fewer runs than this: the checks' own weights
NEWTON_STEPS = 8

Pattern = tuple[int, ...]  # the features a run has: 2i when it complied with check i, 2i+1 not


def joint_weights(
    measured: Sequence[Measured],
    profiles: Sequence[Profile],
    labels: Sequence[bool],
    fold_of: Sequence[int],
) -> list[Measured]:
    """The checks with joint weights (`Measured.fitted`) when those rank these runs better out
    of fold than the checks' own weights; else the checks unchanged."""
    if len(measured) < 2 or len(profiles) < MIN_RUNS or len(set(fold_of)) < 2:
        return list(measured)
    own = [w for m in measured for w in m.weights()]
    patterns = [_pattern(measured, p) for p in profiles]
    summed = [sum(own[j] for j in x) for x in patterns]
    out_of_fold = [0.0] * len(patterns)
    for fold in sorted(set(fold_of)):
        fitted = _fit(_counts(patterns, labels, fold_of, skip=fold), own)
        for i, (x, f) in enumerate(zip(patterns, fold_of, strict=True)):
            if f == fold:
                out_of_fold[i] = sum(fitted[j] for j in x)
    before, after = auroc(summed, labels), auroc(out_of_fold, labels)
    if before is None or after is None or after < before + MIN_GAIN:
        return list(measured)
    fitted = _fit(_counts(patterns, labels, fold_of, skip=None), own)
    return [
        replace(m, fitted=(round(fitted[2 * i], 4), round(fitted[2 * i + 1], 4)))
        for i, m in enumerate(measured)
    ]


def _pattern(measured: Sequence[Measured], p: Profile) -> Pattern:
    return tuple(
        2 * i + (not m.check.complies(p)) for i, m in enumerate(measured) if m.check.applies(p)
    )


def _counts(
    patterns: Sequence[Pattern], labels: Sequence[bool], fold_of: Sequence[int], skip: int | None
) -> list[tuple[Pattern, int, int]]:
    """(pattern, label, runs) over the runs not in fold `skip`."""
    found = Counter(
        (x, int(y)) for x, y, f in zip(patterns, labels, fold_of, strict=True) if f != skip
    )
    return [(x, y, n) for (x, y), n in found.items()]


def _fit(rows: Sequence[tuple[Pattern, int, int]], prior: Sequence[float]) -> list[float]:
    """Weights maximising the log-likelihood minus PULL/2 * |w - prior|^2, with a free
    intercept (not returned: a skill's base rate is no part of a run's compliance)."""
    d = len(prior)
    w = [0.0, *prior]
    for _ in range(NEWTON_STEPS):
        grad = [0.0] * (d + 1)
        hess = [[0.0] * (d + 1) for _ in range(d + 1)]
        for x, y, n in rows:
            z = w[0] + sum(w[j + 1] for j in x)
            p = 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))
            err, curv = (p - y) * n, p * (1 - p) * n
            idx = (0, *(j + 1 for j in x))
            for a in idx:
                grad[a] += err
                row = hess[a]
                for b in idx:
                    row[b] += curv
        for j in range(1, d + 1):
            grad[j] += PULL * (w[j] - prior[j - 1])
            hess[j][j] += PULL
        hess[0][0] += 1e-6  # an outcome seen on one side only: keep the intercept finite
        w = [a - b for a, b in zip(w, _solve(hess, grad), strict=True)]
    return w[1:]


def _solve(a: Sequence[Sequence[float]], b: Sequence[float]) -> list[float]:
    """x with a x = b, by Gaussian elimination with partial pivoting (a is small: 2 per check)."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for c in range(n):
        pivot = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[pivot] = m[pivot], m[c]
        if abs(m[c][c]) < 1e-12:
            continue
        for r in range(n):
            if r != c and m[r][c]:
                f = m[r][c] / m[c][c]
                for k in range(c, n + 1):
                    m[r][k] -= f * m[c][k]
    return [m[i][n] / m[i][i] if abs(m[i][i]) > 1e-12 else 0.0 for i in range(n)]

