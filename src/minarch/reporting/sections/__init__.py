"""The report's sections, in page order.

To add a section (regimes, pruning, quantization, hyperparameter space), write
a ``ReportInput -> Section | None`` builder in its own module and append it
here; no other section changes.
"""

from minarch.reporting.section import SectionBuilder
from minarch.reporting.sections.accuracy import accuracy_vs_params
from minarch.reporting.sections.claims import paper_claims
from minarch.reporting.sections.curves import learning_curves
from minarch.reporting.sections.hpspace import hyperparameter_space
from minarch.reporting.sections.pruning import pruning_sensitivity
from minarch.reporting.sections.quantization import quantization_robustness
from minarch.reporting.sections.regimes import convergence_regimes
from minarch.reporting.sections.sensitivity import hyperparameter_sensitivity
from minarch.reporting.sections.summary import summary_tables

SECTION_BUILDERS: list[SectionBuilder] = [
    accuracy_vs_params,
    learning_curves,
    convergence_regimes,
    hyperparameter_sensitivity,
    pruning_sensitivity,
    quantization_robustness,
    hyperparameter_space,
    paper_claims,
    summary_tables,
]
