"""g7-evidence: evidence classification for G7 compliance monitoring."""

from .reports import ReportParseError, parse_report, parse_report_file

__all__ = ["ReportParseError", "parse_report", "parse_report_file"]
__version__ = "0.1.0"
