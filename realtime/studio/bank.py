"""The style bank: saved styles with names, in the same file as the webcam app's
(:class:`realtime.styles.StyleBank`, ``~/.config/gnr-anime/styles.json`` by default), so a style
saved here is key 1–9 there and the other way round.

Click a saved style to use it; "Save" keeps the current style under a name; "Rename" and
"Delete" act on the selected one. Every change is written at once (atomically).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QHBoxLayout, QInputDialog, QListWidget, QPushButton,
                               QVBoxLayout, QWidget)

from training.messages import one_line

from ..styles import MAX_BANK, StyleBank

__all__ = ["BankPanel"]


class BankPanel(QWidget):
    """``picked(np.ndarray)`` when a saved style is clicked; ``failed(str)`` when the file
    cannot be written."""

    picked = Signal(object)
    failed = Signal(str)

    def __init__(self, bank: StyleBank, current_style, parent: QWidget | None = None):
        """``current_style()``: the style chosen now (what "Save" keeps)."""
        super().__init__(parent)
        self.bank, self.current_style = bank, current_style
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.list = QListWidget()
        self.list.setMaximumHeight(100)
        self.list.itemClicked.connect(lambda item: self.apply(self.list.row(item)))
        lay.addWidget(self.list, 1)
        side = QVBoxLayout()
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip(f"Keep the current style under a name (up to {MAX_BANK}; "
                                    "the webcam app's keys 1–9)")
        self.save_button.clicked.connect(self._save_clicked)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self._rename_clicked)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self._delete_clicked)
        for b in (self.save_button, self.rename_button, self.delete_button):
            side.addWidget(b)
        side.addStretch(1)
        lay.addLayout(side)
        self.setToolTip(f"Saved in {bank.path}")
        self.refresh()

    def refresh(self) -> None:
        self.list.clear()
        for i, name in enumerate(self.bank.names):
            self.list.addItem(f"{i + 1}  {name}")
        has = self.list.count() > 0
        self.rename_button.setEnabled(has)
        self.delete_button.setEnabled(has)

    # -- actions (the buttons ask for names; tests and callers pass them) ---------------------
    def apply(self, i: int) -> None:
        z = self.bank.get(i)
        if z is not None:
            self.picked.emit(z)

    def save_current(self, name: str | None = None) -> int | None:
        z = self.current_style()
        if z is None:
            return None
        return self._write(lambda: self.bank.save(np.asarray(z, np.float32), name or None))

    def rename(self, i: int, name: str) -> None:
        self._write(lambda: self.bank.rename(i, name))

    def delete(self, i: int) -> None:
        self._write(lambda: self.bank.delete(i))

    def _write(self, change):
        try:
            result = change()
        except (OSError, ValueError, IndexError) as e:
            self.failed.emit(f"style bank {self.bank.path}: {one_line(e)}")
            return None
        self.refresh()
        return result

    def _save_clicked(self) -> None:
        name, ok = QInputDialog.getText(self, "Save style", "Name:",
                                        text=f"style {len(self.bank) + 1}")
        if ok:
            slot = self.save_current(name.strip())
            if slot is not None:
                self.list.setCurrentRow(slot - 1)

    def _rename_clicked(self) -> None:
        i = self.list.currentRow()
        if i < 0:
            return
        name, ok = QInputDialog.getText(self, "Rename style", "Name:", text=self.bank.names[i])
        if ok and name.strip():
            self.rename(i, name)
            self.list.setCurrentRow(i)

    def _delete_clicked(self) -> None:
        i = self.list.currentRow()
        if i >= 0:
            self.delete(i)
