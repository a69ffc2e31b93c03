"""The studio: a desktop app (PySide6) for live anime video, picking styles and converting files.

    python -m realtime.studio                         # the first camera, the demo model
    python -m realtime.studio --input talk.mp4 --checkpoint ckpt/001500.pt

One idea per module:

* :mod:`.qtenv` — undo what importing OpenCV does to Qt's environment, before any QApplication;
* :mod:`.tasks` — one-off jobs (opening a model, reading a style image) run off the UI thread;
* :mod:`.cameras` — the cameras of this machine, by the index OpenCV opens them with;
* :mod:`.live` — the live pipeline (built by :mod:`realtime.compose`), its thread, the style it
  runs, and its frames handed to the window newest-first;
* :mod:`.view` — the before/after view with a draggable split, and the numbers under it;
* :mod:`.gallery` — style thumbnails rendered on the user's own face;
* :mod:`.style_editor` — the 8 style numbers as sliders, and "from image…";
* :mod:`.bank` — the saved styles (the webcam app's file);
* :mod:`.look` — how the face is pasted back, and the controls of an attribute model;
* :mod:`.outputs` — virtual camera, stream and recording, switched on and off while it runs;
* :mod:`.convert_queue` — converting files in the background (``realtime.convert.convert_file``),
  and whether the live view pauses meanwhile;
* :mod:`.files` — the Files tab: drop files and folders, a progress bar per file;
* :mod:`.theme` — colours and spacing; :mod:`.window` — the main window; ``__main__`` — the CLI.

Nothing here runs a model or a tracker on the UI thread: frames and results arrive by Qt signals.
"""

TABS = ("styles", "outputs", "files")     # the tabs on the right, in order (``--tab``)
