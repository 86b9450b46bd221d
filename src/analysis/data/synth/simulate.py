"""Monthly simulation of the sample world, vectorised over customers, with the landmark
and sequential-trial potential outcomes (common random numbers)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.data.synth.world import (
    PARAMS,
    PRE_MONTHS,
    _baseline_by_reason,
    _expit,
    _gamma_wh,
    _months_add,
    _pois_icdf,
    _rng,
)

# ---------------------------------------------------------------------------
# Monthly simulation
# ---------------------------------------------------------------------------

_DRAWS = (
    "churn",
    "churn_day",
    "reason",
    "pois",
    "amt",  # normal
    "enrol",
    "enrol_day",
    "leave",
    "leave_day",
    "ticket",
    "tp",
    "fcr",
    "resp",  # normal
    "contacts",
    "comp",
    "ticket_day",
    "inv_rel",
    "inv_tk",
    "respond",
    "survey_day",
    "stp",
    "nps",  # normal
    "csat",  # normal
    "ces",  # normal
    "miss_nps",
    "miss_csat",
    "miss_ces",
)
_NORMAL = {"amt", "resp", "nps", "csat", "ces"}


def _draws(seed: int, segments: _Segments, m: int) -> dict:
    """Return the random numbers of one chunk-month; identical for every regime (CRN).

    Each segment (block of customers) of the chunk has its own stream, so a block's
    numbers do not depend on which other blocks share its chunk.
    """
    rngs = [
        (_rng(seed, 10, key, m + 10_000), k)
        for key, k in zip(segments.keys, segments.sizes, strict=True)
    ]
    out = {}
    for name in _DRAWS:
        parts = [rng.standard_normal(k) if name in _NORMAL else rng.random(k) for rng, k in rngs]
        out[name] = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return out


class _Segments:
    """Blocks of customers simulated together in one chunk, each with its own random streams.

    The in-memory world has one segment per chunk (its chunk index); the streaming
    generator puts several fixed blocks of customers in a chunk. Everything a block
    draws or accumulates is kept per segment, so the result of a block is the same
    whatever the chunk it is simulated in (:func:`_split_chunk`).
    """

    def __init__(self, seed: int, keys: list[int], sizes: list[int]):
        self.keys = [int(k) for k in keys]
        self.sizes = [int(k) for k in sizes]
        self.bounds = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        # sampling of control person-trials only (no world draws)
        self.seq_rngs = [_rng(seed, 11, k) for k in self.keys]
        z = [0] * len(self.keys)
        self.acc = {"n_inv": z[:], "csat_n": z[:], "csat_base": [0.0] * len(z)}
        self.acc.update({"n_eligible": z[:], "n_enrol": z[:]})

    def cuts(self, rows: np.ndarray) -> np.ndarray:
        """Return where each segment starts and ends in sorted chunk row indices ``rows``."""
        return np.searchsorted(rows, self.bounds)

    def uniform(self, rows: np.ndarray) -> np.ndarray:
        """Return one uniform number per row (sorted chunk rows), from each row's segment."""
        c = self.cuts(rows)
        parts = [g.random(int(c[i + 1] - c[i])) for i, g in enumerate(self.seq_rngs)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def count(self, name: str, rows: np.ndarray) -> None:
        """Add the number of (sorted chunk) ``rows`` in each segment to counter ``name``."""
        for i, k in enumerate(np.diff(self.cuts(rows))):
            self.acc[name][i] += int(k)


def _new_state(n: int) -> dict:
    return {
        "alive": np.ones(n, bool),
        "member": np.zeros(n, bool),
        "ever": np.zeros(n, bool),
        "left": np.zeros(n, bool),
        "spend_h": np.zeros((n, 3)),
        "npur_h": np.zeros((n, 3), np.int32),
        "tlp_h": np.zeros((n, 3)),  # log-hazard contributions of tickets, lags 1..3
        "tn_h": np.zeros((n, 3), np.int8),  # ticket counts, lags 1..3
        "tsat_h": np.zeros((n, 2)),  # survey-score shifts from tickets, lags 1..2
        "nps_cat": np.zeros(n, np.int8),  # 0 none, 1 detractor, 2 passive, 3 promoter
        "csat_prev": np.full(n, np.nan),
    }


def _copy_state(state: dict, rows: np.ndarray) -> dict:
    return {k: v[rows].copy() for k, v in state.items()}


class _Consts:
    """Derived per-run constants for the monthly step."""

    def __init__(self, start: pd.Timestamp, months: int):
        pp = PARAMS["purchases"]
        ex = PARAMS["experience"]
        lo = PARAMS["loyalty"]
        self.months = months
        mm = np.arange(-PRE_MONTHS, months)
        _, mo = _months_add(start, mm)
        self.season = 1 + pp["seasonality_amplitude"] * np.cos(
            2 * np.pi * (np.asarray(mo) - 12) / 12
        )
        self.tp_early = np.cumsum(list(ex["touchpoint_probs_early"].values()))
        self.tp_later = np.cumsum(list(ex["touchpoint_probs_later"].values()))
        self.fcr = np.array(list(ex["fcr_prob"].values()))
        self.resp_med = np.log(np.array(list(ex["response_hours_median"].values()), float))
        d = np.array(list(ex["touchpoint_log_delta"].values()))
        # centre on the planned mix of unresolved tickets (mostly later-tenure mix)
        mix = (
            0.15 * np.array(list(ex["touchpoint_probs_early"].values()))
            + 0.85 * np.array(list(ex["touchpoint_probs_later"].values()))
        ) * (1 - self.fcr)
        mix = mix / mix.sum()
        self.tp_delta = d - float((mix * d).sum())
        self.tp_mix = mix
        self.lhr = {
            "detr": math.log(ex["detractor_hazard_ratio"]),
            "pass": math.log(ex["passive_hazard_ratio"]),
            "sla": math.log(ex["sla_breach_hazard_ratio"]),
            "unres": math.log(ex["unresolved_ticket_hazard_ratio"]),
            "comp": math.log(ex["compensation_hazard_ratio"]),
            "member": math.log(lo["churn_hazard_ratio"]),
            "left": math.log(lo["post_leaving_hazard_ratio"]),
        }
        self.lift = np.array(list(lo["spend_lift_by_tier"].values()))
        self.enrol_centre = np.array(list(lo["enrol_spend_centre_by_tier"].values()))
        self.enrol_nps = np.array(list(lo["enrol_logit_nps"].values()))


def _step(m, rows, state, dr, st, C: _Consts, *, record: bool, no_enrol=None) -> dict:
    """Advance ``state`` (rows of one chunk) through calendar month ``m``, in place.

    ``rows`` index the chunk's static arrays ``st`` and draws ``dr``; ``state`` arrays are
    aligned with ``rows``. Returns per-row outcomes of the month.
    """
    ex = PARAMS["experience"]
    lo = PARAMS["loyalty"]
    pp = PARAMS["purchases"]
    s = st["s"][rows]
    t = m - s
    started = t >= 0
    active = state["alive"] & started
    f_start = np.where(t == 0, st["f"][rows], 0.0)
    n = rows.size
    out: dict = {}
    season = C.season[m + PRE_MONTHS]
    mean_amt = pp["spend_shape_p"] / st["nu"][rows]

    churn = np.zeros(n, bool)
    f_end = np.ones(n)
    if m >= 0:
        tt = np.maximum(t, 0)
        base = _baseline_by_reason(tt)
        lp = st["lp"][rows].copy()
        cat = state["nps_cat"]
        lp += np.where(cat == 1, C.lhr["detr"], 0.0) + np.where(cat == 2, C.lhr["pass"], 0.0)
        lp += state["tlp_h"].sum(axis=1)
        lp += np.where(state["member"], C.lhr["member"], 0.0)
        lp += np.where(state["left"] & ~state["member"], C.lhr["left"], 0.0)
        expo = 1.0 - f_start
        H = base.sum(axis=1) * np.exp(lp) * expo
        churn = active & (dr["churn"][rows] < -np.expm1(-H))
        f_end = np.where(churn, f_start + expo * dr["churn_day"][rows], 1.0)
        if record:
            cp = np.cumsum(base, axis=1)
            cp /= cp[:, -1:]
            out["reason"] = (dr["reason"][rows][:, None] > cp).sum(axis=1).astype(np.int8)
    alive_frac = np.where(active, f_end - f_start, 0.0)

    # purchases (member lift and last month's CSAT act on the purchase rate)
    mult = np.where(state["member"], C.lift[st["tier"][rows]], 1.0)
    cs = state["csat_prev"]
    mult = mult * np.where(np.isnan(cs), 1.0, 1 + ex["csat_spend_slope"] * (np.nan_to_num(cs) - 3))
    mu_base = st["lam"][rows] * season * alive_frac
    mu = mu_base * mult
    k = _pois_icdf(dr["pois"][rows], mu)
    total = np.where(k > 0, k * mean_amt * _gamma_wh(dr["amt"][rows], k * pp["spend_shape_p"]), 0.0)
    out["k"] = k
    out["total"] = total
    out["exp_spend"] = mu * mean_amt
    out["f_start"] = f_start
    out["f_end"] = f_end
    out["churn"] = churn
    out["active"] = active

    ticket = np.zeros(n, bool)
    survey = np.zeros(n, bool)
    enrol = np.zeros(n, bool)
    leave = np.zeros(n, bool)
    tlp = np.zeros(n)
    tsat = np.zeros(n)
    nps_cat_new = state["nps_cat"].copy()
    csat_now = np.full(n, np.nan)
    if m >= 0:
        tt = np.maximum(t, 0)
        # loyalty: leaving (members), then enrolment (never-members alive at month end)
        leave = state["member"] & active & (dr["leave"][rows] < lo["leave_monthly_prob"]) & ~churn
        spend3 = state["spend_h"].sum(axis=1)
        logit = (
            lo["enrol_logit_intercept"]
            + lo["enrol_logit_log1p_spend_3m"]
            * (np.log1p(spend3) - C.enrol_centre[st["tier"][rows]])
            + lo["enrol_logit_log1p_tenure"] * np.log1p(tt)
            + C.enrol_nps[state["nps_cat"]]
            + lo["enrol_logit_per_ticket_3m"] * state["tn_h"].sum(axis=1)
        )
        can = active & ~churn & ~state["ever"]
        if no_enrol is not None:
            can &= ~no_enrol
        enrol = can & (dr["enrol"][rows] < _expit(logit))

        # tickets: at most one per customer-month
        p_t = ex["ticket_base_prob"] * st["tprop"][rows] * (1 + 1.5 * np.exp(-tt / 2))
        ticket = active & (dr["ticket"][rows] < np.minimum(p_t, 0.9) * alive_frac)
        cum = np.where((tt < 3)[:, None], C.tp_early[None, :], C.tp_later[None, :])
        tp = (dr["tp"][rows][:, None] > cum).sum(axis=1).clip(0, 4)
        fcr = dr["fcr"][rows] < C.fcr[tp]
        # recorded to 0.1 hour; the SLA is judged on the recorded value
        resp = np.round(np.exp(C.resp_med[tp] + ex["response_hours_log_sd"] * dr["resp"][rows]), 1)
        sla = resp <= ex["sla_hours"]
        fail = ~fcr | ~sla
        comp = fail & (dr["comp"][rows] < ex["compensation_prob_given_failure"])
        tlp = np.where(
            ticket,
            np.where(~fcr, C.lhr["unres"] + C.tp_delta[tp], 0.0)
            + np.where(~sla, C.lhr["sla"], 0.0)
            + np.where(comp, C.lhr["comp"], 0.0),
            0.0,
        )
        tsat = np.where(ticket, -0.9 * ~fcr - 0.6 * ~sla + 0.4 * comp, 0.0)
        # surveys: invitation after a ticket or relationship survey, then response
        inv = (ticket & (dr["inv_tk"][rows] < ex["survey_invite_prob_after_ticket"])) | (
            active & (dr["inv_rel"][rows] < ex["survey_invite_prob_relationship"] * alive_frac)
        )
        survey = inv & (dr["respond"][rows] < ex["survey_response_prob"])
        shift = tsat + 0.5 * state["tsat_h"][:, 0] + 0.25 * state["tsat_h"][:, 1]
        zs = st["sat"][rows] + shift + 0.5 * dr["nps"][rows]
        nps = np.clip(np.rint(8.2 + 1.9 * zs), 0, 10)
        csat = np.clip(np.rint(4.0 + 0.9 * (0.8 * zs + 0.5 * dr["csat"][rows])), 1, 5)
        ces = np.clip(np.rint(5.3 + 1.2 * (0.7 * zs + 0.7 * dr["ces"][rows])), 1, 7)
        miss = PARAMS["experience"]["item_missing_prob"]
        nps_ok = survey & (dr["miss_nps"][rows] >= miss["nps"])
        csat_ok = survey & (dr["miss_csat"][rows] >= miss["csat"])
        ces_ok = survey & (dr["miss_ces"][rows] >= miss["ces"])
        ncat = np.where(nps <= 6, 1, np.where(nps <= 8, 2, 3)).astype(np.int8)
        nps_cat_new = np.where(nps_ok, ncat, state["nps_cat"]).astype(np.int8)
        csat_now = np.where(csat_ok, csat, np.nan)
        if record:
            span = f_end - f_start
            out["tp"] = tp
            out["fcr"] = fcr
            out["resp"] = resp
            out["sla"] = sla
            out["comp"] = comp
            out["contacts"] = np.where(
                fcr, 1, 2 + np.floor(-np.log(dr["contacts"][rows]) / 1.2)
            ).astype(np.int16)
            tf = f_start + span * dr["ticket_day"][rows]
            out["ticket_frac"] = tf
            post = ticket & (dr["inv_tk"][rows] < ex["survey_invite_prob_after_ticket"])
            sf_rel = f_start + span * dr["survey_day"][rows]
            sf_post = tf + (f_end - tf) * 0.3 * dr["survey_day"][rows]
            out["survey_frac"] = np.where(post, sf_post, sf_rel)
            cum2 = np.where((tt < 3)[:, None], C.tp_early[None, :], C.tp_later[None, :])
            stp = (dr["stp"][rows][:, None] > cum2).sum(axis=1).clip(0, 4)
            out["survey_tp"] = np.where(post, tp, stp)
            out["nps"] = np.where(nps_ok, nps, np.nan)
            out["csat"] = csat_now
            out["ces"] = np.where(ces_ok, ces, np.nan)
            out["enrol_frac"] = f_start + (f_end - f_start) * dr["enrol_day"][rows]
            out["leave_frac"] = f_start + (f_end - f_start) * dr["leave_day"][rows]
            out["spend3"] = spend3
            out["inv"] = inv
    out["ticket"] = ticket
    out["survey"] = survey
    out["enrol"] = enrol
    out["leave"] = leave

    # state update for the next month
    state["alive"] = state["alive"] & ~churn
    state["spend_h"] = np.column_stack([total, state["spend_h"][:, :2]])
    state["npur_h"] = np.column_stack([k, state["npur_h"][:, :2]])
    state["tlp_h"] = np.column_stack([tlp, state["tlp_h"][:, :2]])
    state["tn_h"] = np.column_stack([ticket.astype(np.int8), state["tn_h"][:, :2]])
    state["tsat_h"] = np.column_stack([tsat, state["tsat_h"][:, :1]])
    state["nps_cat"] = nps_cat_new
    state["csat_prev"] = csat_now
    state["member"] = (state["member"] & ~leave) | enrol
    state["left"] = state["left"] | leave
    state["ever"] = state["ever"] | enrol
    return out


def _simulate_chunk(
    seed: int,
    ci: int,
    st: dict,
    C: _Consts,
    months: int,
    landmarks,
    seq_sample: float = 1.0,
    segments: tuple[list[int], list[int]] | None = None,
) -> dict:
    """Simulate one chunk of customers; return event records and landmark outcomes.

    ``segments`` = (stream keys, sizes) of the blocks of customers that make up the chunk
    (the streaming generator); default: one segment with stream key ``ci``.
    """
    n = st["s"].size
    seg = _Segments(seed, *(segments or ([ci], [n])))
    if int(seg.bounds[-1]) != n:
        raise ValueError("segment sizes must add up to the chunk's customers")
    state = _new_state(n)
    rec: dict[str, list] = {k: [] for k in ("tx", "tk", "sv")}
    churn_m = np.full(n, -1, np.int32)
    churn_f = np.zeros(n)
    reason = np.full(n, -1, np.int8)
    enrol_m = np.full(n, -1, np.int32)
    enrol_f = np.zeros(n)
    leave_m = np.full(n, -1, np.int32)
    leave_f = np.zeros(n)
    ptier = np.full(n, -1, np.int8)
    lm_state: dict = {}
    lm_out: dict = {}
    seq_state: dict = {}
    seq_out: dict = {"rows": []}
    prev_csat = None  # (chunk rows, member flag) of last month's answered CSAT
    for m in range(-PRE_MONTHS, months):
        dr = _draws(seed, seg, m)
        # landmark arms start from the observed state at the start of their landmark month
        if m >= 0:
            for L in landmarks:
                _landmark_open(m, L, st, state, months, lm_state)
        # step only customers who have signed up and not churned (gather, step, scatter)
        act = np.flatnonzero(state["alive"] & (st["s"] <= m))
        sub = _copy_state(state, act)
        ever_before = sub["ever"].copy()
        o = _step(m, act, sub, dr, st, C, record=True)
        for k, v in sub.items():
            state[k][act] = v
        for key in list(lm_state):
            _landmark_step(m, key, lm_state, lm_out, dr, st, C)
        for key in list(seq_state):
            _trial_step(m, key, seq_state, seq_out, dr, st, C)
        if m < 0:
            continue
        # sequential trial of month m: branches start from the state at the end of month m
        if LM_LOOKBACK <= m <= months - 1 - SEQ_FOLLOW:
            eligible = o["active"] & ~o["churn"] & ~ever_before & (st["s"][act] < m)
            _trial_open(m, act, eligible, o["enrol"], state, seq_state, seq_out, seg, seq_sample)
        full_next = np.zeros(n, bool)
        full_next[act] = ~o["churn"]
        if prev_csat is not None:
            # average marginal effect of CSAT on next-month revenue, intensive margin
            r, mem = prev_csat
            ok = full_next[r]
            lift = np.where(mem, C.lift[st["tier"][r]], 1.0)
            base = (
                st["lam"][r]
                * C.season[m + PRE_MONTHS]
                * lift
                * PARAMS["purchases"]["spend_shape_p"]
                / st["nu"][r]
            )
            c = seg.cuts(r)
            for j in range(len(seg.keys)):
                sl = slice(c[j], c[j + 1])
                seg.acc["csat_n"][j] += int(ok[sl].sum())
                seg.acc["csat_base"][j] += float(base[sl][ok[sl]].sum())
        seg.count("n_inv", act[o["inv"]])
        i = np.flatnonzero(o["churn"])
        churn_m[act[i]] = m
        churn_f[act[i]] = o["f_end"][i]
        reason[act[i]] = o["reason"][i]
        i = np.flatnonzero(o["k"] > 0)
        rec["tx"].append(
            (
                act[i],
                np.full(i.size, m, np.int32),
                o["k"][i],
                o["total"][i],
                o["f_start"][i],
                o["f_end"][i],
            )
        )
        i = np.flatnonzero(o["ticket"])
        rec["tk"].append(
            (
                act[i],
                np.full(i.size, m, np.int32),
                o["ticket_frac"][i],
                o["tp"][i],
                o["fcr"][i],
                o["contacts"][i],
                o["sla"][i],
                o["resp"][i],
                o["comp"][i],
            )
        )
        i = np.flatnonzero(o["survey"])
        rec["sv"].append(
            (
                act[i],
                np.full(i.size, m, np.int32),
                o["survey_frac"][i],
                o["survey_tp"][i],
                o["nps"][i],
                o["csat"][i],
                o["ces"][i],
            )
        )
        i = np.flatnonzero(o["enrol"])
        enrol_m[act[i]] = m
        enrol_f[act[i]] = o["enrol_frac"][i]
        sp = o["spend3"][i]
        ptier[act[i]] = np.where(sp >= 400, 2, np.where(sp >= 150, 1, 0))
        i = np.flatnonzero(o["leave"])
        leave_m[act[i]] = m
        leave_f[act[i]] = o["leave_frac"][i]
        r = act[np.flatnonzero(~np.isnan(o["csat"]) & ~o["churn"])]
        prev_csat = (r, state["member"][r].copy())
    # finish landmark arms still open at the end (should not happen: follow-up inside window)
    return {
        "rec": rec,
        "churn_m": churn_m,
        "churn_f": churn_f,
        "reason": reason,
        "enrol_m": enrol_m,
        "enrol_f": enrol_f,
        "leave_m": leave_m,
        "leave_f": leave_f,
        "ptier": ptier,
        "csat_acc": {"n": sum(seg.acc["csat_n"]), "base_next": sum(seg.acc["csat_base"])},
        "n_inv": sum(seg.acc["n_inv"]),
        "landmarks": lm_out,
        "sequential": {
            **seq_out,
            "n_eligible": sum(seg.acc["n_eligible"]),
            "n_enrol": sum(seg.acc["n_enrol"]),
        },
        "segments": seg,
    }


# ---------------------------------------------------------------------------
# Landmark potential outcomes
# ---------------------------------------------------------------------------

LM_FOLLOW = 6
LM_LOOKBACK = 3
ARMS = ("treat", "control", "control_sustained")


def _landmark_open(m, L, st, state, months, lm_state):
    """Open the landmark-L arms for customers whose landmark month is ``m``."""
    s = st["s"]
    pop = (s + L == m) & state["alive"] & (m >= LM_LOOKBACK) & (m + LM_FOLLOW <= months)
    idx = np.flatnonzero(pop)
    if idx.size == 0:
        return
    treated = state["member"][idx].copy()
    base = {
        "idx": idx,
        "treated": treated,
        "spend3": state["spend_h"][idx].sum(axis=1),
        "ever0": state["ever"][idx] & ~state["member"][idx],
        "end": m + LM_FOLLOW - 1,
    }
    for arm in ARMS:
        sub = _copy_state(state, idx)
        no_enrol = None
        if arm == "treat":
            sub["member"][:] = True
            sub["ever"][:] = True
            sub["left"][:] = False
        elif arm in ("control", "control_sustained"):
            was = sub["member"].copy()
            sub["member"][:] = False
            # members removed as if never enrolled (no post-leaving effect, may enrol later)
            sub["ever"][was] = False
            if arm == "control_sustained":
                no_enrol = np.ones(idx.size, bool)
        key = (L, m, arm)
        lm_state[key] = {
            "state": sub,
            "no_enrol": no_enrol,
            "spend": np.zeros(idx.size),
            "real": np.zeros(idx.size),
            **base,
        }


def _landmark_step(m, key, lm_state, lm_out, dr, st, C):
    d = lm_state[key]
    o = _step(m, d["idx"], d["state"], dr, st, C, record=False, no_enrol=d["no_enrol"])
    d["spend"] += o["exp_spend"]
    d["real"] += o["total"]
    if m == d["end"]:
        L, _, arm = key
        res = lm_out.setdefault(
            (L, arm),
            {
                "treated": [],
                "spend": [],
                "real": [],
                "retained": [],
                "spend3": [],
                "enrolled_fu": [],
                "idx": [],
            },
        )
        res["idx"].append(d["idx"])
        res["enrolled_fu"].append(d["state"]["ever"] & ~d["ever0"])
        res["treated"].append(d["treated"])
        res["spend"].append(d["spend"])
        res["real"].append(d["real"])
        res["retained"].append(d["state"]["alive"].copy())
        res["spend3"].append(d["spend3"])
        del lm_state[key]


# ---------------------------------------------------------------------------
# Sequential-trial potential outcomes (one emulated trial per calendar month)
# ---------------------------------------------------------------------------

SEQ_FOLLOW = 6  # outcome months after the trial month
SEQ_FULL_TRUTH_CUSTOMERS = 20_000  # up to this world size every control person-trial is branched


def _trial_open(m, act, eligible, enrol, state, seq_state, seq_out, seg, q):
    """Open the two arms of the month-``m`` trial for its eligible person-trials.

    Eligible: signed up before month m, never enrolled before month m, alive at the end of
    month m. Treated: enrolled in month m. All treated person-trials are branched; control
    person-trials with probability ``q`` (weight 1/q in the ATE).
    """
    el = np.flatnonzero(eligible)
    if el.size == 0:
        return
    tr = enrol[el]
    seg.count("n_eligible", act[el])
    seg.count("n_enrol", act[el[tr]])
    pick = tr | (seg.uniform(act[el]) < q)
    el, tr = el[pick], tr[pick]
    idx = act[el]
    base = {
        "idx": idx,
        "treated": tr,
        "w": np.where(tr, 1.0, 1.0 / q),
        "month": np.full(idx.size, m, np.int32),
        "end": m + SEQ_FOLLOW,
    }
    for arm in ("treat", "control"):
        sub = _copy_state(state, idx)
        sub["member"][:] = arm == "treat"
        sub["ever"][:] = arm == "treat"
        sub["left"][:] = False
        seq_state[(m, arm)] = {"state": sub, "spend": np.zeros(idx.size), **base}


def _trial_step(m, key, seq_state, seq_out, dr, st, C):
    d = seq_state[key]
    o = _step(m, d["idx"], d["state"], dr, st, C, record=False)
    d["spend"] += o["exp_spend"]
    if m == d["end"]:
        tm, arm = key
        seq_out["rows"].append(
            {
                "arm": arm,
                "idx": d["idx"],
                "month": d["month"],
                "treated": d["treated"],
                "w": d["w"],
                "spend": d["spend"],
                "retained": d["state"]["alive"].copy(),
            }
        )
        del seq_state[key]


# ---------------------------------------------------------------------------
# Splitting a chunk into its blocks (streaming generator)
# ---------------------------------------------------------------------------

_PER_CUSTOMER = (
    "churn_m",
    "churn_f",
    "reason",
    "enrol_m",
    "enrol_f",
    "leave_m",
    "leave_f",
    "ptier",
)


def _seg_slice(seg: _Segments, rows: np.ndarray, j: int) -> slice:
    """Return the slice of sorted chunk ``rows`` that falls in segment ``j``."""
    c = seg.cuts(rows)
    return slice(int(c[j]), int(c[j + 1]))


def _split_chunk(res: dict) -> list[dict]:
    """Return the result of each block (segment) of a simulated chunk, with block-local rows.

    Every record, per-customer array, landmark and sequential-trial outcome and counter is
    cut at the block boundaries (rows are sorted inside every record), so a block's result
    does not depend on the other blocks of its chunk.
    """
    seg: _Segments = res["segments"]
    out = []
    for j, (lo, hi) in enumerate(zip(seg.bounds[:-1], seg.bounds[1:], strict=True)):
        lo, hi = int(lo), int(hi)
        rec: dict[str, list] = {}
        for kind, entries in res["rec"].items():
            rec[kind] = []
            for e in entries:
                sl = _seg_slice(seg, e[0], j)
                rec[kind].append((e[0][sl] - lo,) + tuple(a[sl] for a in e[1:]))
        lm: dict = {}
        for key, d in res["landmarks"].items():
            parts: dict[str, list] = {k: [] for k in d}
            for i, idx in enumerate(d["idx"]):
                sl = _seg_slice(seg, idx, j)
                if sl.stop > sl.start:
                    for k in d:
                        parts[k].append(d[k][i][sl] - lo if k == "idx" else d[k][i][sl])
            if parts["idx"]:
                lm[key] = parts
        rows = []
        for r in res["sequential"]["rows"]:
            sl = _seg_slice(seg, r["idx"], j)
            if sl.stop > sl.start:
                cut = {k: (v[sl] if isinstance(v, np.ndarray) else v) for k, v in r.items()}
                cut["idx"] = cut["idx"] - lo
                rows.append(cut)
        out.append(
            {
                "rec": rec,
                **{k: res[k][lo:hi] for k in _PER_CUSTOMER},
                "csat_acc": {"n": seg.acc["csat_n"][j], "base_next": seg.acc["csat_base"][j]},
                "n_inv": seg.acc["n_inv"][j],
                "landmarks": lm,
                "sequential": {
                    "n_eligible": seg.acc["n_eligible"][j],
                    "n_enrol": seg.acc["n_enrol"][j],
                    "rows": rows,
                },
                "offset": 0,
            }
        )
    return out
