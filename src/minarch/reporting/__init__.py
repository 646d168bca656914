"""The HTML report and its paper figures.

``write_report`` is the entry point. Sections are built by the functions in
``minarch.reporting.sections.SECTION_BUILDERS``; each takes a ``ReportInput``
(runs, epochs, compression results, study) and returns a ``Section``, or
None when it has nothing to show.
"""

from minarch.reporting.section import Figure, ReportInput, Section, SectionBuilder
from minarch.reporting.write import write_report

__all__ = ["Figure", "ReportInput", "Section", "SectionBuilder", "write_report"]
