"""Converting on a real local Ray instance (2 CPUs, shared by these tests): a library with a
long file split into three segments matches a plain local conversion; a worker process killed
mid-task costs time, not output; a missing input is one clear error before anything is written;
Ctrl-C leaves no partial output; a file that fails for good is reported while the others
finish."""
from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from realtime.compose import ConfigError, FileOutput, ModelOptions, PipelineConfig, open_model
from realtime.convert import Job, convert_file, plan_jobs
from realtime.synthetic import face_scene, read_back, write_video

from .conftest import FPS, decoded_frames, psnr

IDENTITY = ModelOptions(model="identity")
CFG = PipelineConfig()
OUT = FileOutput(Path("unused.mp4"))


def _cluster():
    from realtime import cluster
    return cluster


def _run(jobs, **kw):
    cluster = _cluster()
    from rich.console import Console
    return cluster.run_on_ray(jobs, IDENTITY, CFG, OUT, cluster.RayOptions(**kw),
                              console=Console(stderr=True), progress=False)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _our_workers(method: str) -> list[int]:
    """PIDs of this Ray instance's worker processes now running ``_Worker.<method>`` (told
    apart from any other Ray on the machine by the token in their environment)."""
    token = os.environ["RAY_AUTH_TOKEN"].encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "cmdline").read_bytes().startswith(f"ray::_Worker.{method}".encode()) and \
                    token in (d / "environ").read_bytes():
                found.append(int(d.name))
        except OSError:
            continue
    return found


def _wait_for_worker(method: str, timeout: float = 60.0) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        pids = _our_workers(method)
        if pids:
            return pids[0]
        time.sleep(0.05)
    raise AssertionError(f"no worker started {method} within {timeout} s")


def test_library_with_a_long_file_matches_a_plain_conversion(ray_local, library, tmp_path):
    broken = tmp_path / "in"
    broken.mkdir()
    whole = write_video(broken / "cut.mp4", [face_scene(320, 240) for _ in range(40)], fps=FPS)
    (broken / "cut.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    out = tmp_path / "out"
    jobs, _ = plan_jobs([library, broken / "cut.mp4"], out, overwrite=False)
    _run(jobs, segment_seconds=1.0, warmup_s=0.5)
    by_name = {j.input.name: j for j in jobs}
    cut = by_name.pop("cut.mp4")
    assert cut.status == "failed" and "cut.mp4" in cut.message           # reported, the rest done
    assert all(j.status == "done" for j in by_name.values()), [j.reason for j in jobs]
    assert by_name["long.mp4"].summary["segments"] == 3
    assert by_name["short0.mp4"].summary["segments"] == 1 and by_name["short0.mp4"].summary["nodes"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n[:-4]}_anime.mp4" for n in by_name)                          # nothing else, nothing hidden
    engine = open_model(IDENTITY).engine
    for name, job in by_name.items():
        plain = convert_file(Job(library / name, tmp_path / f"plain_{name}"), engine, CFG, OUT)
        a, b = read_back(plain.output), read_back(job.output)
        assert b["frames"] == a["frames"] == job.frames and b["timestamps"] == a["timestamps"], name
        assert b["audio_codec"] == "aac" and b["audio_s"] == a["audio_s"], name
        pairs = zip(decoded_frames(plain.output), decoded_frames(job.output))
        worst = min(psnr(x, y) for x, y in pairs)
        assert worst > 35, (name, worst)


def test_a_worker_killed_mid_task_costs_time_not_output(ray_local, tmp_path):
    src = write_video(tmp_path / "talk.mp4", [face_scene(320, 240, dx=i % 40) for i in range(100)],
                      fps=FPS, audio_s=4.0)
    out = tmp_path / "talk_anime.mp4"
    jobs = [Job(src, out)]
    killed = []

    def kill_one():
        pid = _wait_for_worker("convert_file")
        time.sleep(0.3)                          # converting by now
        os.kill(pid, signal.SIGKILL)
        killed.append((pid, out.exists()))

    killer = threading.Thread(target=kill_one, daemon=True)
    killer.start()
    _run(jobs)
    killer.join(timeout=5)
    assert killed and killed[0][1] is False     # it died before its output existed
    assert jobs[0].status == "done", jobs[0].reason
    back = read_back(out)
    assert back["frames"] == jobs[0].frames == 100 and abs(back["audio_s"] - 4.0) < 0.05
    assert _leftovers(tmp_path) == []


def test_a_file_whose_worker_dies_for_good_fails_and_the_others_finish(ray_local, tmp_path):
    clips = [write_video(tmp_path / f"c{k}.mp4", [face_scene(320, 240, dx=i % 40) for i in range(60)],
                         fps=FPS) for k in range(2)]
    jobs = [Job(c, tmp_path / f"{c.stem}_anime.mp4") for c in clips]

    def kill_one():
        os.kill(_wait_for_worker("convert_file"), signal.SIGKILL)

    threading.Thread(target=kill_one, daemon=True).start()
    _run(jobs, max_retries=0)                    # no restart: the killed task fails for good
    failed = [j for j in jobs if j.status == "failed"]
    done = [j for j in jobs if j.status == "done"]
    assert len(failed) == 1 and len(done) == 1, [(j.status, j.reason) for j in jobs]
    assert "worker died" in failed[0].reason and not failed[0].output.exists()
    assert read_back(done[0].output)["frames"] == 60
    assert _leftovers(tmp_path) == []


def test_a_missing_input_is_one_clear_error_before_anything_is_written(ray_local, tmp_path):
    src = write_video(tmp_path / "here.mp4", [face_scene(160, 120) for _ in range(5)], fps=FPS)
    out = tmp_path / "out"
    out.mkdir()
    jobs = [Job(src, out / "here_anime.mp4"), Job(tmp_path / "gone.mp4", out / "gone_anime.mp4")]
    with pytest.raises(_cluster().ClusterError) as e:
        _run(jobs)
    msg = str(e.value)
    assert "gone.mp4" in msg and "cannot read" in msg and "\n" not in msg
    assert list(out.iterdir()) == [] and all(j.status == "pending" for j in jobs)


def test_ctrl_c_cancels_and_leaves_no_partial_output(ray_local, tmp_path):
    # long enough (15 segments) that the run cannot end before the interrupt on a fast or an
    # idle machine: the interrupt comes as soon as the first segment is being converted
    src = write_video(tmp_path / "long.mp4", [face_scene(320, 240, dx=i % 30) for i in range(300)],
                      fps=FPS, audio_s=12.0)
    out = tmp_path / "long_anime.mp4"
    jobs = [Job(src, out)]
    main = threading.main_thread().ident

    def interrupt():
        _wait_for_worker("convert_segment")
        time.sleep(0.1)
        signal.pthread_kill(main, signal.SIGINT)

    # Python leaves SIGINT ignored when it starts ignored (a CI job run in the background):
    # the test wants Ctrl-C's usual meaning whatever it inherited
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=interrupt, daemon=True).start()
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            _run(jobs, segment_seconds=0.8)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - t0 < 60
    assert jobs[0].status == "interrupted"
    assert not out.exists() and _leftovers(tmp_path) == []
    time.sleep(0.5)
    assert _our_workers("convert_segment") == []                       # the workers are gone


def test_flags():
    cluster = _cluster()
    p = argparse.ArgumentParser()
    cluster.add_ray_arguments(p)
    opts = cluster.ray_options(p.parse_args(["--ray"]))
    assert opts.local and opts.segment_length() is None
    opts = cluster.ray_options(p.parse_args(["--ray", "auto", "--ray-gpus-per-task", "0.5"]))
    assert opts.address == "auto" and opts.gpus_per_task == 0.5 and opts.segment_length() == 60
    off = cluster.ray_options(p.parse_args(["--ray", "auto", "--segment-seconds", "0"]))
    assert off.segment_length() is None
    assert cluster.ray_options(p.parse_args([])) is None
    for argv, flag in ((["--segment-seconds", "30"], "--ray"),
                       (["--ray", "--segment-seconds", "-1"], "--segment-seconds"),
                       (["--ray", "--ray-cpus-per-task", "-2"], "--ray-cpus-per-task")):
        with pytest.raises(ConfigError, match=flag):
            cluster.ray_options(p.parse_args(argv))
