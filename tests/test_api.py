"""The public API promised by earlier issues stays importable, with the same signatures.

External code calls these functions from the modules it has always used (now compatibility
modules, docs/api.md). The expected signatures below are the API contract as it stood before
the package was split into layers; a change here is a breaking change for users.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PUBLIC_API = [
    "survival.kaplan_meier(df: 'pd.DataFrame', *, duration: 'str', event: 'str', group: 'str | None' = None, entry: 'str | None' = None, alpha: 'float' = 0.05, conf_type: 'str' = 'log-log', weights: 'str | None' = None) -> 'pd.DataFrame'",
    "survival.logrank(df: 'pd.DataFrame', *, duration: 'str', event: 'str', group: 'str', entry: 'str | None' = None, weights: 'str | None' = None) -> 'LogrankResult'",
    "survival.cox(df: 'pd.DataFrame', *, duration: 'str', event: 'str', covariates, strata=None, entry: 'str | None' = None, ties: 'str' = 'efron', reference: 'dict | None' = None, alpha: 'float' = 0.05, ph_transform: 'str' = 'km') -> 'CoxResult'",
    "survival.rmst(df: 'pd.DataFrame', *, duration: 'str', event: 'str', horizon: 'float', group: 'str | None' = None, entry: 'str | None' = None, alpha: 'float' = 0.05, weights: 'str | None' = None) -> 'pd.DataFrame'",
    "survival.ph_test(time, event, x, beta, *, entry=None, strata=None, transform='km', names=None, ties='efron') -> 'pd.DataFrame'",
    "survival.cumulative_incidence(df: 'pd.DataFrame', *, duration: 'str', event: 'str', cause: 'str', group: 'str | None' = None, entry: 'str | None' = None, alpha: 'float' = 0.05, unknown_label: 'str' = 'unknown', weights: 'str | None' = None) -> 'pd.DataFrame'",
    "survival.median_survival(df: 'pd.DataFrame', *, duration: 'str', event: 'str', group: 'str | None' = None, entry: 'str | None' = None, alpha: 'float' = 0.05, conf_type: 'str' = 'log-log', weights: 'str | None' = None) -> 'pd.DataFrame'",
    "survival.survival_at(df: 'pd.DataFrame', *, duration: 'str', event: 'str', times, group: 'str | None' = None, entry: 'str | None' = None, alpha: 'float' = 0.05, conf_type: 'str' = 'log-log', weights: 'str | None' = None) -> 'pd.DataFrame'",
    "causal.estimate_effect(df: 'pd.DataFrame', *, treatment: 'str', outcome: 'str', covariates: 'Sequence[str]', method: 'str' = 'aipw', estimand: 'str' = 'ATE', propensity_model: 'str' = 'logit', outcome_model: 'str' = 'linear', trim: 'float | tuple[float, float] | str | None' = None, seed: 'int' = 0, alpha: 'float' = 0.05, interactions: 'Sequence[str] | None' = None, folds: 'int' = 5, cluster: 'str | None' = None, se_method: 'str' = 'auto', jackknife_groups: 'int' = 40) -> 'Effect'",
    "causal.balance(df: 'pd.DataFrame', *, treatment: 'str', covariates: 'Sequence[str]', weights: 'pd.Series | np.ndarray | str | None' = None) -> 'pd.DataFrame'",
    "causal.e_value(estimate: 'float', ci_lower: 'float | None' = None, ci_upper: 'float | None' = None, *, scale: 'str' = 'RR', rare: 'bool' = True) -> 'EValue'",
    "value.rfm_summary(transactions: 'pd.DataFrame', *, customer_id: 'str' = 'customer_id', date: 'str' = 'date', amount: 'str' = 'amount', calibration_end, observation_end=None, freq: 'str' = 'W', margin: 'str | None' = None) -> 'pd.DataFrame'",
    "value.fit_bgnbd(summary: 'pd.DataFrame', *, frequency='frequency', recency='recency', T='T') -> 'BGNBDResult'",
    "value.fit_pareto_nbd(summary: 'pd.DataFrame', *, frequency='frequency', recency='recency', T='T') -> 'ParetoNBDResult'",
    "value.fit_gamma_gamma(summary: 'pd.DataFrame', *, frequency='frequency', monetary_value='monetary_value') -> 'GammaGammaResult'",
    "value.clv(transaction_model, gamma_gamma: 'GammaGammaResult', summary: 'pd.DataFrame', *, horizon: 'float', discount_rate: 'float', freq: 'str' = 'W', margin: 'float | str' = 1.0, step: 'float' = 1.0) -> 'pd.DataFrame'",
    "experience.counting_process(lifetimes: 'pd.DataFrame', experience: 'pd.DataFrame | None', *, window_days: 'int' = 90, period: 'str | None' = 'month', customer: 'str' = 'customer_id', touchpoints: 'Sequence[str] | None' = None, keep: 'Sequence[str]' = (), update: 'str' = 'event') -> 'pd.DataFrame'",
    "experience.churn_hazards(cp: 'pd.DataFrame', *, covariates: 'Sequence[str]', strata: 'str | None' = None, reference: 'Mapping[str, Any] | None' = None, customer: 'str' = 'customer_id', alpha: 'float' = 0.05) -> 'HazardResult'",
    "experience.revenue_link(panel: 'pd.DataFrame', *, outcome: 'str' = 'revenue', exposures: 'Sequence[str]', lags: 'Sequence[int]' = (1,), fixed_effects: 'Sequence[str]' = ('customer_id', 'period'), cluster: 'str' = 'customer_id', customer: 'str' = 'customer_id', period: 'str' = 'period', freq: 'str' = 'month', k_fixef: 'str' = 'nonnested', alpha: 'float' = 0.05, tol: 'float' = 1e-10, maxiter: 'int' = 10000) -> 'FEResult'",
    "experience.revenue_at_stake(hazards: 'HazardResult', cp: 'pd.DataFrame', *, scenario: 'Scenario', monthly_revenue: 'tuple[float, float]', customers_at_risk: 'int | None' = None, horizon_months: 'float' = 12.0, customer: 'str' = 'customer_id', alpha: 'float' = 0.05) -> 'pd.DataFrame'",
    "loyalty.event_study(panel: 'pd.DataFrame', *, outcome: 'str' = 'revenue', window: 'tuple[int, int]' = (-6, 6), anticipation: 'int' = 3, se: 'str' = 'analytic', n_boot: 'int' = 100, seed: 'int' = 0, alpha: 'float' = 0.05, twfe: 'bool' = True) -> 'EventStudy'",
    "loyalty.weighted_survival(frame: 'pd.DataFrame', *, treatment: 'str' = 'member', covariates: 'Sequence[str]' = ['prior_spend', 'prior_purchases', 'tenure_months', 'segment', 'value_tier', 'prior_nps_category', 'prior_tickets', 'history_tickets', 'history_nps_mean', 'prior_unresolved', 'prior_sla_breaches', 'log_prior_spend'], time: 'str' = 'time_months', event: 'str' = 'event', horizon: 'float' = 6.0, estimand: 'str' = 'ATE', trim: 'float | None' = None, se: 'str' = 'analytic', n_boot: 'int' = 200, seed: 'int' = 0, alpha: 'float' = 0.05) -> 'SurvivalContrast'",
    "loyalty.weighted_cox(frame: 'pd.DataFrame', *, treatment: 'str' = 'member', time: 'str' = 'time_months', event: 'str' = 'event', weights: 'pd.Series | np.ndarray | str | None' = None, horizon: 'float | None' = None, cluster: 'str | None' = None, alpha: 'float' = 0.05) -> 'CoxResult'",
]

COMPATIBILITY_MODULES = [
    "survival",
    "causal",
    "value",
    "experience",
    "loyalty",
    "kpi",
    "reporting",
    "runner",
    "derive",
    "synth",
    "contract",
    "cdnow",
    "survival_plots",
]


@pytest.mark.parametrize("expected", PUBLIC_API, ids=lambda s: s.split("(")[0])
def test_public_function_keeps_its_signature(expected):
    name = expected.split("(")[0]
    module, func = name.split(".")
    obj = getattr(importlib.import_module(f"analysis.{module}"), func)
    # parameters, their order, kinds and defaults; the return annotation may name a class
    # that moved (loyalty.CoxResult is an alias of stats.cox.WeightedCoxResult)
    params = str(inspect.signature(obj).replace(return_annotation=inspect.Signature.empty))
    assert f"{name}{params}" == expected.split(" -> ")[0]


def test_sbg_is_public_in_value():
    from analysis import value

    sig = inspect.signature(value.fit_sbg)
    assert list(sig.parameters)[:3] == ["lifetimes", "periods", "churned"]


@pytest.mark.parametrize("module", COMPATIBILITY_MODULES)
def test_api_doc_lists_every_exported_name(module):
    doc = (ROOT / "docs" / "api.md").read_text()
    section = doc.split(f"## `analysis.{module}`", 1)
    assert len(section) == 2, f"docs/api.md has no section for analysis.{module}"
    body = section[1].split("\n## ", 1)[0]
    mod = importlib.import_module(f"analysis.{module}")
    tree = ast.parse((ROOT / "src" / "analysis" / f"{module}.py").read_text())
    imported = {
        a.asname or a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for a in node.names
    }
    names = getattr(mod, "__all__", sorted(n for n in imported if not n.startswith("_")))
    missing = [n for n in names if f"`{n}`" not in body]
    assert missing == [], f"docs/api.md misses {missing} of analysis.{module}"
