"""`mpirun -np N rmsprop train --distributed`: data-parallel training over MPI ranks.

The library's own MPI tests (tests/mpi) check the averaging's arithmetic; these check the
command: one process's result at N = 1, the same bits run after run, one writer, and --resume
at another N.
"""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

from test_cli import CLI, run

MPIRUN = shutil.which("mpirun")
# CI runs as root, and 2 ranks on 2 cores: Open MPI asks to be told both are meant
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_mpi_yield_when_idle="1")
# logistic regression (no dropout), a batch that does not split evenly over 2 ranks
TASK = ["--model", "logreg", "--train-limit", "1000", "--test-limit", "200", "--epochs", "3",
        "--batch-size", "33", "--threads", "1", "--no-plots"]


def mpirun(ranks, *args, check=True):
    p = subprocess.run([MPIRUN, "--oversubscribe", "-np", str(ranks), CLI, *map(str, args)],
                       capture_output=True, text=True, timeout=600, env=MPI_ENV)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def built_with_mpi():
    if MPIRUN is None:
        return False
    p = mpirun(1, "train", "--distributed", "--epochs", "0", "--train-limit", "10",
               "--test-limit", "10", check=False)
    return "built without" not in p.stderr


pytestmark = pytest.mark.skipif(not built_with_mpi(),
                                reason="needs mpirun and a CLI built with rmsprop::mpi")


def metrics(folder):
    return json.loads((folder / "metrics.json").read_text())


def test_one_rank_is_one_process_bit_for_bit(tmp_path):
    run("train", *TASK, "--out", tmp_path / "alone")
    mpirun(1, "train", *TASK, "--distributed", "--out", tmp_path / "one")
    assert metrics(tmp_path / "one")["weights_digest"] == metrics(tmp_path / "alone")["weights_digest"]


def test_two_ranks_learn_as_one_process_and_repeat_their_bits(tmp_path):
    p = mpirun(2, "train", *TASK, "--distributed", "--out", tmp_path / "a")
    assert "distributed: 2 ranks" in p.stdout
    assert p.stdout.count("epoch 3/3") == 1  # rank 0 prints, the other is quiet
    mpirun(2, "train", *TASK, "--distributed", "--out", tmp_path / "b")
    a, b = metrics(tmp_path / "a"), metrics(tmp_path / "b")
    assert a["weights_digest"] == b["weights_digest"]  # deterministic reduction
    assert a["settings"]["ranks"] == 2
    run("train", *TASK, "--out", tmp_path / "alone")
    alone = metrics(tmp_path / "alone")
    # The same mean gradient of every batch, summed in another order: float32 rounding apart
    # (the library's tests bound it per step); a loose check that nothing else differs (a rank
    # stepping on its half alone, or a mis-weighted uneven batch, moves it by far more).
    assert a["weights_digest"] != alone["weights_digest"]
    for key in ("val_loss", "train_loss"):
        assert a["epochs"][-1][key] == pytest.approx(alone["epochs"][-1][key], rel=1e-3), key


def test_resume_at_another_number_of_ranks(tmp_path):
    mpirun(2, "train", *TASK, "--distributed", "--out", tmp_path / "part", "--stop-after", "1")
    checkpoint = tmp_path / "part" / "checkpoint.pt"
    # at 2 ranks again: the run that never stopped, to the bit
    mpirun(2, "train", *TASK, "--distributed", "--out", tmp_path / "again", "--resume", checkpoint)
    mpirun(2, "train", *TASK, "--distributed", "--out", tmp_path / "whole")
    assert metrics(tmp_path / "again")["weights_digest"] == metrics(tmp_path / "whole")["weights_digest"]
    # at 1 rank (and in one process): goes on from epoch 1
    p = mpirun(1, "train", *TASK, "--distributed", "--out", tmp_path / "one", "--resume", checkpoint)
    assert "resumed from" in p.stdout and "epoch 3/3" in p.stdout
    one = metrics(tmp_path / "one")
    assert len(one["epochs"]) == 3
    assert one["epochs"][0] == metrics(tmp_path / "part")["epochs"][0]
    p = run("train", *TASK, "--out", tmp_path / "alone", "--resume", checkpoint)
    assert metrics(tmp_path / "alone")["weights_digest"] == one["weights_digest"]


def test_an_error_on_one_rank_ends_every_rank(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    p = mpirun(2, "train", *TASK, "--distributed", "--out", blocker / "run", check=False)
    assert p.returncode != 0
    assert "--out" in p.stderr and "cannot create the folder" in p.stderr


def test_sharded_state_is_data_parallel_to_the_bit_and_its_checkpoint_is_one_process_s(tmp_path):
    mpirun(2, "train", *TASK, "--distributed", "--out", tmp_path / "whole")
    whole = metrics(tmp_path / "whole")["weights_digest"]
    p = mpirun(2, "train", *TASK, "--distributed", "--shard-state", "--out", tmp_path / "sharded")
    assert "optimizer state sharded" in p.stdout and "epoch 3/3" in p.stdout
    # the same reduction, the same element rule on 1/N of the state: the same bits
    assert metrics(tmp_path / "sharded")["weights_digest"] == whole
    # stopped sharded: the checkpoint resumes unsharded at 2 ranks, and sharded, to the bit
    mpirun(2, "train", *TASK, "--distributed", "--shard-state", "--stop-after", "1",
           "--out", tmp_path / "part")
    checkpoint = tmp_path / "part" / "checkpoint.pt"
    mpirun(2, "train", *TASK, "--distributed", "--resume", checkpoint, "--out", tmp_path / "plain")
    assert metrics(tmp_path / "plain")["weights_digest"] == whole
    mpirun(2, "train", *TASK, "--distributed", "--shard-state", "--resume",
           tmp_path / "plain" / "checkpoint.pt", "--epochs", "4", "--out", tmp_path / "longer")
    mpirun(2, "train", *TASK, "--distributed", "--epochs", "4", "--out", tmp_path / "longer_whole")
    assert (metrics(tmp_path / "longer")["weights_digest"]
            == metrics(tmp_path / "longer_whole")["weights_digest"])
    # and in one process, where a sharded run's checkpoint is the single-process one
    run("train", *TASK, "--resume", checkpoint, "--out", tmp_path / "alone")
    mpirun(1, "train", *TASK, "--distributed", "--shard-state", "--resume", checkpoint,
           "--out", tmp_path / "one")
    assert metrics(tmp_path / "one")["weights_digest"] == metrics(tmp_path / "alone")["weights_digest"]


def test_shard_state_needs_distributed_and_our_optimizer(tmp_path):
    p = run("train", *TASK, "--shard-state", "--out", tmp_path, check=False)
    assert p.returncode != 0 and "--shard-state requires --distributed" in p.stderr
    p = mpirun(1, "train", *TASK, "--distributed", "--shard-state", "--backend", "torch",
               "--out", tmp_path, check=False)
    assert p.returncode != 0 and "--shard-state" in p.stderr and "--backend torch" in p.stderr


def rank_pids(mpirun_pid):
    """The ranks mpirun started on this machine, by their rank."""
    ranks = {}
    for proc in pathlib.Path("/proc").iterdir():
        try:
            if not proc.name.isdigit():
                continue
            # /proc/PID/stat: "pid (comm) state ppid ...", comm may hold spaces
            if int(proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1]) != mpirun_pid:
                continue
            environ = proc.joinpath("environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        pid = int(proc.name)
        for entry in environ:
            if entry.startswith(b"OMPI_COMM_WORLD_RANK="):
                ranks[int(entry.split(b"=")[1])] = pid
    return ranks


def test_a_rank_killed_mid_run_ends_the_job_and_the_last_checkpoint_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["train", *TASK, "--epochs", "200", "--distributed", "--shard-state", "--out", out]
    job = subprocess.Popen([MPIRUN, "--oversubscribe", "-np", "2", CLI, *map(str, args)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=MPI_ENV)
    try:
        # rank 0 writes the checkpoint after every epoch: kill it while it trains a later one
        deadline = time.monotonic() + 300
        while not (out / "checkpoint.pt").exists():
            assert job.poll() is None, job.communicate()
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            time.sleep(0.05)
        time.sleep(0.5)
        ranks = rank_pids(job.pid)
        assert 0 in ranks, f"rank 0 is not among mpirun's children: {ranks}"
        os.kill(ranks[0], signal.SIGKILL)  # the writer
        started = time.monotonic()
        stdout, stderr = job.communicate(timeout=120)  # an end, not a hang
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0
    assert "exited on signal 9" in stderr or "killed" in stderr.lower(), stderr
    assert time.monotonic() - started < 120
    assert "epoch 200/200" not in stdout
    # the last checkpoint (written atomically: never half a file) goes on, here in one process
    p = run("train", *TASK, "--epochs", "200", "--resume", out / "checkpoint.pt",
            "--stop-after", "1", "--out", tmp_path / "resumed")
    assert "resumed from" in p.stdout
