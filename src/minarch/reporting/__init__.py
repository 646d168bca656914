"""The HTML report and its paper figures.

``write_report`` is the entry point. Sections are built by the functions in
``minarch.reporting.sections.SECTION_BUILDERS``; each takes a ``ReportInput``
(runs, epochs, compression results, study) and returns a ``Section``, or
None when it has nothing to show. Each name is imported on first use, so
checking whether a report is up to date (``stamp``) loads no plotly.
"""

from minarch.lazy import on_first_use

__getattr__ = on_first_use(
    __name__,
    {
        "Figure": "section",
        "ReportInput": "section",
        "Section": "section",
        "SectionBuilder": "section",
        "write_report": "write",
    },
)

__all__ = ["Figure", "ReportInput", "Section", "SectionBuilder", "write_report"]
