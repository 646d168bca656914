"""The HTML report and its paper figures.

``write_report`` is the entry point. Sections are built by the functions in
``minarch.report.sections.SECTION_BUILDERS``; each takes a ``ReportInput``
(runs, epochs, compression results, study) and returns a ``Section``, or
None when it has nothing to show.
"""

from minarch.report.section import Figure, ReportInput, Section, SectionBuilder
from minarch.report.write import write_report

__all__ = ["Figure", "ReportInput", "Section", "SectionBuilder", "write_report"]
