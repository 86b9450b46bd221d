"""The truth behind the sample world (``truth.json``) and :func:`sequential_truth`."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from analysis.data.synth.simulate import SEQ_FOLLOW, SEQ_FULL_TRUTH_CUSTOMERS
from analysis.data.synth.world import (
    PARAMS,
    TIERS,
    TOUCHPOINTS,
    SampleWorld,
    _baseline_total,
)
from analysis.errors import DataError, Problem

# ---------------------------------------------------------------------------
# Truth
# ---------------------------------------------------------------------------


def _r(x, nd=6):
    return (
        None
        if x is None or (isinstance(x, float) and not math.isfinite(x))
        else round(float(x), nd)
    )


def _landmark_truth(chunks, L: int) -> dict:
    def arm(a, key):
        vals = [c["landmarks"].get((L, a), {}).get(key, []) for c in chunks]
        flat = [v for lst in vals for v in lst]
        return np.concatenate(flat) if flat else np.zeros(0)

    tr = arm("treat", "treated").astype(bool)
    if tr.size == 0:
        return _landmark_doc(L, None)
    y1s, y0s, y0ss = (
        arm("treat", "spend"),
        arm("control", "spend"),
        arm("control_sustained", "spend"),
    )
    y1r = arm("treat", "retained").astype(float)
    y0r = arm("control", "retained").astype(float)
    y0rs = arm("control_sustained", "retained").astype(float)
    obs_spend = np.where(tr, arm("treat", "real"), arm("control", "real"))
    obs_ret = np.where(tr, y1r, y0r)
    nt = int(tr.sum())

    def diff(a, b, mask=None):
        d = a - b if mask is None else (a - b)[mask]
        return _r(d.mean()) if d.size else None

    both = 0 < nt < tr.size
    return _landmark_doc(
        L,
        {
            "n": int(tr.size),
            "n_treated": nt,
            "spend_ATE": diff(y1s, y0s),
            "spend_ATT": diff(y1s, y0s, tr),
            "retained_ATE": diff(y1r, y0r),
            "retained_ATT": diff(y1r, y0r, tr),
            "mean_spend_Y1": _r(y1s.mean()),
            "mean_spend_Y0": _r(y0s.mean()),
            "mean_retained_Y1": _r(y1r.mean()),
            "mean_retained_Y0": _r(y0r.mean()),
            "naive_spend_diff": _r(obs_spend[tr].mean() - obs_spend[~tr].mean()) if both else None,
            "naive_retained_diff": _r(obs_ret[tr].mean() - obs_ret[~tr].mean()) if both else None,
            "selection_bias_spend": _r(y0s[tr].mean() - y0s[~tr].mean()) if both else None,
            "selection_bias_retained": _r(y0r[tr].mean() - y0r[~tr].mean()) if both else None,
            "sustained_spend_ATE": diff(y1s, y0ss),
            "sustained_spend_ATT": diff(y1s, y0ss, tr),
            "sustained_retained_ATE": diff(y1r, y0rs),
            "sustained_retained_ATT": diff(y1r, y0rs, tr),
        },
    )


def _landmark_doc(L: int, v: dict | None) -> dict:
    """Return the truth of landmark ``L`` from its numbers ``v`` (None: empty population)."""
    if v is None:
        return {"n": 0, "n_treated": 0, "definition": "empty population"}
    return {
        **{k: v[k] for k in v if not k.startswith("sustained_")},
        "selection_bias_definition": (
            "mean Y(0) of the treated minus mean Y(0) of the controls (spend: expected spend); "
            "naive difference = ATT + selection bias (+ purchase noise for spend)"
        ),
        "sustained": {
            "spend_ATE": v["sustained_spend_ATE"],
            "spend_ATT": v["sustained_spend_ATT"],
            "retained_ATE": v["sustained_retained_ATE"],
            "retained_ATT": v["sustained_retained_ATT"],
            "definition": (
                "as above but Y(0) forbids any enrolment during the 6 follow-up months "
                "(sustained non-membership); not identified by the landmark contrast when "
                "controls enrol during follow-up"
            ),
        },
        "control_enrolled_during_followup_share": None,
        "definition": (
            f"Landmark L={L}: population = customers alive at the start of calendar month "
            f"(signup month + {L}) [the landmark month], with the landmark month >= window month 3 "
            "(3 observed months before it) and landmark month + 5 <= last window month. "
            "Treated = enrolled in a month before the landmark month and not left before it. "
            "Outcomes over the 6 calendar months starting at the landmark month: spend = total "
            "purchase amount (0 after churn), retained = no churn by the end of the 6th month. "
            "Potential outcomes simulated with common random numbers from the landmark month: "
            "Y(1) = member from the landmark month (natural programme leaving possible), "
            "Y(0) = not a member at the landmark month, natural enrolment afterwards (current "
            "members removed as if never enrolled). The observed outcome equals Y(1) for the "
            "treated and Y(0) for controls. Spend potential outcomes are expected spend given "
            "the simulated path (Poisson mean x mean basket), so ATE/ATT carry no basket noise. "
            "ATE averages over the population, ATT over the treated. naive_* = treated minus "
            "control mean in the observed (realised) data."
        ),
    }


def _sequential_effects(chunks, ids) -> pd.DataFrame:
    """Per person-trial individual effects (see ``SampleWorld.sequential_effects``)."""
    parts = {"treat": [], "control": []}
    for c in chunks:
        for r in c["sequential"]["rows"]:
            parts[r["arm"]].append({**r, "idx": r["idx"] + c["offset"]})
    cols = ["customer_id", "trial_month", "treated", "weight", "spend_effect", "retained_effect"]
    if not parts["treat"]:
        return pd.DataFrame(columns=cols)

    def arm(a, key):
        return np.concatenate([r[key] for r in parts[a]])

    # both arms are appended in the same order (trial month, then row), so rows align
    return pd.DataFrame(
        {
            "customer_id": ids[arm("treat", "idx")],
            "trial_month": arm("treat", "month").astype(int),
            "treated": arm("treat", "treated").astype(bool),
            "weight": arm("treat", "w").astype(float),
            "spend_effect": arm("treat", "spend") - arm("control", "spend"),
            "retained_effect": arm("treat", "retained").astype(float)
            - arm("control", "retained").astype(float),
        }
    )[cols]


def sequential_truth(world: SampleWorld, rows: pd.DataFrame) -> dict:
    """True average effects of enrolling over a subset of sequential-trial person-trials.

    Parameters
    ----------
    world : SampleWorld
        A generated world (its ``sequential_effects``).
    rows : pandas.DataFrame
        Person-trials to average over, by ``customer_id`` and ``trial_month`` (for
        example the rows of :func:`analysis.loyalty.trial_frame` kept after
        propensity trimming).

    Returns
    -------
    dict
        ``spend``, ``retained``: the average individual effect over the rows (sampled
        control person-trials of large worlds weighted by 1 / sampling fraction);
        ``n_rows``: rows matched; ``n_unmatched``: rows of ``rows`` without a simulated
        person-trial (0 for worlds of up to 20,000 customers, where every eligible
        person-trial is simulated; otherwise the controls left out of the sample);
        ``sampled``: whether the world's controls were sampled.

    Raises
    ------
    DataError
        If ``rows`` lacks the two key columns.
    """
    missing = [c for c in ("customer_id", "trial_month") if c not in rows.columns]
    if missing:
        raise DataError(
            f"sequential_truth: rows lack {missing}; pass trial_frame rows.",
            [Problem("rows", c, "missing_column", "column not present") for c in missing],
        )
    eff = world.sequential_effects
    key = rows[["customer_id", "trial_month"]].astype({"customer_id": str, "trial_month": int})
    m = key.merge(eff, on=["customer_id", "trial_month"], how="left", indicator=True)
    # sampled worlds: controls that were not branched have no row; the branched ones stand
    # for them through their weights (Horvitz-Thompson)
    hit = (m["_merge"] == "both").to_numpy()
    w = m.loc[hit, "weight"].to_numpy()
    out = {
        "n_rows": int(hit.sum()),
        "n_unmatched": int((~hit).sum()),
        "sampled": bool((eff["weight"] > 1).any()),
    }
    for name in ("spend", "retained"):
        v = m.loc[hit, f"{name}_effect"].to_numpy()
        out[name] = float((w * v).sum() / w.sum()) if w.size else float("nan")
    return out


def _sequential_truth(chunks) -> dict:
    """Truth of the pooled sequential-trial emulation (see the definition string)."""
    rows = {"treat": [], "control": []}
    n_el = sum(c["sequential"]["n_eligible"] for c in chunks)
    n_en = sum(c["sequential"]["n_enrol"] for c in chunks)
    for c in chunks:
        for r in c["sequential"]["rows"]:
            rows[r["arm"]].append({**r, "idx": r["idx"] + c["offset"]})
    if not rows["treat"] or n_en == 0:
        return {"n_person_trials": int(n_el), "n_enrolments": int(n_en), "definition": "empty"}

    def arm(a, key):
        return np.concatenate([r[key] for r in rows[a]])

    # both arms are appended in the same order (trial month, then row), so rows align
    tr = arm("treat", "treated").astype(bool)
    w = arm("treat", "w")
    cid = arm("treat", "idx")
    out = {"n_person_trials": int(n_el), "n_enrolments": int(n_en)}
    q = float(1.0 / w[~tr].min()) if (~tr).any() else 1.0
    for name in ("spend", "retained"):
        y1 = arm("treat", name).astype(float)
        y0 = arm("control", name).astype(float)
        d = y1 - y0
        out[f"{name}_ATT"] = _r(d[tr].mean())
        out[f"{name}_ATE"] = _r(float((w * d).sum() / n_el))
        out[f"mean_{name}_Y1_treated"] = _r(y1[tr].mean())
        out[f"mean_{name}_Y0_treated"] = _r(y0[tr].mean())
        # Poisson-sampling (Horvitz-Thompson) variance of the ATE truth, clustered by customer
        if q < 1:
            contrib = np.where(tr, 0.0, d * np.sqrt(1 - q) / q)
            per_c = np.bincount(np.unique(cid, return_inverse=True)[1], weights=contrib)
            out[f"mc_se_{name}_ATE"] = _r(float(np.sqrt((per_c**2).sum())) / n_el)
        else:
            out[f"mc_se_{name}_ATE"] = 0.0
        if (~tr).any():
            y0c = float((w * y0)[~tr].sum() / w[~tr].sum())
            out[f"selection_bias_{name}"] = _r(y0[tr].mean() - y0c)
    out["control_sample_fraction"] = _r(q)
    out["definition"] = _sequential_definition()
    return out


def _sequential_definition() -> str:
    """Return the definition of the sequential-trial truth (truth.json)."""
    return (
        "Pooled sequential trials, one per calendar month m with 3 <= m <= last window month - "
        f"{SEQ_FOLLOW} (window month 0 = start month). Eligible person-trials: customers who "
        "signed up before month m, never enrolled before month m and did not churn by the end of "
        "month m. Treated: enrolled during month m; controls: the other eligible customers "
        "(they may enrol later). Outcomes over the 6 calendar months m+1..m+6: spend = expected "
        "spend given the simulated path (Poisson mean x mean basket, 0 after churn), retained = "
        "no churn by the end of month m+6. Potential outcomes with common random numbers from "
        "the end of month m: Y(1) = enrolled in month m (natural programme leaving), Y(0) = not "
        "enrolled in month m, natural course afterwards (may enrol in a later month). ATT "
        "averages over enrolment events (all of them), ATE over eligible person-trials; a "
        "customer counts once per eligible month. For worlds above "
        f"{SEQ_FULL_TRUTH_CUSTOMERS:,} customers the ATE uses a random sample of control "
        "person-trials (control_sample_fraction, Horvitz-Thompson weights); mc_se_* is its "
        "Monte Carlo standard error (0 when every person-trial is simulated). "
        "selection_bias_* = mean Y(0) of the treated minus mean Y(0) of the controls."
    )


def _truth(
    *,
    seed,
    n,
    start,
    months,
    pop,
    churn_m,
    enrolled,
    chunks,
    tables,
    tx_counts,
    C,
    landmarks,
    dirty,
):
    """Return the truth of an in-memory world from its arrays and tables."""
    ex = PARAMS["experience"]
    # exposure in customer-months at risk inside the window
    first_m = np.maximum(pop["s"], 0)
    last_m = np.where(churn_m >= 0, churn_m, months - 1)
    cm_i = (last_m - first_m + 1).clip(0)
    cm = int(cm_i.sum())
    # expected purchases at the base rate; partial first/last months counted whole (small)
    base_purchases = float((pop["lam"] * cm_i).sum())
    n_churn = int((churn_m >= 0).sum())
    exp_tab = tables["experience"]
    tick = exp_tab[exp_tab["kind"] == "ticket"]
    surv = exp_tab[exp_tab["kind"] == "survey"]
    n_inv = 0
    for c in chunks:
        n_inv += c.get("n_inv", 0)
    nps = surv["nps"].dropna()
    cs = {
        "n": sum(c["csat_acc"]["n"] for c in chunks),
        "b": sum(c["csat_acc"]["base_next"] for c in chunks),
    }
    ame = ex["csat_spend_slope"] * cs["b"] / cs["n"] if cs["n"] else None
    unres = tick[~tick["first_contact_resolution"].astype(bool)]
    comp_share_unres = float(unres["compensated"].astype(bool).mean()) if len(unres) else 0.0
    breach = tick[~tick["sla_met"].astype(bool)]
    comp_share_breach = float(breach["compensated"].astype(bool).mean()) if len(breach) else 0.0
    unres_tp_share = unres["touchpoint"].value_counts(normalize=True)
    realised_delta = float(
        sum(unres_tp_share.get(tp, 0) * C.tp_delta[i] for i, tp in enumerate(TOUCHPOINTS))
    )
    cust = tables["customers"]
    life_m = None
    # Kaplan-Meier-free summary: share churned and median observed lifetime among churners
    churners = cust["churn_date"].notna()
    if churners.any():
        life_m = float(
            (
                (cust.loc[churners, "churn_date"] - cust.loc[churners, "signup_date"]).dt.days
                / 30.4375
            ).median()
        )
    rates = {
        "monthly_churn_rate": _r(n_churn / cm),
        "purchases_per_customer_month": _r(tx_counts["n"] / cm),
        "transactions_per_customer": _r(tx_counts["n"] / n),
        "revenue_per_customer_month": _r(tx_counts["sum_amount"] / cm),
        "enrolment_share": _r(enrolled.mean()),
        "detractor_share": _r((nps <= 6).mean()) if len(nps) else None,
        "promoter_share": _r((nps >= 9).mean()) if len(nps) else None,
        "survey_response_rate": _r(len(surv) / n_inv) if n_inv else None,
        "nps_answered_share": _r(surv["nps"].notna().mean()) if len(surv) else None,
        "sla_breach_rate": _r((~tick["sla_met"].astype(bool)).mean()) if len(tick) else None,
        "first_contact_resolution_rate": _r(tick["first_contact_resolution"].astype(bool).mean())
        if len(tick)
        else None,
        "compensated_share_of_failures": _r(
            tick.loc[
                ~tick["first_contact_resolution"].astype(bool) | ~tick["sla_met"].astype(bool),
                "compensated",
            ]
            .astype(bool)
            .mean()
        )
        if len(tick)
        else None,
        "tickets_per_customer_month": _r(len(tick) / cm),
        "surveys_per_customer_month": _r(len(surv) / cm),
        "experience_events_per_customer": _r(len(exp_tab) / n),
        "pre_window_customer_share": _r((pop["s"] < 0).mean()),
        "churned_share": _r(churners.mean()),
        "median_months_signup_to_churn_among_churners": _r(life_m, 3),
        "customer_months_at_risk": cm,
    }
    lm = {str(L): _landmark_truth(chunks, L) for L in landmarks}
    for L in landmarks:
        lm[str(L)]["control_enrolled_during_followup_share"] = _r(_control_enrol_share(chunks, L))
    return _truth_doc(
        seed=seed,
        n=n,
        start=start,
        months=months,
        dirty=dirty,
        C=C,
        rates=rates,
        landmarks=lm,
        sequential=_sequential_truth(chunks),
        observed={
            "realised_delta": realised_delta,
            "comp_share_unres": comp_share_unres,
            "comp_share_breach": comp_share_breach,
            "ame": ame,
            "csat_n": cs["n"],
            "rate_multiplier": tx_counts["n"] / base_purchases,
        },
    )


def _truth_doc(*, seed, n, start, months, dirty, C, rates, landmarks, sequential, observed) -> dict:
    """Return truth.json from the world's parameters and its observed numbers.

    ``rates``: the observed marginal rates (rounded); ``landmarks``, ``sequential``: the
    causal truths; ``observed``: the realised touchpoint mix (``realised_delta``),
    compensated shares, the CSAT revenue effect (``ame``, ``csat_n``) and the realised
    purchase-rate multiplier. Shared by the in-memory and the streaming generators.
    """
    as_of = start + pd.DateOffset(months=months) - pd.Timedelta(days=1)
    ex = PARAMS["experience"]
    lo = PARAMS["loyalty"]
    pp = PARAMS["purchases"]
    realised_delta = observed["realised_delta"]
    comp_share_unres = observed["comp_share_unres"]
    comp_share_breach = observed["comp_share_breach"]
    tp_hr = {tp: _r(math.exp(C.lhr["unres"] + C.tp_delta[i])) for i, tp in enumerate(TOUCHPOINTS)}
    rates = {
        **rates,
        "definition": (
            "observed marginal rates in the generated data: monthly churn = churn events in the window "
            "/ customer-months at risk in the window (calendar months started alive); purchases per "
            "customer-month = transactions / the same exposure; enrolment share = share of customers "
            "ever enrolled; detractor share = NPS 0-6 among answered NPS items; survey response rate = "
            "survey rows / survey invitations (invitations are not in the data); SLA breach rate = "
            "tickets with sla_met false / tickets"
        ),
    }
    r_, a_ = pp["rate_shape_r"], pp["rate_rate_alpha_per_month"]
    truth = {
        "params": {
            "n_customers": n,
            "seed": int(seed),
            "start": start.strftime("%Y-%m-%d"),
            "months": int(months),
            "dirty": bool(dirty),
            "world": PARAMS,
        },
        "window": {
            "start": start.strftime("%Y-%m-%d"),
            "as_of": as_of.strftime("%Y-%m-%d"),
            "definition": "data window [start, as_of], as_of = last day of the last month",
        },
        "survival": {
            "reference_levels": {"segment": "consumer", "value_tier": "medium"},
            "hazard_ratios": dict(PARAMS["churn"]["hazard_ratios"]),
            "definition": (
                "planted conditional churn hazard ratios (all churn reasons, all tenures), "
                "multiplying the tenure-dependent baseline; Cox parametrisation with "
                "covariates segment + value_tier, duration = tenure in months since signup, "
                "left-truncated at the window start. Other hazard modifiers (experience, loyalty) "
                "do not depend on segment or value tier (monthly enrolment rates calibrated equal "
                "across tiers at every tenure); no unobserved frailty. Leaving them out of a Cox "
                "model attenuates these ratios by about 1-2% toward 1 (non-collapsibility, "
                "measured on 150,000 customers; docs/sample-world.md)"
            ),
            "baseline_monthly_hazard_by_reason": PARAMS["churn"]["baseline_by_reason"],
            "baseline_definition": "monthly hazard for consumer / medium / non-member / no experience events",
            "competing_risks": (
                "churn_reason is drawn at churn with probability proportional to the reason's baseline "
                "hazard at that tenure: service is early (onboarding), price and competitor rise with "
                "tenure, moved and other are constant; covariates act on all reasons alike"
            ),
            "median_lifetime_months_reference": _r(_median_lifetime(0.0), 3),
            "median_lifetime_definition": "median of the baseline (reference) survival curve in months",
        },
        "loyalty": {
            "churn_hazard_ratio": lo["churn_hazard_ratio"],
            "churn_hazard_ratio_definition": (
                "structural churn hazard ratio while a member, from the month after the enrolment "
                "month until the month of leaving (same for all value tiers)"
            ),
            "spend_lift": lo["spend_lift_by_tier"]["medium"],
            "spend_lift_definition": (
                "multiplicative lift of the purchase rate (so of expected spend) while a member, "
                "medium tier; by_tier gives each tier"
            ),
            "by_tier": {
                t: {
                    "spend_lift": lo["spend_lift_by_tier"][t],
                    "churn_hazard_ratio": lo["churn_hazard_ratio"],
                }
                for t in TIERS
            },
            "by_tier_definition": (
                "structural effects by value tier: purchase-rate lift while a member differs by tier, "
                "the churn hazard ratio does not"
            ),
            "post_leaving_hazard_ratio": lo["post_leaving_hazard_ratio"],
            "post_leaving_definition": "churn hazard ratio in every month after the month of leaving the programme",
            "enrolment_model": {
                k: lo[k]
                for k in (
                    "enrol_logit_intercept",
                    "enrol_logit_log1p_spend_3m",
                    "enrol_spend_centre_by_tier",
                    "enrol_logit_log1p_tenure",
                    "enrol_logit_nps",
                    "enrol_logit_per_ticket_3m",
                )
            },
            "enrolment_definition": (
                "monthly enrolment probability of never-enrolled customers = expit(intercept + b_spend * "
                "(log1p(spend in the 3 previous months) - centre[value_tier]) + b_tenure * log1p(tenure "
                "months) + b_nps[latest NPS category] + b_ticket * tickets in the 3 previous months); "
                "programme launched at the window start"
            ),
            "landmarks": landmarks,
            "sequential": sequential,
        },
        "experience": {
            "detractor_hazard_ratio": ex["detractor_hazard_ratio"],
            "passive_hazard_ratio": ex["passive_hazard_ratio"],
            "no_survey_hazard_ratio": 1.0,
            "nps_definition": (
                "churn hazard ratio in a month given the latest answered NPS before that month "
                "(detractor 0-6, passive 7-8) versus promoter (9-10); customers without any answered "
                "NPS yet have HR 1 (as promoters)"
            ),
            "sla_breach_hazard_ratio": ex["sla_breach_hazard_ratio"],
            "unresolved_ticket_hazard_ratio": ex["unresolved_ticket_hazard_ratio"],
            "ticket_definition": (
                "multiplicative churn hazard ratio per ticket dated in the 3 calendar months before "
                "the month (about 90 days): per SLA breach (sla_met false) and per unresolved ticket "
                "(first_contact_resolution false, uncompensated, at the average touchpoint mix); "
                "effects of one ticket multiply"
            ),
            "touchpoint_failure_hazard_ratio": tp_hr,
            "touchpoint_definition": (
                "hazard ratio of one uncompensated unresolved ticket at this touchpoint in the 3 previous "
                "months; log-mean over the planned mix of unresolved tickets equals "
                "log(unresolved_ticket_hazard_ratio)"
            ),
            "touchpoint_log_delta_realised_mix": _r(realised_delta),
            "compensation_hazard_ratio": ex["compensation_hazard_ratio"],
            "compensation_definition": (
                "extra hazard ratio of a failed ticket (unresolved or SLA breach) that was compensated, "
                "multiplying its failure hazard ratios, for the same 3 months"
            ),
            "compensated_share_of_unresolved": _r(comp_share_unres),
            "compensated_share_of_breaches": _r(comp_share_breach),
            "unresolved_ticket_hazard_ratio_ignoring_compensation": _r(
                math.exp(C.lhr["unres"] + realised_delta + comp_share_unres * C.lhr["comp"])
            ),
            "sla_breach_hazard_ratio_ignoring_compensation": _r(
                math.exp(C.lhr["sla"] + comp_share_breach * C.lhr["comp"])
            ),
            "ignoring_compensation_definition": (
                "approximate hazard ratio a model without a compensation term targets: log HR "
                "averaged over the realised share of compensated failures (and touchpoint mix)"
            ),
            "revenue_effect_per_csat_point": _r(observed["ame"], 4),
            "revenue_effect_definition": (
                "average marginal effect, in currency per customer-month, of one CSAT point in a month "
                "on expected revenue in the next month, over customer-months with an answered CSAT "
                "whose customer is active for the whole next month (planted multiplicatively: next "
                "month's purchase rate x (1 + csat_spend_slope * (csat - 3)))"
            ),
            "csat_spend_slope": ex["csat_spend_slope"],
            "revenue_effect_customer_months": observed["csat_n"],
        },
        "value": {
            "purchase_rate": {
                "distribution": "gamma",
                "shape_r": r_,
                "rate_alpha_per_month": a_,
                # lambda per week = lambda per month * 7 / 30.4375, so the gamma *rate* scales inversely
                "rate_alpha_per_week": _r(a_ * 30.4375 / 7),
                "rate_alpha_per_day": _r(a_ * 30.4375),
                "mean_per_month": _r(r_ / a_),
                "realised_rate_multiplier": _r(observed["rate_multiplier"]),
                "realised_rate_multiplier_definition": (
                    "transactions in the data / sum over customers of lambda x months at risk in the "
                    "window: the average effect of seasonality, membership lift and CSAT on the rate"
                ),
                "definition": (
                    "individual Poisson purchase rate lambda ~ Gamma(shape r, rate alpha) in purchases "
                    "per unit time (before seasonality, membership lift and CSAT effects)"
                ),
            },
            "spend": {
                "model": "gamma-gamma",
                "p": pp["spend_shape_p"],
                "q": pp["spend_shape_q"],
                "gamma": pp["spend_rate_gamma"],
                "mean_amount": _r(
                    pp["spend_shape_p"] * pp["spend_rate_gamma"] / (pp["spend_shape_q"] - 1)
                ),
                "definition": (
                    "amount of a purchase ~ Gamma(shape p, rate nu_i), nu_i ~ Gamma(shape q, rate gamma) "
                    "(Fader-Hardie-Lee gamma-gamma); mean amount = p * gamma / (q - 1)"
                ),
            },
            "dropout": (
                "contractual churn with a tenure-dependent hazard (not the BG/NBD geometric dropout); "
                "purchases stop at churn"
            ),
            "purchase_seasonality_amplitude": pp["seasonality_amplitude"],
        },
        "rates": rates,
    }
    return json.loads(json.dumps(truth))  # plain types only


def _control_enrol_share(chunks, L):
    """Return the share of observed controls at landmark L who enrol during follow-up."""
    tr = [t for c in chunks for t in c["landmarks"].get((L, "control"), {}).get("treated", [])]
    en = [e for c in chunks for e in c["landmarks"].get((L, "control"), {}).get("enrolled_fu", [])]
    if not tr:
        return None
    tr, en = np.concatenate(tr), np.concatenate(en)
    return float(en[~tr].mean()) if (~tr).any() else None


def _median_lifetime(lp: float) -> float:
    t = np.arange(0, 600)
    H = np.concatenate([[0.0], np.cumsum(_baseline_total(t) * math.exp(lp))])
    k = int(np.argmax(H >= math.log(2)))
    # linear interpolation inside month k-1
    h0, h1 = H[k - 1], H[k]
    return float(k - 1 + (math.log(2) - h0) / (h1 - h0))
