"""One object per notebook: params, validated source, derived tables as pandas."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from analysis.config import Params
from analysis.data.sources import Source
from analysis.data.validation import load


class StudyData:
    """Validated data and derived tables for one params file, pulled to pandas on demand.

    Notebooks start with ``study = data.load_study_data(params_file)``. Results
    are cached per argument set, so several sections can share one derivation.

    Attributes
    ----------
    params : Params
        The params with every ``auto`` setting replaced by the columns this data
        offers (:func:`analysis.data.params_fit.resolve_auto`), so studies and
        notebooks see concrete values.
    params_as_written : Params
        The params as the file gives them (``auto`` where it stood).
    source : Source
        Validated source; ``source.as_of`` and ``source.window_start`` are set.
    problems : list[Problem]
        Validation warnings (errors raise in :func:`load`).
    notes : list[str]
        Plain-language notes on exclusions made while deriving tables.
    auto : list[AutoChoice]
        Each ``auto`` setting, the value chosen for it and a sentence saying so;
        :meth:`auto_notes` returns the sentences.
    """

    def __init__(self, params: Params, source: Source):
        from analysis.data.params_fit import resolve_auto

        self.params_as_written = params
        self.params, self.auto = resolve_auto(params, source)
        self.source = source
        self.problems = list(source.problems)
        self.notes: list[str] = []
        self._cache: dict = {}

    def auto_notes(self, *sections: str) -> list[str]:
        """Return the ``auto`` choices in plain sentences, for a report to show.

        Parameters
        ----------
        *sections : str
            Params sections (``"survival"``) or keys (``"analysis.group"``) whose
            choices to return; none: every choice. The sentence on customer columns
            that were not chosen comes with any non-empty selection.

        Returns
        -------
        list of str
            E.g. "Breakdowns use the column segment, chosen automatically from the
            customers table's columns (set analysis.group to choose another)."
            Empty when no setting was ``auto``.
        """

        def wanted(key: str) -> bool:
            if key == "analysis.churn_definition":  # what "churn" means: every report says it
                return True
            return not sections or any(key == s or key.startswith(s + ".") for s in sections)

        picked = [c.sentence for c in self.auto if c.key != "columns" and wanted(c.key)]
        rest = [c.sentence for c in self.auto if c.key == "columns"]
        return picked + rest if picked else []

    @property
    def as_of(self) -> dt.date:
        return self.source.as_of

    @property
    def window_start(self) -> dt.date:
        return self.source.window_start

    @property
    def currency(self) -> str:
        return self.params.data.currency

    @property
    def min_group_size(self) -> int:
        return self.params.analysis.min_group_size

    def has(self, table: str) -> bool:
        """Return True if the data has contract table ``table``."""
        return self.source.has(table)

    def has_column(self, table: str, column: str) -> bool:
        """Return True if the data has ``column`` in ``table`` (not just a null filler)."""
        return self.source.has_column(table, column)

    def _definition(self, definition):
        return definition or self.params.analysis.churn_definition

    def lifetimes_expr(self, definition: str | None = None):
        """Return the Ibis expression of customer lifetimes (see :func:`analysis.derive.lifetimes`)."""
        from analysis.data import derive

        return derive.lifetimes(
            self.source,
            definition=self._definition(definition),
            inactivity_days=self.params.analysis.inactivity_days,
        )

    def lifetimes(self, definition: str | None = None, *, usable_only: bool = True):
        """Return customer lifetimes as pandas (one row per customer).

        With ``usable_only`` (default) customers observed for no time after
        entry are dropped, and a note says how many.
        """
        key = ("lifetimes", self._definition(definition), usable_only)
        if key not in self._cache:
            # usable rows chosen on the engine (the note counts the others there), sorted in
            # Arrow and converted column by column (no second pandas copy for the sort)
            expr = (
                self.usable_lifetimes_expr(definition)
                if usable_only
                else self.lifetimes_expr(definition)
            )
            self._cache[key] = _sorted_frame(expr, "customer_id")
        return self._cache[key]

    def lifetime_counts(self, columns, definition: str | None = None):
        """Return the usable lifetimes summed on the engine: one row per distinct value of
        ``columns`` (those the lifetimes have), with ``customers``, the number of customers
        it stands for.

        Only this table, whose size is bounded by the distinct tenures, entries and groups
        rather than by the customers, reaches Python; the survival estimators take it
        with ``weights="customers"`` (see :func:`analysis.studies.retention.count_columns`).
        ``second_purchase`` among ``columns`` adds each customer's second purchase day
        (missing for none), joined on the engine. Rows come sorted by ``columns``.
        """
        import ibis

        key = ("lifetime_counts", self._definition(definition), tuple(columns))
        if key not in self._cache:
            expr = self.usable_lifetimes_expr(definition)
            if "second_purchase" in columns:
                expr = _with_second_purchase(expr, self.source)
            cols = [c for c in dict.fromkeys(columns) if c in expr.columns]
            out = expr.group_by(cols).aggregate(customers=ibis._.count()).to_pandas()
            self._cache[key] = out.sort_values(cols, kind="stable").reset_index(drop=True)
        return self._cache[key]

    def model_lifetimes(self, definition: str | None = None):
        """Return the usable lifetimes, one row per customer, of the model sample
        (:meth:`model_sample`, chosen on the engine), or of every customer when the data
        has no more customers than ``analysis.model_max_customers``: the rows a
        per-customer model such as the Cox model is fitted on."""
        sample = self.model_sample()
        if sample is None:
            return self.lifetimes(definition)
        key = ("model_lifetimes", self._definition(definition))
        if key not in self._cache:
            expr = self.usable_lifetimes_expr(definition)
            expr = expr.semi_join(sample.table(), "customer_id")
            self._cache[key] = _sorted_frame(expr, "customer_id")
        return self._cache[key]

    def _note_unusable(self, definition: str, dropped: int) -> None:
        """Say once per churn definition how many lifetimes were left out as unusable."""
        key = ("unusable_noted", definition)
        if dropped and key not in self._cache:
            self._cache[key] = True
            self.notes.append(
                f"{dropped:,} left-truncated customers with no activity inside the data "
                "window were excluded from lifetime analyses."
            )

    def usable_lifetimes_expr(self, definition: str | None = None):
        """Return the Ibis expression of the lifetimes :meth:`lifetimes` keeps (usable ones),
        adding the same note on those left out (counted on the engine)."""
        from analysis.data import derive

        full = self.lifetimes_expr(definition)
        usable = derive.usable_lifetimes(full)
        key = ("unusable_count", self._definition(definition))
        if key not in self._cache:
            unusable = full.filter(
                ~((full.entry_days == 0) | (full.duration_days > full.entry_days))
            )
            self._cache[key] = int(unusable.count().to_pyarrow().as_py())
        self._note_unusable(self._definition(definition), self._cache[key])
        return usable

    def panel(self, period: str | None = None, definition: str | None = None):
        """Return the customer-period panel as pandas (see :func:`analysis.derive.panel`)."""
        period = period or self.params.analysis.period
        key = ("panel", period, self._definition(definition))
        if key not in self._cache:
            from analysis.data import derive

            pn = derive.panel(
                self.source, period=period, lifetimes_expr=self.lifetimes_expr(definition)
            ).to_pandas()
            self._cache[key] = pn.sort_values(["customer_id", "period"]).reset_index(drop=True)
        return self._cache[key]

    def cohorts(self, period: str | None = None, definition: str | None = None):
        """Return the cohort table as pandas (see :func:`analysis.derive.cohorts`)."""
        period = period or self.params.analysis.period
        key = ("cohorts", period, self._definition(definition))
        if key not in self._cache:
            from analysis.data import derive

            lt = self.lifetimes_expr(definition)
            # from counts summed on the engine (derive.cohort_table), not a customer-period
            # panel: same table as derive.cohorts
            self._cache[key] = derive.cohort_table(self.source, period=period, lifetimes_expr=lt)
        return self._cache[key]

    def model_sample(self):
        """Return the customers the per-customer models use, or None for every customer.

        A :class:`analysis.data.sample.CustomerSample` of ``analysis.model_max_customers``
        customers, stratified by the breakdown column (``analysis.group``) and seeded by
        ``analysis.model_seed``, when the data has more customers than that; the same
        sample for every study of this params file, on every engine. Reports that use it
        say so with :meth:`CustomerSample.sentence`.
        """
        if "model_sample" not in self._cache:
            from analysis.data.sample import customer_sample

            ap = self.params.analysis
            group = ap.group if ap.group not in (None, "auto") else None
            self._cache["model_sample"] = customer_sample(
                self.source,
                max_customers=ap.model_max_customers,
                strata=group,
                seed=ap.model_seed,
            )
        return self._cache["model_sample"]

    def first_purchase_days(self, n: int = 2):
        """Return each customer's first ``n`` distinct purchase days as pandas
        (``customer_id``, ``date``), built on the engine: at most ``n`` rows per
        customer, whatever the number of transactions."""
        key = ("first_purchase_days", n)
        if key not in self._cache:
            from analysis.data import customer_stats

            expr = customer_stats.first_purchase_days(self.source, n)
            self._cache[key] = expr.to_pandas()
        return self._cache[key]

    def table(self, name: str, columns: list[str] | None = None, *, id_codes: bool = False):
        """Return a validated contract table as pandas (optionally only ``columns``).

        With ``id_codes``, ``customer_id`` comes back as an int32 code instead of
        the source's identifier: customers numbered 0..n-1 in identifier order,
        the same code in every table (the join runs on the engine). Studies that
        only need to link rows use this; it is much faster and smaller than
        string identifiers in pandas, and keeps identifiers out of memory.
        """
        key = ("table", name, tuple(columns or ()), id_codes)
        if key not in self._cache:
            t = self.source.table(name)
            if columns:
                t = t.select(*columns)
            if id_codes and "customer_id" in t.columns:
                t = self._coded(t)
            self._cache[key] = t.to_pandas()
        return self._cache[key]

    def coded(self, t):
        """Return the Ibis table ``t`` with ``customer_id`` replaced by the int32 code of
        :meth:`table` (``id_codes=True``); the join runs on the engine."""
        return self._coded(t)

    def customer_keys(self):
        """The customer codes of :meth:`analysis.data.Source.customer_keys` (``customer_id``,
        ``_code``)."""
        return self.source.customer_keys()

    def _coded(self, t):
        codes = self.customer_keys()
        cols = list(t.columns)
        j = t.join(codes, "customer_id")
        return j.select(
            *[j["_code"].name("customer_id") if c == "customer_id" else j[c] for c in cols]
        )


def _with_second_purchase(lifetimes, source):
    """``lifetimes`` with ``second_purchase``: the customer's second distinct purchase day
    (null for none), from :func:`analysis.data.customer_stats.first_purchase_days`."""
    from analysis.data import customer_stats

    days = customer_stats.first_purchase_days(source, 2)
    second = days.group_by("customer_id").aggregate(
        second_purchase=days.date.max(), _n=days.count()
    )
    second = second.filter(second._n == 2).select("customer_id", "second_purchase")
    j = lifetimes.left_join(second, "customer_id")
    return j.select(*lifetimes.columns, second_purchase=j.second_purchase)


def _sorted_frame(expr, column: str):
    """Return an Ibis table expression as pandas (the dtypes of ``expr.to_pandas()``), its
    rows in ``column`` order (stable).

    Sorted in Arrow and converted with ``self_destruct``, which frees each Arrow column
    once converted: at most the sorted Arrow table and the pandas columns made so far
    are held, where a pandas sort would hold two whole frames (at ten million lifetimes,
    about 1.7 GB each).
    """
    import pyarrow.compute as pc
    from ibis.formats.pandas import PandasData

    table = expr.to_pyarrow()
    table = table.take(pc.sort_indices(table[column]))  # the unsorted table is dropped here
    frame = table.to_pandas(self_destruct=True, split_blocks=True, date_as_object=False)
    del table
    return PandasData.convert_table(frame, expr.schema())


def load_study_data(params_file: str | Path, overrides: dict | None = None) -> StudyData:
    """Load params, validate the data and return a :class:`StudyData` for a notebook.

    Settings left at ``auto`` are resolved against the data here: ``study.params``
    holds the columns chosen, ``study.auto_notes()`` says which in words.

    Raises
    ------
    AnalysisError
        With every params or data problem listed, one per line.
    """
    from analysis.config import load_params

    params = load_params(params_file, overrides=overrides)
    return StudyData(params, load(params))
