"""The Files tab: drop videos, photos or folders (or pick them), choose where the outputs go and
what they show, and follow each file in the queue (:mod:`.convert_queue`) with its own progress
bar, cancel button and "show in folder"."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QFrame,
                               QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QScrollArea, QSizePolicy, QVBoxLayout, QWidget)

from .convert_queue import MEDIA_SUFFIXES, POLICIES, ConvertQueue, QueueItem

__all__ = ["DropArea", "JobRow", "FilesPanel"]


class DropArea(QFrame):
    """Takes dropped files and folders (``dropped(list[Path])``)."""

    dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("drop")
        self.setAcceptDrops(True)
        self.setMinimumHeight(86)
        lay = QVBoxLayout(self)
        label = QLabel("Drop videos, photos or folders here")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setObjectName("dropLabel")
        lay.addWidget(label)
        self.buttons = QHBoxLayout()
        lay.addLayout(self.buttons)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.dropped.emit(paths)


class JobRow(QFrame):
    """One file of the queue: name, state, progress, cancel, show in folder."""

    def __init__(self, item: QueueItem, queue: ConvertQueue, parent: QWidget | None = None):
        super().__init__(parent)
        self.item, self.queue = item, queue
        self.setObjectName("jobRow")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(4)
        top = QHBoxLayout()
        self.name = QLabel(item.job.input.name)
        self.name.setToolTip(f"{item.job.input}\n→ {item.job.output}")
        self.name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.state = QLabel("waiting")
        self.state.setObjectName("hint")
        top.addWidget(self.name, 1)
        top.addWidget(self.state)
        lay.addLayout(top)
        bottom = QHBoxLayout()
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setTextVisible(True)
        self.bar.setFormat("waiting")
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(lambda: queue.cancel(item.id))
        self.show_button = QPushButton("Show in folder")
        self.show_button.setEnabled(False)
        self.show_button.clicked.connect(self.show_in_folder)
        bottom.addWidget(self.bar, 1)
        bottom.addWidget(self.cancel)
        bottom.addWidget(self.show_button)
        lay.addLayout(bottom)

    def set_started(self) -> None:
        self.state.setText("converting")
        self.bar.setFormat("%p%")

    def set_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
            self.bar.setFormat(f"%p%  ({done}/{total})")
        else:
            self.bar.setRange(0, 0)               # unknown length: busy indicator

    def set_finished(self, status: str, reason: str) -> None:
        self.cancel.setEnabled(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if status == "done" else 0)
        self.bar.setFormat({"done": "done", "skipped": "skipped", "cancelled": "cancelled"}
                           .get(status, "failed"))
        text = {"done": f"done → {self.item.job.output.name}"}.get(status, status)
        self.state.setText(text)
        self.setProperty("status", status)
        if reason:
            self.setToolTip(reason)
            self.state.setText(f"{text}: {reason}" if status != "done" else f"{text} ({reason})")
        self.show_button.setEnabled(status in ("done", "skipped") and self.item.job.output.exists())
        self.style().unpolish(self)
        self.style().polish(self)

    def show_in_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.item.job.output.parent)))


class FilesPanel(QWidget):
    """The Files tab (see the module docstring)."""

    def __init__(self, queue: ConvertQueue, policy: tuple[str, str], parent: QWidget | None = None):
        super().__init__(parent)
        self.queue = queue
        self.rows: dict[int, JobRow] = {}
        lay = QVBoxLayout(self)
        lay.setSpacing(10)

        self.drop = DropArea()
        self.drop.dropped.connect(self.add_paths)
        add_files = QPushButton("Add files…")
        add_files.clicked.connect(self._add_files)
        add_folder = QPushButton("Add folder…")
        add_folder.clicked.connect(self._add_folder)
        self.drop.buttons.addStretch(1)
        self.drop.buttons.addWidget(add_files)
        self.drop.buttons.addWidget(add_folder)
        self.drop.buttons.addStretch(1)
        lay.addWidget(self.drop)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        row = QHBoxLayout()
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("beside each input")
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose_folder)
        row.addWidget(self.folder, 1)
        row.addWidget(choose)
        form.addRow("Save to", row)
        self.mode = QComboBox()
        for m, text in (("composite", "faces replaced"), ("side-by-side", "before | after"),
                        ("crop", "the anime face only")):
            self.mode.addItem(text, m)
        form.addRow("Output", self.mode)
        self.overwrite = QCheckBox("replace existing outputs")
        form.addRow("", self.overwrite)
        self.policy = QComboBox()
        for key, text in POLICIES.items():
            self.policy.addItem(text, key)
        self.set_policy(policy)
        form.addRow("While converting", self.policy)
        lay.addLayout(form)

        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setObjectName("hint")
        self.notes.hide()
        lay.addWidget(self.notes)

        self.list = QWidget()
        self.list_layout = QVBoxLayout(self.list)
        self.list_layout.setContentsMargins(0, 0, 0, 0)
        self.list_layout.setSpacing(6)
        self.empty = QLabel("No files yet. Outputs are named like talk_anime.mp4 and "
                            "written only when complete; the sound is kept.")
        self.empty.setWordWrap(True)
        self.empty.setObjectName("hint")
        self.list_layout.addWidget(self.empty)
        self.list_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.list)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        lay.addWidget(scroll, 1)

        foot = QHBoxLayout()
        cancel_all = QPushButton("Cancel all")
        cancel_all.clicked.connect(queue.cancel_all)
        clear = QPushButton("Clear finished")
        clear.clicked.connect(self.clear_finished)
        foot.addStretch(1)
        foot.addWidget(cancel_all)
        foot.addWidget(clear)
        lay.addLayout(foot)

        queue.added.connect(self._added)
        queue.started.connect(self._started)
        queue.progress.connect(self._progress)
        queue.finished.connect(self._finished)

    def set_policy(self, policy: tuple[str, str]) -> None:
        """Show the default policy for this machine and model, and why."""
        self.policy.setCurrentIndex(list(POLICIES).index(policy[0]))
        self.policy.setToolTip(f"Default here: {POLICIES[policy[0]].lower()} — {policy[1]}.")

    @property
    def pause_live(self) -> bool:
        return self.policy.currentData() == "pause"

    def add_paths(self, paths: list[Path]) -> None:
        """Queue dropped or chosen files and folders with the settings shown."""
        folder = Path(self.folder.text().strip()).expanduser() if self.folder.text().strip() else None
        notes = self.queue.add([Path(p) for p in paths], folder, self.mode.currentData(),
                               self.overwrite.isChecked())
        self.notes.setText("\n".join(notes))
        self.notes.setVisible(bool(notes))

    def clear_finished(self) -> None:
        for item_id, row in list(self.rows.items()):
            if row.item.job.status != "pending":
                self.queue.forget(item_id)
                row.deleteLater()
                del self.rows[item_id]
        self.empty.setVisible(not self.rows)

    def _added(self, item: QueueItem) -> None:
        row = JobRow(item, self.queue)
        self.rows[item.id] = row
        self.list_layout.insertWidget(self.list_layout.count() - 1, row)
        self.empty.hide()

    def _started(self, item_id: int) -> None:
        if item_id in self.rows:
            self.rows[item_id].set_started()

    def _progress(self, item_id: int, done: int, total: int) -> None:
        if item_id in self.rows:
            self.rows[item_id].set_progress(done, total)

    def _finished(self, item_id: int, status: str, reason: str) -> None:
        if item_id in self.rows:
            self.rows[item_id].set_finished(status, reason)

    def _add_files(self) -> None:
        pattern = " ".join(f"*{s}" for s in sorted(MEDIA_SUFFIXES))
        paths, _ = QFileDialog.getOpenFileNames(self, "Videos and photos to convert", "",
                                                f"Videos and photos ({pattern})")
        if paths:
            self.add_paths([Path(p) for p in paths])

    def _add_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "A folder of videos and photos")
        if path:
            self.add_paths([Path(path)])

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Save the outputs in")
        if path:
            self.folder.setText(path)
