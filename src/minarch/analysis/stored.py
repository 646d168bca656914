"""Analyses of a study as the store holds it: the one place that picks what they read.

Each study is analysed with the thresholds of its own stored file, and its
compression tables hold only the settings that file still asks for.
"""

from __future__ import annotations

import pandas as pd

from minarch.analysis.claims import CLAIMS_COLUMNS, ClaimInput, claims
from minarch.analysis.collect import compression_frame
from minarch.analysis.compression import int8_comparison, minimal_bits, phases, redundancy
from minarch.analysis.difficulty import dataset_order
from minarch.analysis.hpspace import hpspace_tables
from minarch.analysis.result import Analysis, analyze
from minarch.analysis.selection import (
    incomplete_count,
    incomplete_note,
    selection_note,
    validated_on_test,
)
from minarch.errors import MinarchError
from minarch.spec import StudySpec, parse_study
from minarch.spec.derive import oneshot_settings, setting_key
from minarch.store import Store
from minarch.tables import TABLES


def stored_study(store: Store, name: str) -> StudySpec:
    """The study file as it was registered, validated again."""
    return parse_study(store.study_spec(name), f"study '{name}' in the store")


def analyze_study(store: Store, study: str) -> Analysis:
    """Convergence regimes and minimal parameters (A.1-A.2) of one stored study."""
    return analyze(
        store.runs_frame(study=study),
        store.epochs_frame(study=study),
        stored_study(store, study).analysis,
    )


def study_notes(store: Store, study: str) -> str | None:
    """What a table of ``study`` must say beside it: what was left out, what is optimistic."""
    runs = store.runs_frame(study=study)
    notes = (incomplete_note(incomplete_count(runs)), selection_note(validated_on_test(runs)))
    return " ".join(note for note in notes if note) or None


def study_claims(store: Store, study: str) -> pd.DataFrame:
    """The paper's claims (a)-(e) tested on one stored study (A.5)."""
    runs = store.runs_frame(study=study)
    analysis = analyze_study(store, study)
    if analysis.architectures.empty:
        return pd.DataFrame(columns=CLAIMS_COLUMNS)
    order = dataset_order(runs, order=analysis.thresholds.difficulty_order)
    return claims(ClaimInput(analysis, runs, compression_results(store, study), order))


def compression_results(store: Store, study: str) -> pd.DataFrame:
    """The study's compression results under the settings its stored file asks for now.

    Results of settings since dropped from the file (a coarser sparsity grid,
    another tolerance) stay in the store but out of the tables and the report.
    """
    runs_frame = store.runs_frame(study=study)
    asked = {setting_key(s) for s in oneshot_settings(stored_study(store, study))}
    derived = set(runs_frame.loc[runs_frame["parent_id"].notna(), "run_id"])  # QAT: its own
    evaluations = [
        e for e in store.evaluations(study=study) if e.key in asked or e.run_id in derived
    ]
    return compression_frame(runs_frame, evaluations)


def study_table(store: Store, name: str, study: str) -> pd.DataFrame:
    """One analysis table (a key of ``TABLES``) of one stored study."""
    if name not in TABLES:
        raise MinarchError(f"table {name!r}: expected one of {', '.join(TABLES)}")
    thresholds = stored_study(store, study).analysis
    if name in ("minimal", "architectures", "runs"):
        return getattr(analyze_study(store, study), name)
    if name == "claims":
        return study_claims(store, study)
    if name in ("ellipses", "risk"):
        result = hpspace_tables(
            store.runs_frame(study=study), rois=thresholds.roi, n_sde=thresholds.ellipse_sde
        )
        return getattr(result, name)
    frame = compression_results(store, study)
    if frame.empty:
        return pd.DataFrame()
    if name == "redundancy":
        return redundancy(frame, delta=thresholds.prune_delta)
    if name == "phases":
        return phases(
            frame, delta=thresholds.prune_delta, collapse_margin=thresholds.collapse_margin
        ).boundaries
    if name == "min-bits":
        return minimal_bits(frame, delta=thresholds.quant_delta)
    return int8_comparison(frame)
