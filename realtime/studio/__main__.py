"""The studio: live anime video, style picking and file conversion in one window.

    python -m realtime.studio                                  # the first camera, the demo model
    python -m realtime.studio --checkpoint ckpt/001500.pt      # your model
    python -m realtime.studio --input talk.mp4                 # a video played as a camera
    QT_QPA_PLATFORM=offscreen python -m realtime.studio --input talk.mp4 \\
        --screenshot studio.png --quit-after 8                 # a screenshot, no display needed

Needs the ``gui`` extra (``pip install -e '.[gui]'``). Everything else is done in the window:
the source and the model along the top, styles, outputs (virtual camera, stream, recording)
and file conversion in the tabs on the right.
"""
from __future__ import annotations

import argparse
import signal
import sys
import traceback
from pathlib import Path

from training.messages import one_line

from .. import cli
from ..compose import ConfigError
from . import TABS

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m realtime.studio", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=None,
                     help="start on this camera (default: the first one found)")
    src.add_argument("--input", type=Path, help="start on this video, played as a camera")
    p.add_argument("--style-bank", type=Path, default=None,
                   help="saved styles file (default: the webcam app's, ~/.config/gnr-anime/styles.json)")
    p.add_argument("--tab", choices=list(TABS), default="styles", help="the tab shown first")
    p.add_argument("--screenshot", type=Path,
                   help="save a PNG of the window (rendered offscreen unless QT_QPA_PLATFORM is "
                        "set) after --quit-after seconds, then quit")
    p.add_argument("--quit-after", type=float, default=None, metavar="SECONDS",
                   help="close the window after this many seconds (default with --screenshot: 8)")
    cli.add_model_arguments(p)
    cli.add_face_arguments(p)
    cli.add_verbosity(p)
    return p


def settings_from_args(args):
    """The window's settings from the command line; ConfigError names a bad flag."""
    import dataclasses

    from ..webcam import check_output_path
    from .window import StudioSettings

    if args.quit_after is not None and not args.quit_after > 0:
        raise ConfigError(f"--quit-after must be > 0 seconds, got {args.quit_after}")
    check_output_path("--screenshot", args.screenshot)
    if args.input is not None and not args.input.is_file():
        raise ConfigError(f"--input {args.input}: no such file")
    if args.camera is not None and args.camera < 0:
        raise ConfigError(f"--camera must be an index >= 0, got {args.camera}")
    model = cli.model_options(args, dynamic_style=True, default_demo=True)
    if model.engine_file is not None:
        # an exported file takes style changes only when it was exported with its style as an
        # input; open_model says which (the style controls are disabled for a baked one)
        model = dataclasses.replace(model, dynamic_style=False)
    return StudioSettings(model=model, faces=cli.face_options(args), input=args.input,
                          camera=args.camera, style_bank=args.style_bank, tab=args.tab,
                          verbose=args.verbose)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ConfigError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return EXIT_USAGE

    try:
        import PySide6  # noqa: F401
    except ImportError:
        print("error: the studio needs PySide6: pip install -e '.[gui]'", file=sys.stderr)
        return EXIT_USAGE
    from . import qtenv
    qtenv.prepare(headless=args.screenshot is not None)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .theme import apply_theme
    from .window import StudioWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("gnr-anime studio")
    apply_theme(app)
    window = StudioWindow(settings)
    sys.excepthook = _show_in_window(window)
    window.show()
    result = {"code": 0}

    quit_after = args.quit_after if args.quit_after is not None else (8.0 if args.screenshot else None)
    if quit_after is not None:
        def finish():
            if args.screenshot is not None and not save_screenshot(window, args.screenshot):
                print(f"error: --screenshot {args.screenshot}: could not write the PNG",
                      file=sys.stderr)
                result["code"] = 1
            window.close()
        QTimer.singleShot(int(quit_after * 1000), finish)

    # Ctrl-C in the terminal closes the window like its close button (the timer lets Python
    # see the signal while Qt's event loop runs).
    signal.signal(signal.SIGINT, lambda *a: window.close())
    tick = QTimer()
    tick.timeout.connect(lambda: None)
    tick.start(200)
    app.exec()
    window.shutdown()
    return _exit_now_if_busy(result["code"])


def _exit_now_if_busy(code: int) -> int:
    """Everything that can stop has stopped and every output is finished. A job that cannot be
    interrupted (a model still opening: an ONNX export, MediaPipe starting) would be killed
    inside native code when Python exits, which aborts the process; leave at once instead."""
    import os
    import threading

    if any(t.name.startswith("gnr-") and t.is_alive() for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def save_screenshot(window, path: Path) -> bool:
    """The window as a PNG, written atomically."""
    from training.fileio import atomic_path

    pixmap = window.grab()
    try:
        with atomic_path(path) as tmp:
            if not pixmap.save(str(tmp), "PNG"):
                raise OSError("the PNG encoder failed")
    except OSError:
        return False
    return True


def _show_in_window(window):
    """An unexpected error in the UI becomes one line in the window (the full report goes to
    the log file named there), never a traceback in the terminal."""
    def hook(kind, exc, tb):
        if issubclass(kind, KeyboardInterrupt):
            window.close()
            return
        log = _log_path()
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as f:
                f.write("".join(traceback.format_exception(kind, exc, tb)) + "\n")
            where = f" (details in {log})"
        except OSError:
            where = ""
        window.show_error(f"Something went wrong: {one_line(exc)}{where}")
    return hook


def _log_path() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gnr-anime" / "studio.log"


if __name__ == "__main__":
    sys.exit(main())
