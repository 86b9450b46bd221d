"""The truth of a streamed world, from per-block sums (never from the whole world in memory).

Each block of customers contributes counts and sums (:func:`block_stats`); the blocks'
numbers are added in block order (:func:`add_stats`), so the result does not depend on
how blocks were grouped into chunks; :func:`stream_truth` turns the totals into the same
``truth.json`` layout as the in-memory world (:func:`analysis.data.synth.truth._truth_doc`).
Every quantity of the in-memory truth is a ratio of sums, except the median lifetime
among churners, which comes from an exact histogram of whole days.
"""

from __future__ import annotations

import math

import numpy as np

from analysis.data.synth.simulate import _Consts
from analysis.data.synth.truth import (
    _landmark_doc,
    _r,
    _sequential_definition,
    _truth_doc,
)
from analysis.data.synth.world import PARAMS, TOUCHPOINTS

_ARMS = ("treat", "control", "control_sustained")


def _landmark_sums(res: dict, L: int) -> dict:
    """Return the counts and sums of one block's landmark-``L`` potential outcomes."""

    def arm(a, key):
        parts = res["landmarks"].get((L, a), {}).get(key, [])
        return np.concatenate(parts) if parts else np.zeros(0)

    tr = arm("treat", "treated").astype(bool)
    y1s, y0s, y0ss = (arm(a, "spend") for a in _ARMS)
    y1r, y0r, y0rs = (arm(a, "retained").astype(float) for a in _ARMS)
    obs_s = np.where(tr, arm("treat", "real"), arm("control", "real"))
    en = arm("control", "enrolled_fu").astype(bool)
    c = ~tr

    def s(x):
        return float(x.sum())

    return {
        "n": int(tr.size),
        "nt": int(tr.sum()),
        "d_s": s(y1s - y0s),
        "d_s_tr": s((y1s - y0s)[tr]),
        "d_r": s(y1r - y0r),
        "d_r_tr": s((y1r - y0r)[tr]),
        "sd_s": s(y1s - y0ss),
        "sd_s_tr": s((y1s - y0ss)[tr]),
        "sd_r": s(y1r - y0rs),
        "sd_r_tr": s((y1r - y0rs)[tr]),
        "y1s": s(y1s),
        "y0s": s(y0s),
        "y1r": s(y1r),
        "y0r": s(y0r),
        "obs_s_tr": s(obs_s[tr]),
        "obs_s_c": s(obs_s[c]),
        "obs_r_tr": s(y1r[tr]),
        "obs_r_c": s(y0r[c]),
        "y0s_tr": s(y0s[tr]),
        "y0s_c": s(y0s[c]),
        "y0r_tr": s(y0r[tr]),
        "y0r_c": s(y0r[c]),
        "ctrl_n": int(c.sum()) if en.size else 0,
        "ctrl_enrolled": int(en[c].sum()) if en.size else 0,
    }


def _sequential_sums(res: dict, q: float) -> dict:
    """Return the counts and sums of one block's sequential-trial potential outcomes."""
    seq = res["sequential"]
    out: dict = {"n_el": int(seq["n_eligible"]), "n_en": int(seq["n_enrol"])}
    rows = {"treat": [], "control": []}
    for r in seq["rows"]:
        rows[r["arm"]].append(r)
    out["rows"] = len(rows["treat"])
    if not rows["treat"]:
        return out

    def arm(a, key):
        return np.concatenate([r[key] for r in rows[a]])

    tr = arm("treat", "treated").astype(bool)
    w = arm("treat", "w")
    cid = arm("treat", "idx")
    out["nt"] = int(tr.sum())
    out["n_ctrl"] = int((~tr).sum())
    for name in ("spend", "retained"):
        y1 = arm("treat", name).astype(float)
        y0 = arm("control", name).astype(float)
        d = y1 - y0
        out[f"{name}_d_tr"] = float(d[tr].sum())
        out[f"{name}_wd"] = float((w * d).sum())
        out[f"{name}_y1_tr"] = float(y1[tr].sum())
        out[f"{name}_y0_tr"] = float(y0[tr].sum())
        out[f"{name}_w_c"] = float(w[~tr].sum())
        out[f"{name}_wy0_c"] = float((w * y0)[~tr].sum())
        # Horvitz-Thompson variance, clustered by customer (customers never span blocks)
        contrib = np.where(tr, 0.0, d * np.sqrt(1 - q) / q) if q < 1 else np.zeros(d.size)
        per_c = np.bincount(np.unique(cid, return_inverse=True)[1], weights=contrib)
        out[f"{name}_mc"] = float((per_c**2).sum())
    return out


def block_stats(
    pop: dict,
    res: dict,
    tables: dict,
    tx_counts: dict,
    churn_m: np.ndarray,
    enrolled: np.ndarray,
    months: int,
    landmarks,
    seq_sample: float,
) -> dict:
    """Return the counts and sums one block of customers contributes to the truth.

    Parameters
    ----------
    pop : dict
        The block's static arrays (signup month ``s``, purchase rate ``lam``, ...).
    res : dict
        The block's simulation result (:func:`~analysis.data.synth.simulate._split_chunk`).
    tables : dict
        The block's four tables (:func:`~analysis.data.synth.assemble._assemble`).
    tx_counts : dict
        The block's transaction count and amount sum.
    churn_m, enrolled : numpy.ndarray
        Churn month (-1: none) and ever-enrolled flag per customer of the block.
    months : int
        Window length in calendar months.
    landmarks : tuple of int
        Landmark tenures (months).
    seq_sample : float
        Sampling fraction of control person-trials (the world's, not the block's).

    Returns
    -------
    dict
        Integers, floats, arrays and nested dicts, added block by block with :func:`add_stats`.
    """
    first_m = np.maximum(pop["s"], 0)
    last_m = np.where(churn_m >= 0, churn_m, months - 1)
    cm_i = (last_m - first_m + 1).clip(0)
    exp = tables["experience"]
    kind = exp["kind"].to_numpy(dtype=object)
    tick = exp[kind == "ticket"]
    surv = exp[kind == "survey"]
    nps = surv["nps"].dropna().to_numpy()
    fcr = tick["first_contact_resolution"].to_numpy(dtype=bool)
    sla = tick["sla_met"].to_numpy(dtype=bool)
    comp = tick["compensated"].to_numpy(dtype=bool)
    tp = tick["touchpoint"].to_numpy(dtype=object)
    cust = tables["customers"]
    ch = cust["churn_date"].notna().to_numpy()
    days = (cust["churn_date"][ch] - cust["signup_date"][ch]).dt.days.to_numpy(dtype=np.int64)
    fail = ~fcr | ~sla
    return {
        "n": int(pop["s"].size),
        "n_pre": int((pop["s"] < 0).sum()),
        "n_churn": int((churn_m >= 0).sum()),
        "n_churners": int(ch.sum()),
        "cm": int(cm_i.sum()),
        "base_purchases": float((pop["lam"] * cm_i).sum()),
        "n_tx": int(tx_counts["n"]),
        "sum_amount": float(tx_counts["sum_amount"]),
        "n_enrolled": int(enrolled.sum()),
        "n_exp": len(exp),
        "n_tick": len(tick),
        "n_surv": len(surv),
        "n_nps": int(nps.size),
        "n_detr": int((nps <= 6).sum()),
        "n_prom": int((nps >= 9).sum()),
        "n_inv": int(res["n_inv"]),
        "n_fcr": int(fcr.sum()),
        "n_breach": int((~sla).sum()),
        "n_comp_breach": int((comp & ~sla).sum()),
        "n_unres": int((~fcr).sum()),
        "n_comp_unres": int((comp & ~fcr).sum()),
        "n_fail": int(fail.sum()),
        "n_comp_fail": int((comp & fail).sum()),
        "unres_tp": np.array([int(((tp == t) & ~fcr).sum()) for t in TOUCHPOINTS], np.int64),
        "life_days": np.bincount(days, minlength=1).astype(np.int64),
        "csat_n": int(res["csat_acc"]["n"]),
        "csat_base": float(res["csat_acc"]["base_next"]),
        "landmarks": {str(L): _landmark_sums(res, L) for L in landmarks},
        "sequential": _sequential_sums(res, seq_sample),
    }


def add_stats(total: dict | None, block: dict) -> dict:
    """Return ``total`` plus one block's numbers (keys missing on one side count as 0)."""
    if total is None:
        return block
    out = dict(total)
    for k, v in block.items():
        t = total.get(k)
        if t is None:
            out[k] = v
        elif isinstance(v, dict):
            out[k] = add_stats(t, v)
        elif isinstance(v, np.ndarray):
            size = max(t.size, v.size)
            out[k] = np.pad(t, (0, size - t.size)) + np.pad(v, (0, size - v.size))
        else:
            out[k] = t + v
    return out


def _median_from_days(hist: np.ndarray) -> float | None:
    """Return the median of (days / 30.4375) from a histogram of whole days."""
    n = int(hist.sum())
    if n == 0:
        return None
    cum = np.cumsum(hist)
    lo = int(np.searchsorted(cum, (n - 1) // 2 + 1))  # value at 0-based rank (n-1)//2
    hi = int(np.searchsorted(cum, n // 2 + 1))  # value at rank n//2
    return float((lo / 30.4375 + hi / 30.4375) / 2)


def _ratio(a, b, nd: int = 6):
    return _r(a / b, nd) if b else None


def _landmark_values(s: dict) -> dict | None:
    n, nt = s["n"], s["nt"]
    if n == 0:
        return None
    both = 0 < nt < n
    nc = n - nt

    def att(x):
        return _r(x / nt) if nt else None

    return {
        "n": n,
        "n_treated": nt,
        "spend_ATE": _r(s["d_s"] / n),
        "spend_ATT": att(s["d_s_tr"]),
        "retained_ATE": _r(s["d_r"] / n),
        "retained_ATT": att(s["d_r_tr"]),
        "mean_spend_Y1": _r(s["y1s"] / n),
        "mean_spend_Y0": _r(s["y0s"] / n),
        "mean_retained_Y1": _r(s["y1r"] / n),
        "mean_retained_Y0": _r(s["y0r"] / n),
        "naive_spend_diff": _r(s["obs_s_tr"] / nt - s["obs_s_c"] / nc) if both else None,
        "naive_retained_diff": _r(s["obs_r_tr"] / nt - s["obs_r_c"] / nc) if both else None,
        "selection_bias_spend": _r(s["y0s_tr"] / nt - s["y0s_c"] / nc) if both else None,
        "selection_bias_retained": _r(s["y0r_tr"] / nt - s["y0r_c"] / nc) if both else None,
        "sustained_spend_ATE": _r(s["sd_s"] / n),
        "sustained_spend_ATT": att(s["sd_s_tr"]),
        "sustained_retained_ATE": _r(s["sd_r"] / n),
        "sustained_retained_ATT": att(s["sd_r_tr"]),
    }


def _sequential_values(s: dict, q: float) -> dict:
    n_el, n_en = s["n_el"], s["n_en"]
    if not s.get("rows") or n_en == 0:
        return {"n_person_trials": n_el, "n_enrolments": n_en, "definition": "empty"}
    nt = s["nt"]
    q = q if s["n_ctrl"] else 1.0
    out: dict = {"n_person_trials": n_el, "n_enrolments": n_en}
    for name in ("spend", "retained"):
        out[f"{name}_ATT"] = _r(s[f"{name}_d_tr"] / nt)
        out[f"{name}_ATE"] = _r(s[f"{name}_wd"] / n_el)
        out[f"mean_{name}_Y1_treated"] = _r(s[f"{name}_y1_tr"] / nt)
        out[f"mean_{name}_Y0_treated"] = _r(s[f"{name}_y0_tr"] / nt)
        out[f"mc_se_{name}_ATE"] = _r(math.sqrt(s[f"{name}_mc"]) / n_el) if q < 1 else 0.0
        if s["n_ctrl"]:
            out[f"selection_bias_{name}"] = _r(
                s[f"{name}_y0_tr"] / nt - s[f"{name}_wy0_c"] / s[f"{name}_w_c"]
            )
    out["control_sample_fraction"] = _r(q)
    out["definition"] = _sequential_definition()
    return out


def stream_truth(
    stats: dict,
    *,
    seed: int,
    start,
    months: int,
    C: _Consts,
    landmarks,
    seq_sample: float,
) -> dict:
    """Return ``truth.json`` of a streamed world from its summed block numbers.

    Same layout and definitions as the in-memory world's truth; every number is the same
    ratio of sums (rounded to 6 decimals), the median lifetime comes from a histogram.
    """
    s = stats
    n, cm = s["n"], s["cm"]
    rates = {
        "monthly_churn_rate": _r(s["n_churn"] / cm),
        "purchases_per_customer_month": _r(s["n_tx"] / cm),
        "transactions_per_customer": _r(s["n_tx"] / n),
        "revenue_per_customer_month": _r(s["sum_amount"] / cm),
        "enrolment_share": _r(s["n_enrolled"] / n),
        "detractor_share": _ratio(s["n_detr"], s["n_nps"]),
        "promoter_share": _ratio(s["n_prom"], s["n_nps"]),
        "survey_response_rate": _ratio(s["n_surv"], s["n_inv"]),
        "nps_answered_share": _ratio(s["n_nps"], s["n_surv"]),
        "sla_breach_rate": _ratio(s["n_breach"], s["n_tick"]),
        "first_contact_resolution_rate": _ratio(s["n_fcr"], s["n_tick"]),
        "compensated_share_of_failures": _ratio(s["n_comp_fail"], s["n_fail"]),
        "tickets_per_customer_month": _r(s["n_tick"] / cm),
        "surveys_per_customer_month": _r(s["n_surv"] / cm),
        "experience_events_per_customer": _r(s["n_exp"] / n),
        "pre_window_customer_share": _r(s["n_pre"] / n),
        "churned_share": _r(s["n_churners"] / n),
        "median_months_signup_to_churn_among_churners": _r(_median_from_days(s["life_days"]), 3),
        "customer_months_at_risk": cm,
    }
    lm = {}
    for L in landmarks:
        ls = s["landmarks"][str(L)]
        lm[str(L)] = _landmark_doc(L, _landmark_values(ls))
        lm[str(L)]["control_enrolled_during_followup_share"] = (
            _ratio(ls["ctrl_enrolled"], ls["ctrl_n"]) if ls["n"] else None
        )
    n_unres = s["n_unres"]
    delta = C.tp_delta
    realised = (
        float(sum(s["unres_tp"][i] / n_unres * delta[i] for i in range(len(TOUCHPOINTS))))
        if n_unres
        else 0.0
    )
    slope = PARAMS["experience"]["csat_spend_slope"]
    return _truth_doc(
        seed=seed,
        n=n,
        start=start,
        months=months,
        dirty=False,
        C=C,
        rates=rates,
        landmarks=lm,
        sequential=_sequential_values(s["sequential"], seq_sample),
        observed={
            "realised_delta": realised,
            "comp_share_unres": s["n_comp_unres"] / n_unres if n_unres else 0.0,
            "comp_share_breach": s["n_comp_breach"] / s["n_breach"] if s["n_breach"] else 0.0,
            "ame": slope * s["csat_base"] / s["csat_n"] if s["csat_n"] else None,
            "csat_n": s["csat_n"],
            "rate_multiplier": s["n_tx"] / s["base_purchases"],
        },
    )
