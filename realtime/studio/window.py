"""The studio's main window: the live view on the left, Styles / Outputs / Files on the right,
the source and the model along the top, one message bar for anything that went wrong.

It wires the parts (:mod:`.live`, :mod:`.gallery`, :mod:`.style_editor`, :mod:`.bank`,
:mod:`.look`, :mod:`.outputs`, :mod:`.files`) and owns their lifetimes: closing the window
stops every thread (the live pipeline, the gallery renderer, the conversion queue) within about
a second, releases the camera and finishes the outputs (a recording is saved).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFrame, QGroupBox, QHBoxLayout, QLabel,
                               QMainWindow, QPushButton, QScrollArea, QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)

from ..compose import (BACKENDS, DEMO_CHECKPOINT, CameraInput, ConfigError, FaceOptions,
                       LoopedInput, ModelOptions, OpenedModel, open_model)
from ..engines.select import ENGINE_SUFFIXES
from ..styles import StyleBank
from . import TABS
from .bank import BankPanel
from .cameras import list_cameras
from .convert_queue import ConvertQueue, LockedStyleEngine, default_policy
from .files import FilesPanel
from .gallery import StyleGallery
from .live import LiveController, describe_source
from .look import AttributePanel, LookControls
from .outputs import OutputHub, OutputsPanel
from .style_editor import StyleSliders
from .tasks import Tasks
from .view import SplitView, StatsBar

__all__ = ["StudioSettings", "StudioWindow", "MessageBar", "TABS"]

MODEL_SUFFIXES = (".pt", ".pth", ".ckpt", ".onnx") + ENGINE_SUFFIXES


@dataclass
class StudioSettings:
    """What the window starts with (the command line fills it)."""
    model: ModelOptions = field(default_factory=lambda: ModelOptions(model="demo", dynamic_style=True))
    faces: FaceOptions = field(default_factory=FaceOptions)
    input: Path | None = None          # a video played as a camera
    camera: int | None = None          # else this camera, else the first one found
    style_bank: Path | None = None
    tab: str = "styles"
    gallery_seed: int | None = None
    verbose: bool = False              # MediaPipe's own log lines shown


def model_options_for_file(path: Path, backend: str, device: str) -> ModelOptions:
    """Options for a model file chosen in the dialog: a checkpoint takes live style changes;
    an exported file takes them when it was exported with its style as an input."""
    path = Path(path)
    if path.suffix.lower() in (".onnx",) + ENGINE_SUFFIXES:
        return ModelOptions(engine_file=path, backend=backend, device=device)
    return ModelOptions(checkpoint=path, backend=backend, device=device, dynamic_style=True)


class MessageBar(QFrame):
    """One clear line (errors red, notes blue) with a close button; hidden when empty."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("message")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QPushButton("✕")
        close.setFlat(True)
        close.setFixedWidth(30)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        lay.addWidget(self.label, 1)
        lay.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str, level: str = "error") -> None:
        self.label.setText(text)
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


class StudioWindow(QMainWindow):
    """See the module docstring."""

    def __init__(self, settings: StudioSettings | None = None):
        super().__init__()
        self.settings = settings = settings or StudioSettings()
        self.setWindowTitle("gnr-anime studio")
        self.resize(1440, 900)
        self.tasks = Tasks(self)
        self.hub = OutputHub(self)
        self.controller = LiveController(settings.faces, self.hub, self)
        self.hub.sound.live_source = self._live_source       # for a video file's own sound
        self.queue = ConvertQueue(self._engine_for_job, self)
        self.bank = StyleBank(settings.style_bank)
        self._model_request: ModelOptions | None = None
        self._paused_for_files = False
        self._policy_device = "cpu"
        self._closed = False

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(12, 10, 12, 10)
        outer.setSpacing(8)
        outer.addLayout(self._top_bar())
        self.message = MessageBar()
        outer.addWidget(self.message)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self._live_side())
        split.addWidget(self._tabs())
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        split.setSizes([950, 490])
        split.setChildrenCollapsible(False)
        outer.addWidget(split, 1)
        self.setCentralWidget(central)

        self.controller.failed.connect(self._live_failed)
        self.controller.state.connect(self._live_state)
        self.controller.running.connect(self._live_running)
        self.tasks.done.connect(self._task_done)
        self.tasks.failed.connect(self._task_failed)
        self.queue.busy.connect(self._files_busy)
        self.stats_timer = QTimer(self)
        self.stats_timer.timeout.connect(self._show_stats)
        self.stats_timer.start(500)

        self.load_model(settings.model)
        self._start_initial_source()

    # =========================================================================================
    # Building the window
    # =========================================================================================
    def _top_bar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        bar.setSpacing(8)
        bar.addWidget(QLabel("Source"))
        self.source_combo = QComboBox()
        self.source_combo.setMinimumWidth(220)
        self.cameras = list_cameras()
        for cam in self.cameras:
            self.source_combo.addItem(cam.label, CameraInput(cam.index))
        if not self.cameras:
            self.source_combo.addItem("No camera found", None)
        self.source_combo.addItem("Video file…", "file")
        self.source_combo.activated.connect(self._source_picked)
        bar.addWidget(self.source_combo)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Stop the live view and release the camera")
        self.pause_button.toggled.connect(self._pause_toggled)
        self.pause_button.setEnabled(False)     # until something runs
        bar.addWidget(self.pause_button)
        bar.addSpacing(24)
        bar.addWidget(QLabel("Model"))
        self.model_combo = QComboBox()
        self.model_combo.setMinimumWidth(220)
        self.model_combo.addItem("Demo model (shipped)", ModelOptions(model="demo", dynamic_style=True))
        self.model_combo.addItem("No network (identity)", ModelOptions(model="identity"))
        self.model_combo.addItem("Checkpoint or exported model…", "file")
        self.model_combo.activated.connect(self._model_picked)
        bar.addWidget(self.model_combo)
        bar.addWidget(QLabel("Backend"))
        self.backend_combo = QComboBox()
        self.backend_combo.addItems(list(BACKENDS))
        self.backend_combo.setCurrentText(self.settings.model.backend)
        self.backend_combo.activated.connect(self._backend_picked)
        bar.addWidget(self.backend_combo)
        bar.addWidget(QLabel("Device"))
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu", "cuda"])
        self.device_combo.setCurrentText(self.settings.model.device
                                         if self.settings.model.device in ("auto", "cpu") else "cuda")
        self.device_combo.activated.connect(self._backend_picked)
        bar.addWidget(self.device_combo)
        bar.addStretch(1)
        return bar

    def _live_side(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(0, 0, 6, 0)
        lay.setSpacing(8)
        self.view = SplitView(self.controller.frames)
        self.view.setToolTip("Drag to move the before/after split; double-click to hide or "
                             "show the original")
        lay.addWidget(self.view, 1)
        self.stats = StatsBar()
        lay.addWidget(self.stats)
        self.engine_label = QLabel("opening the model…")
        self.engine_label.setObjectName("engine")
        self.why_label = QLabel()
        self.why_label.setObjectName("why")
        self.why_label.setWordWrap(True)
        self.why_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label = QLabel()
        self.status_label.setObjectName("hint")
        lay.addWidget(self.engine_label)
        lay.addWidget(self.why_label)
        lay.addWidget(self.status_label)
        return w

    def _tabs(self) -> QTabWidget:
        self.tabs = QTabWidget()
        self.tabs.setMinimumWidth(440)

        styles = QWidget()
        lay = QVBoxLayout(styles)
        lay.setContentsMargins(8, 4, 8, 8)
        lay.setSpacing(4)
        box = QGroupBox("Gallery")
        g = QVBoxLayout(box)
        self.gallery = StyleGallery(self.controller, seed=self.settings.gallery_seed)
        self.gallery.picked.connect(self._gallery_picked)
        g.addWidget(self.gallery)
        lay.addWidget(box)
        box = QGroupBox("Fine-tune")
        g = QVBoxLayout(box)
        self.sliders = StyleSliders(self.tasks, self._checkpoint_for_style)
        self.sliders.changed.connect(self._sliders_moved)
        self.sliders.failed.connect(self.show_error)
        g.addWidget(self.sliders)
        lay.addWidget(box)
        box = QGroupBox("Saved styles")
        g = QVBoxLayout(box)
        self.bank_panel = BankPanel(self.bank, lambda: self.controller.style)
        self.bank_panel.picked.connect(self._bank_picked)
        self.bank_panel.failed.connect(self.show_error)
        g.addWidget(self.bank_panel)
        lay.addWidget(box)
        box = QGroupBox("Look")
        g = QHBoxLayout(box)
        self.look = LookControls(self.settings.faces)
        self.look.changed.connect(self._look_changed)
        g.addWidget(self.look)
        lay.addWidget(box)
        self.attributes = AttributePanel(self.tasks, lambda: self.controller.style)
        self.attributes.edited.connect(self._attributes_edited)
        self.attributes.failed.connect(self.show_error)
        lay.addWidget(self.attributes)
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(styles)
        self.tabs.addTab(scroll, "Styles")

        self.outputs = OutputsPanel(self.hub)
        self.tabs.addTab(self.outputs, "Outputs")
        self.files = FilesPanel(self.queue, default_policy("cpu"))
        self.tabs.addTab(self.files, "Files")
        self.tabs.setCurrentIndex(TABS.index(self.settings.tab))
        return self.tabs

    # =========================================================================================
    # Messages
    # =========================================================================================
    def show_error(self, text: str) -> None:
        self.message.show_message(text, "error")

    def show_note(self, text: str) -> None:
        self.message.show_message(text, "info")

    # =========================================================================================
    # The model
    # =========================================================================================
    def load_model(self, opts: ModelOptions) -> None:
        """Open ``opts`` in the background; the live view keeps the current model meanwhile."""
        self._model_request = opts
        self.engine_label.setText("opening the model…")
        self.tasks.run("model", lambda: open_model(opts), token=opts)

    def _model_opened(self, opts: ModelOptions, opened: OpenedModel) -> None:
        from ..cli import apply_process_settings

        if opts is not self._model_request:
            return                              # a newer request superseded this one
        apply_process_settings(opened.engine, lambda m: None, self.settings.verbose)
        self.controller.set_model(opened)
        self._select_model_item(opts)
        self.engine_label.setText(opened.summary)
        why = opened.details.split(" — ", 1)[-1]
        self.why_label.setText(why)
        self.why_label.setToolTip(opened.details)
        dynamic = self.controller.dynamic_style
        attrs = opened.attributes
        if attrs is not None and dynamic:
            base = opened.base_style.vector if opened.base_style is not None else None
            self.attributes.set_model(attrs.isf, base, attrs.edits, attrs.seed)
        else:
            self.attributes.set_model(None)
        self.sliders.set_values(self.controller.style)
        self.sliders.set_enabled_for(dynamic, self._checkpoint_for_style() is not None)
        self.gallery.shuffle_button.setEnabled(dynamic)
        self.gallery.shuffle()
        device = opened.engine.device.type
        if device != self._policy_device:       # the user's own choice stands until then
            self._policy_device = device
            self.files.set_policy(default_policy(device))

    def _model_failed(self, opts: ModelOptions, message: str) -> None:
        if opts is not self._model_request:
            return
        current = self.controller.model
        name = _model_name(opts)
        reason = message.rstrip(".")
        message = f"{name}: {reason}" if name not in reason else reason
        for i in range(self.model_combo.count()):     # a file that failed leaves the list
            data = self.model_combo.itemData(i)
            if isinstance(data, ModelOptions) and data.has_model and \
                    (data.checkpoint or data.engine_file) and _same_model(data, opts):
                self.model_combo.removeItem(i)
                break
        if current is not None:
            self.show_error(f"Could not open the model: {message}. Still using {current.summary}.")
            self._model_request = current.options
            self._select_model_item(current.options)
            self.engine_label.setText(current.summary)
        elif opts.model != "demo":
            self.show_error(f"Could not open the model: {message}. Using the demo model instead.")
            self.load_model(ModelOptions(model="demo", dynamic_style=True))
        else:
            self.show_error(f"Could not open the demo model: {reason}.")
            self.engine_label.setText("no model")

    def _select_model_item(self, opts: ModelOptions) -> None:
        for i in range(self.model_combo.count()):
            data = self.model_combo.itemData(i)
            if isinstance(data, ModelOptions) and _same_model(data, opts):
                self.model_combo.setCurrentIndex(i)
                return

    def _model_picked(self, index: int) -> None:
        data = self.model_combo.itemData(index)
        if data == "file":
            pattern = " ".join(f"*{s}" for s in MODEL_SUFFIXES)
            path, _ = QFileDialog.getOpenFileName(self, "A GNR checkpoint or an exported model",
                                                  "", f"Models ({pattern})")
            if not path:
                if self.controller.model is not None:
                    self._select_model_item(self.controller.model.options)
                return
            self.open_model_file(Path(path))
            return
        self.load_model(self._with_backend(data))

    def open_model_file(self, path: Path) -> None:
        """Use the checkpoint or exported model at ``path`` (what the file dialog does)."""
        try:
            opts = model_options_for_file(path, self.backend_combo.currentText(),
                                          self.device_combo.currentText())
        except ConfigError as e:
            self.show_error(f"Could not open the model: {e}")
            if self.controller.model is not None:
                self._select_model_item(self.controller.model.options)
            return
        if not any(_same_model(self.model_combo.itemData(i), opts)
                   for i in range(self.model_combo.count())):
            self.model_combo.insertItem(self.model_combo.count() - 1, path.name, opts)
        self.load_model(opts)

    def _backend_picked(self, _index: int = 0) -> None:
        base = self.controller.model.options if self.controller.model else self.settings.model
        try:
            opts = self._with_backend(base)
        except ConfigError as e:
            self.show_error(str(e))
            return
        self.load_model(opts)

    def _with_backend(self, opts: ModelOptions) -> ModelOptions:
        return dataclasses.replace(opts, backend=self.backend_combo.currentText(),
                                   device=self.device_combo.currentText(), style_seed=None,
                                   style_image=None, style_vector=None)

    def _checkpoint_for_style(self) -> Path | None:
        m = self.controller.model
        if m is None:
            return None
        if m.options.checkpoint is not None:
            return Path(m.options.checkpoint)
        if m.options.model == "demo" and DEMO_CHECKPOINT.exists() and m.engine.name != "identity":
            return DEMO_CHECKPOINT
        return None

    def _task_done(self, name: str, token, result) -> None:
        if name == "model":
            self._model_opened(token, result)

    def _task_failed(self, name: str, token, message: str) -> None:
        if name == "model":
            self._model_failed(token, message)

    # =========================================================================================
    # The source
    # =========================================================================================
    def _start_initial_source(self) -> None:
        s = self.settings
        if s.input is not None:
            self.use_video_file(s.input)
        elif s.camera is not None:
            self._use_source(CameraInput(s.camera))
        elif self.cameras:
            self._use_source(CameraInput(self.cameras[0].index))
        else:
            self.view.set_message("No camera found on this machine.\n"
                                  "Choose “Video file…” under Source to play a video as a camera.")

    def use_video_file(self, path: Path) -> None:
        """Play ``path`` as if it were a camera (looped, at its frame rate)."""
        spec = LoopedInput(Path(path))
        idx = next((i for i in range(self.source_combo.count())
                    if self.source_combo.itemData(i) == spec), None)
        if idx is None:
            idx = self.source_combo.count() - 1
            self.source_combo.insertItem(idx, Path(path).name, spec)
        self.source_combo.setCurrentIndex(idx)
        self._use_source(spec)

    def _use_source(self, spec) -> None:
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(False)
        self.pause_button.setText("Pause")
        self.pause_button.blockSignals(False)
        self.view.set_message(f"opening {describe_source(spec)}…")
        self.controller.start(spec)

    def _source_picked(self, index: int) -> None:
        data = self.source_combo.itemData(index)
        if data == "file":
            path, _ = QFileDialog.getOpenFileName(
                self, "A video to play as a camera", "",
                "Videos (*.mp4 *.mov *.mkv *.webm *.avi *.m4v *.ts)")
            if path:
                self.use_video_file(Path(path))
            else:
                self._select_source_item(self.controller.source_spec)
            return
        if data is None:
            self.show_note("No camera was found on this machine. Choose “Video file…” to play a "
                           "video as a camera.")
            return
        self._use_source(data)

    def _select_source_item(self, spec) -> None:
        for i in range(self.source_combo.count()):
            if self.source_combo.itemData(i) == spec:
                self.source_combo.setCurrentIndex(i)
                return

    def _pause_toggled(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        if paused:
            self.controller.pause()
            self.view.set_message("Paused — the camera is released.")
        elif self.controller.source_spec is not None:
            self._use_source(self.controller.source_spec)

    def _live_source(self):
        """The running live source (the Outputs tab's Sound plays a video file's own sound in
        step with it)."""
        return self.controller.source

    def _live_failed(self, message: str) -> None:
        self.show_error(message)
        self.pause_button.setEnabled(False)
        self.view.set_message("The live view stopped.\nPick a source above to start again.")

    def _live_state(self, text: str) -> None:
        self.status_label.setText(text)

    def _live_running(self, running: bool) -> None:
        if running:
            self.pause_button.setEnabled(True)
            if self.message.property("level") == "info":
                self.message.hide()             # a note about the source is out of date now

    def _show_stats(self) -> None:
        self.stats.show_numbers(self.controller.snapshot())

    # =========================================================================================
    # Styles
    # =========================================================================================
    def _gallery_picked(self, z) -> None:
        self.controller.set_style(z)
        self.sliders.set_values(z)
        self.attributes.restyled()

    def _sliders_moved(self, z) -> None:
        self.controller.set_style(z)
        self.gallery.clear_choice()
        self.attributes.restyled()

    def _bank_picked(self, z) -> None:
        self._set_style_kept_edits(z)
        self.attributes.restyled()

    def _attributes_edited(self, z) -> None:
        self._set_style_kept_edits(z)

    def _set_style_kept_edits(self, z) -> None:
        if self.controller.style is not None and len(z) != len(self.controller.style):
            self.show_error(f"this saved style has {len(z)} numbers; the model takes "
                            f"{len(self.controller.style)}")
            return
        self.controller.set_style(z)
        self.sliders.set_values(z)
        self.gallery.clear_choice()


    def _look_changed(self, faces: FaceOptions) -> None:
        self.controller.faces = faces
        if self.controller.source_spec is not None and not self.controller.paused:
            self.controller.start(self.controller.source_spec)

    # =========================================================================================
    # Files
    # =========================================================================================
    def _engine_for_job(self):
        """(engine, faces) for the next file: the open model with the style chosen now,
        locked for that file (called in the conversion thread)."""
        c = self.controller
        shared = c.shared
        if shared is None:
            raise RuntimeError("no model is open yet")
        engine = LockedStyleEngine(shared, c.style) if c.dynamic_style else shared
        return engine, c.faces

    def _files_busy(self, busy: bool) -> None:
        if busy and self.files.pause_live and self.controller.is_running():
            self._paused_for_files = True
            self.controller.pause()
            self.view.set_message("Live view paused while files convert.\n"
                                  "It resumes when the queue is done (Files ▸ While converting).")
        elif not busy and self._paused_for_files:
            self._paused_for_files = False
            if not self.pause_button.isChecked() and not self._closed:
                self.controller.resume()

    # =========================================================================================
    # Closing
    # =========================================================================================
    def shutdown(self) -> None:
        """Stop every thread, release the camera, finish the outputs."""
        if self._closed:
            return
        self._closed = True
        self.stats_timer.stop()
        self.gallery.close_renderer(0.5)
        self.queue.close(1.0)
        self.controller.close(1.0)
        self.hub.shutdown()
        self.tasks.close(0.2)

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)


def _same_model(a, b) -> bool:
    if not isinstance(a, ModelOptions) or not isinstance(b, ModelOptions):
        return False
    return (a.checkpoint, a.engine_file, a.model) == (b.checkpoint, b.engine_file, b.model)


def _model_name(opts: ModelOptions) -> str:
    path = opts.checkpoint or opts.engine_file
    return Path(path).name if path is not None else f"{opts.model or 'demo'} model"
