"""The HTML report and its paper figures.

``write_report`` is the entry point. Sections are built by the functions in
``minarch.report.sections.SECTION_BUILDERS``; each takes the run and epoch
tables and returns a ``Section`` (or None when it has nothing to show).
"""

from minarch.report.section import Figure, Section, SectionBuilder
from minarch.report.write import write_report

__all__ = ["Figure", "Section", "SectionBuilder", "write_report"]
