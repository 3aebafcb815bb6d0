"""Verbose output, progress callback and Ctrl-C during a fit."""

import _thread
import threading

import numpy as np
import pytest

import flashkmeans


def test_verbose_prints_faiss_style_lines(data, capfd):
    flashkmeans.Kmeans(16, 8, niter=3, verbose=True, gpu=False).train(data[:2000])
    out = capfd.readouterr().out
    assert "Clustering 2000 points in 16D to 8 clusters" in out
    assert "Iteration 2 (" in out and "objective=" in out


def test_progress_bar_or_warning(data):
    try:
        import tqdm  # noqa: F401
        flashkmeans.Kmeans(16, 8, niter=3, progress=True, gpu=False).train(data[:2000])
    except ImportError:
        with pytest.warns(RuntimeWarning, match="needs tqdm"):
            flashkmeans.Kmeans(16, 8, niter=3, progress=True, gpu=False).train(data[:2000])


def test_ctrl_c_stops_between_iterations():
    """SIGINT (simulated) during a long fit raises KeyboardInterrupt soon,
    and the library stays usable afterwards."""
    x = np.random.RandomState(0).randn(50000, 32).astype(np.float32)
    km = flashkmeans.Kmeans(32, 256, niter=100000, gpu=False, early_stop_threshold=-1)
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            km.train(x)
    finally:
        timer.cancel()
    assert km.centroids is None
    assert flashkmeans.Kmeans(32, 8, niter=2, gpu=False).train(x[:1000]) > 0


def test_gil_released_during_fit():
    """Another Python thread runs while the engine iterates."""
    x = np.random.RandomState(0).randn(20000, 32).astype(np.float32)
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(1)

    worker = threading.Thread(target=count)
    worker.start()
    try:
        flashkmeans.Kmeans(32, 64, niter=2, gpu=False).train(x)
    finally:
        stop.set()
        worker.join()
    assert len(ticks) > 1000
