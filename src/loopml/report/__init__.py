"""The HTML report: one self-contained file with every figure the team decides on.

``build_report(project, eval_ref=None, out="report.html")`` writes one HTML file that needs
no network to open: inline CSS, figures as inline base64 PNG, no scripts, no external URL.
See docs/report.md.
"""

from loopml.report._build import Report, build_report, render_report
from loopml.report._figures import Figure

__all__ = ["Figure", "Report", "build_report", "render_report"]
