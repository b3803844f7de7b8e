"""The run folder's exclusive lock (provenance.exclusive_lock, filelock underneath): one holder at a time."""

from __future__ import annotations

import filelock
import pytest

from robustbench_jpeg.provenance import exclusive_lock


class Busy(RuntimeError):
    pass


def test_a_held_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    path = tmp_path / ".attack.lock"
    with exclusive_lock(path, busy=Busy("taken")):
        with pytest.raises(Busy, match="taken"):
            with exclusive_lock(path, busy=Busy("taken")):
                pass
    with exclusive_lock(path, busy=Busy("taken")):  # released: a later holder gets it
        pass


def test_a_lock_held_by_another_filelock_user_is_refused(tmp_path):
    path = tmp_path / ".train.lock"
    with filelock.FileLock(path, timeout=0):
        with pytest.raises(Busy):
            with exclusive_lock(path, busy=Busy("busy")):
                pass


@pytest.mark.parametrize("threads, text", [(1, "1 thread)"), (2, "2 threads)")])
def test_device_name_counts_threads_in_words(monkeypatch, threads, text):
    import torch

    from robustbench_jpeg.provenance import device_name

    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    assert device_name("cpu").endswith(text)


def test_a_holder_may_wait_for_a_lock_held_briefly(tmp_path):
    import threading

    path, taken, release = tmp_path / ".train.lock", threading.Event(), threading.Event()

    def hold() -> None:
        with exclusive_lock(path, busy=Busy("taken")):
            taken.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait(30)
    with pytest.raises(Busy):  # no wait: refused at once
        with exclusive_lock(path, busy=Busy("taken")):
            pass
    threading.Timer(0.2, release.set).start()
    with exclusive_lock(path, busy=Busy("taken"), wait_s=30):  # waiting: it gets the lock once released
        assert not holder.is_alive() or release.is_set()
    holder.join(30)
