"""The report's sections, in page order.

To add a section (regimes, pruning, quantization, hyperparameter space), write
a ``ReportInput -> Section | None`` builder in its own module and append it
here; no other section changes.
"""

from minarch.report.section import SectionBuilder
from minarch.report.sections.accuracy import accuracy_vs_params
from minarch.report.sections.curves import learning_curves
from minarch.report.sections.hpspace import hyperparameter_space
from minarch.report.sections.pruning import pruning_sensitivity
from minarch.report.sections.quantization import quantization_robustness
from minarch.report.sections.regimes import convergence_regimes
from minarch.report.sections.summary import summary_tables

SECTION_BUILDERS: list[SectionBuilder] = [
    accuracy_vs_params,
    learning_curves,
    convergence_regimes,
    pruning_sensitivity,
    quantization_robustness,
    hyperparameter_space,
    summary_tables,
]
