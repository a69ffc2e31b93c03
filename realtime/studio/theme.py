"""The studio's look: Qt's Fusion style with a dark palette (video reads best on dark grey),
one accent colour, and a few named widgets (big numbers, hints, the drop area, the message
bar) styled by object name."""
from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

__all__ = ["apply_theme", "ACCENT"]

ACCENT = "#5b8def"

_SHEET = f"""
QWidget {{ font-size: 10pt; }}
QGroupBox {{ border: 1px solid #343944; border-radius: 6px; margin-top: 12px; padding: 8px 6px 6px 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: #c9cfdb; font-weight: bold; }}
QTabWidget::pane {{ border: 1px solid #343944; border-radius: 6px; top: -1px; }}
QTabBar::tab {{ padding: 6px 16px; border: 1px solid transparent; border-top-left-radius: 6px; border-top-right-radius: 6px; color: #aab1bf; }}
QTabBar::tab:selected {{ background: #262a32; border-color: #343944; color: #ffffff; }}
QPushButton {{ padding: 5px 12px; border-radius: 5px; border: 1px solid #3c4250; background: #2b3039; }}
QPushButton:hover {{ background: #343a45; }}
QPushButton:checked {{ background: {ACCENT}; border-color: {ACCENT}; color: white; }}
QPushButton:disabled {{ color: #6b7280; }}
QToolButton#thumb {{ border: 2px solid transparent; border-radius: 6px; padding: 2px; color: #9aa3b2; font-size: 8pt; }}
QToolButton#thumb:hover {{ border-color: #4a5160; }}
QToolButton#thumb:checked {{ border-color: {ACCENT}; background: #2a3650; color: white; }}
QLabel#statValue {{ font-size: 15pt; font-weight: bold; color: #f2f4f8; }}
QLabel#statCaption {{ color: #8b93a3; font-size: 8.5pt; }}
QLabel#stageValue, QLabel#sliderValue {{ font-family: monospace; color: #dfe3ea; }}
QLabel#hint {{ color: #8b93a3; }}
QLabel#engine {{ color: #dfe3ea; font-weight: bold; }}
QLabel#why {{ color: #8b93a3; font-size: 8.5pt; }}
QFrame#drop {{ border: 2px dashed #4a5160; border-radius: 8px; background: #20242b; }}
QLabel#dropLabel {{ color: #c9cfdb; font-size: 11pt; }}
QFrame#jobRow {{ border: 1px solid #343944; border-radius: 6px; background: #22262d; }}
QFrame#jobRow[status="failed"] {{ border-color: #a34444; }}
QFrame#jobRow[status="done"] {{ border-color: #3e7d52; }}
QFrame#message {{ border-radius: 6px; padding: 2px; }}
QFrame#message[level="error"] {{ background: #5a2327; border: 1px solid #a34444; }}
QFrame#message[level="info"] {{ background: #23344f; border: 1px solid #3d5f99; }}
QProgressBar {{ border: 1px solid #3c4250; border-radius: 4px; text-align: center; background: #1b1e24; min-height: 16px; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 3px; }}
QSlider::groove:horizontal {{ height: 4px; background: #3c4250; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: {ACCENT}; width: 12px; margin: -5px 0; border-radius: 6px; }}
"""


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    p = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#1d2026", QPalette.ColorRole.WindowText: "#e6e9ef",
        QPalette.ColorRole.Base: "#171a1f", QPalette.ColorRole.AlternateBase: "#22262d",
        QPalette.ColorRole.Text: "#e6e9ef", QPalette.ColorRole.Button: "#2b3039",
        QPalette.ColorRole.ButtonText: "#e6e9ef", QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: "#2b3039",
        QPalette.ColorRole.ToolTipText: "#e6e9ef", QPalette.ColorRole.PlaceholderText: "#6b7280",
        QPalette.ColorRole.Link: ACCENT,
    }
    for role, colour in colours.items():
        p.setColor(role, QColor(colour))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#6b7280"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#6b7280"))
    app.setPalette(p)
    app.setStyleSheet(_SHEET)
