"""Harrell's concordance index with left truncation and strata (for Cox models).

Pairs are counted with an offline 2-D dominance count (Fenwick tree over score
ranks), so the index costs O(n log n) rather than O(n^2) pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.survival import _entry_eff

__all__ = ["concordance_index"]


def _fenwick_counts(
    point_key, point_score, query_key, query_score, n_scores, strict=True, chunk=256
):
    """Count points with key > query key (>= if not strict) and score <, == the query score.

    Offline 2-D dominance counting: points sorted by key (descending) are
    added to a Fenwick tree over score ranks in chunks; pairs inside the
    current chunk are counted by brute force.
    """
    order = np.argsort(-point_key, kind="stable")
    pk = point_key[order]
    ps = point_score[order]
    # number of points with key > q (or >= q): prefix length in descending order
    neg = -pk  # ascending
    side = "left" if strict else "right"
    plen = np.searchsorted(neg, -query_key, side=side)
    less = np.zeros(len(query_key), dtype=np.int64)
    equal = np.zeros(len(query_key), dtype=np.int64)

    tree = np.zeros(n_scores + 2, dtype=np.int64)  # last slot: sink for overflowing updates
    nbits = int(n_scores + 1).bit_length()

    def tree_prefix(idx):  # sum of counts for score ranks < idx (1-based tree; tree[0] = 0)
        res = np.zeros(len(idx), dtype=np.int64)
        i = idx.copy()
        for _ in range(nbits):
            res += tree[i]
            i &= i - 1  # drop the lowest set bit
        return res

    def tree_add(scores):
        i = scores + 1
        for _ in range(nbits):
            np.add.at(tree, i, 1)
            i = np.minimum(i + (i & -i), n_scores + 1)
            if i.min() > n_scores:
                break

    qorder = np.argsort(plen, kind="stable")
    qplen = plen[qorder]
    n_points = len(pk)
    for start in range(0, max(n_points, 1) + 1, chunk):
        stop = start + chunk
        lo_q = np.searchsorted(qplen, start, side="left")
        hi_q = np.searchsorted(qplen, stop, side="left")
        if hi_q > lo_q:
            qi = qorder[lo_q:hi_q]
            qs = query_score[qi]
            both = tree_prefix(np.concatenate([qs, qs + 1]))
            base_less, base_leq = both[: len(qs)], both[len(qs) :]
            block = ps[start:stop]
            for b0 in range(0, len(qi), 4096):
                sl = slice(b0, b0 + 4096)
                lim = (plen[qi[sl]] - start)[:, None]
                cols = np.arange(len(block))[None, :]
                inside = cols < lim
                less[qi[sl]] = base_less[sl] + (inside & (block[None, :] < qs[sl, None])).sum(1)
                equal[qi[sl]] = (base_leq[sl] - base_less[sl]) + (
                    inside & (block[None, :] == qs[sl, None])
                ).sum(1)
        if start < n_points:
            tree_add(ps[start:stop])
    return less, equal, plen


def concordance_index(time, event, score, entry=None, strata=None) -> dict:
    """Compute Harrell's C: how often the customer with the higher risk score churns first.

    A pair is comparable when customer i churns at t_i while customer j is
    at risk at t_i: j's end is later (or j is censored at t_i) and j entered
    before t_i (left truncation). Pairs with tied event times are not
    comparable; tied scores count one half. Pairs are formed within strata.

    Parameters
    ----------
    time, event, score : array_like
        Durations, 1/0 churn indicators, risk scores (higher = churns sooner).
    entry : array_like, optional
        Tenure at first observation.
    strata : array_like, optional
        Pairs are only formed within the same stratum.

    Returns
    -------
    dict
        concordance, concordant, discordant, tied_score, comparable.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(int)
    score = np.asarray(score, dtype=float)
    entry = np.zeros_like(time) if entry is None else np.asarray(entry, dtype=float)
    strata = (
        np.zeros(len(time), dtype=np.int64)
        if strata is None
        else pd.factorize(np.asarray(strata))[0]
    )
    tot = {"concordant": 0, "discordant": 0, "tied_score": 0}
    for s in np.unique(strata):
        m = strata == s
        t, e, sc, en = time[m], event[m], score[m], _entry_eff(entry[m])
        ev = np.flatnonzero(e == 1)
        if len(ev) == 0:
            continue
        _, t_rank = np.unique(t, return_inverse=True)
        key = 2 * t_rank.astype(np.int64) + (1 - e)  # censored at t ranks after events at t
        uscore, s_rank = np.unique(sc, return_inverse=True)
        s_rank = s_rank.astype(np.int64)
        ns = len(uscore)
        less, eq, plen = _fenwick_counts(key, s_rank, key[ev], s_rank[ev], ns, strict=True)
        total = plen
        # remove customers who entered at or after t_i (not yet at risk): entry_j >= t_i
        less2, eq2, plen2 = _fenwick_counts(en, s_rank, t[ev], s_rank[ev], ns, strict=False)
        less = less - less2
        eq = eq - eq2
        total = total - plen2
        greater = total - less - eq
        # concordant: the churner has the higher score than the one still at risk
        tot["concordant"] += int(less.sum())
        tot["discordant"] += int(greater.sum())
        tot["tied_score"] += int(eq.sum())
    comparable = tot["concordant"] + tot["discordant"] + tot["tied_score"]
    c = (tot["concordant"] + 0.5 * tot["tied_score"]) / comparable if comparable else np.nan
    return {"concordance": float(c), **tot, "comparable": int(comparable)}
