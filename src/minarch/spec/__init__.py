"""Study files: schema, loading, grid expansion and run identity."""

from minarch.spec.expand import Derivation, ModelChoice, RunConfig, expand
from minarch.spec.load import builtin_studies, load_study, parse_study, read_study_text
from minarch.spec.schema import DatasetSpec, StudySpec, TrainingConfig

__all__ = [
    "DatasetSpec",
    "Derivation",
    "ModelChoice",
    "RunConfig",
    "StudySpec",
    "TrainingConfig",
    "builtin_studies",
    "expand",
    "load_study",
    "parse_study",
    "read_study_text",
]
