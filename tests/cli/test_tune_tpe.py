"""`rmsprop tune --search tpe`: Optuna's TPE sampler, its pruner, the SQLite study and --resume.

The cheap task: logistic regression on 2000 Fashion-MNIST images, 3 epochs (~1 s a trial).
"""
import csv
import json
import os
import sqlite3
import subprocess
import time

import pytest

from test_cli import CLI, assert_png, run

TASK = ["--model", "logreg", "--train-limit", "2000", "--test-limit", "500", "--epochs", "3"]


def trials_of(folder):
    return json.loads((folder / "tune.json").read_text())["trials"]


def test_tpe_finds_the_grid_optimum_and_prunes(tmp_path):
    # The grid optimum, learning rates a factor 2 apart: 1e-4 ... 0.1024.
    grid = ",".join(f"{1e-4 * 2 ** k:.4g}" for k in range(11))
    run("tune", *TASK, "--grid", f"lr={grid}", "--jobs", "2", "--threads", "1", "--no-plots",
        "--out", tmp_path / "grid")
    grid_best = float(json.loads((tmp_path / "grid" / "tune.json").read_text())["best"]["lr"])

    out = tmp_path / "tpe"
    p = run("tune", *TASK, "--search", "tpe", "--trials", "30", "--space", "lr=1e-5:1:log",
            "--search-seed", "1", "--jobs", "1", "--threads", "2", "--out", out)
    assert "TPE search, 30 trials" in p.stdout
    doc = json.loads((out / "tune.json").read_text())
    trials = doc["trials"]
    assert len(trials) == 30 and sorted(t["trial"] for t in trials) == list(range(30))
    assert {t["state"] for t in trials} <= {"complete", "pruned", "diverged", "failed"}
    best = doc["best"]
    assert best == trials[0] and best["state"] == "complete"
    assert 0.5 <= float(best["lr"]) / grid_best <= 2, (best["lr"], grid_best)
    assert f"best: lr={best['lr']} " in p.stdout
    # lr near 1 diverges, lr near 1e-5 barely moves: the median pruner stops some early, and
    # a pruned trial keeps the epochs it ran, fewer than asked.
    pruned = [t for t in trials if t["state"] == "pruned"]
    assert pruned and all(1 <= len(t["val_losses"]) < 3 for t in pruned)
    assert all(len(t["val_losses"]) == 3 for t in trials if t["state"] == "complete")
    assert all(t["val_loss"] >= best["val_loss"] for t in trials if t["state"] == "complete")
    with open(out / "tune.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["trial"]) for r in rows] == [t["trial"] for t in trials]
    assert sum(r["state"] == "pruned" for r in rows) == len(pruned)
    for name in ["tune-history.png", "tune-curves.png", "tune-slice.png"]:
        assert_png(out / name)
    for t in trials:  # every trial is a train run of its own, in the run folder
        assert (out / "trials" / f"trial-{t['trial']:03d}" / "train.log").exists()
    # the study is Optuna's, in SQLite: the same 30 trials
    with sqlite3.connect(f"file:{out / 'study.db'}?mode=ro", uri=True) as db:
        assert db.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 30


def finished_in_study(path):
    """{trial number: (state, value)} of the trials that ended, read from the SQLite file
    (read-write: a kill mid-transaction leaves a journal that only a writer rolls back)."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT t.number, t.state, v.value FROM trials t LEFT JOIN trial_values v"
                          " ON v.trial_id = t.trial_id WHERE t.state != 'RUNNING'").fetchall()
    return {n: (state, value) for n, state, value in rows}


def test_tpe_resume_after_kill_9_keeps_every_finished_trial(tmp_path):
    out = tmp_path / "study"
    args = [CLI, "tune", *TASK, "--search", "tpe", "--trials", "10", "--space", "lr=1e-4:1e-1:log",
            "--space", "rho=0.8:0.999", "--space", "centered=true,false", "--jobs", "2",
            "--threads", "1", "--no-plots", "--out", str(out)]
    tune = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    lines = []
    for line in tune.stdout:  # kill it once 3 trials have ended and others are running
        lines.append(line)
        if line.startswith("[3/10]"):
            break
    tune.kill()  # SIGKILL
    tune.wait(timeout=60)
    time.sleep(1)  # its children get their SIGKILL (PR_SET_PDEATHSIG) as it dies, not before
    before = finished_in_study(out / "study.db")
    assert len(before) >= 3
    # the trials it was running died with it: no log grows after the kill
    sizes = {p: p.stat().st_size for p in out.glob("trials/*/train.log")}
    time.sleep(2)
    assert sizes == {p: p.stat().st_size for p in out.glob("trials/*/train.log")}

    p = run("tune", "--resume", out, "--no-plots")
    assert f"{len(before)} of 10 trials ended before" in p.stdout
    trials = trials_of(out)
    ended = [t for t in trials if t["state"] in ("complete", "pruned", "diverged", "failed")]
    assert len(ended) == 10  # the requested count, interrupted trials not counted
    after = finished_in_study(out / "study.db")
    for number, (state, value) in before.items():  # kept as they were, not run again
        assert after[number] == (state, value)
    interrupted = [t for t in trials if t["state"] == "interrupted"]
    for t in interrupted:  # asked again with the setting it had: all of it, or the values
        # drawn before the kill (which can come between the trial's creation and its first
        # value, or between two values: seen on a loaded machine, lr drawn, rho not yet)
        had = {k: t[k] for k in ("lr", "alpha", "centered") if t.get(k) not in (None, "")}
        if had:
            assert any(all(u[k] == v for k, v in had.items())
                       for u in ended if u["trial"] > t["trial"]), (t, ended)
    # resumed once more: nothing left to do, nothing repeated
    p = run("tune", "--resume", out / "study.db", "--no-plots")
    assert "10 of 10 trials ended before" in p.stdout
    assert len(trials_of(out)) == len(trials)


def test_tpe_resume_can_add_trials(tmp_path):
    out = tmp_path / "study"
    run("tune", "--model", "linreg", "--epochs", "2", "--search", "tpe", "--trials", "2",
        "--space", "lr=1e-3:1e-1:log", "--no-plots", "--out", out)
    p = run("tune", "--resume", out, "--trials", "4", "--no-plots")
    assert "2 of 4 trials ended before" in p.stdout and "[4/4]" in p.stdout
    assert len(trials_of(out)) == 4
    p = run("tune", "--resume", out, "--no-plots")  # the study remembers the new count
    assert "4 of 4 trials ended before" in p.stdout


@pytest.mark.parametrize("pruner", ["halving", "none"])
def test_tpe_other_pruners(pruner, tmp_path):
    p = run("tune", "--model", "linreg", "--epochs", "3", "--search", "tpe", "--trials", "6",
            "--space", "lr=1e-4:1:log", "--pruner", pruner, "--no-plots", "--out", tmp_path)
    assert f"{pruner} pruner" in p.stdout
    states = [t["state"] for t in trials_of(tmp_path)]
    assert len(states) == 6 and set(states) <= {"complete", "pruned", "diverged", "failed"}
    if pruner == "none":
        assert "pruned" not in states


@pytest.mark.parametrize("args, message", [
    (["--space", "learning_rate=1e-4:1"], "unknown option 'learning_rate'"),
    (["--space", "lr=1e-3:1e-3"], "an empty or inverted range"),
    (["--space", "lr=1e-1:1e-3:log"], "an empty or inverted range"),
    (["--space", "lr=0:1e-1:log"], "a log range must stay above 0"),
    (["--space", "lr=-1:1:log"], "a log range must stay above 0"),
    (["--space", "centered=0:1"], "centered is not a number option"),
    (["--space", "non_finite=0:1"], "non_finite is not a number option"),
    (["--space", "eps=-1:1"], "eps=-1"),
    (["--space", "lr=1e-3:fast"], "expected NAME=LO:HI"),
    (["--space", "lr=1e-3:1e-1:ln"], "expected NAME=LO:HI"),
    (["--space", "centered=maybe,true"], "maybe"),
    ([], "--search tpe needs --space"),
    (["--space", "lr=1e-3:1e-1", "--trials", "0"], "--trials N"),
    (["--space", "lr=1e-3:1e-1", "--val-fraction", "0"], "--val-fraction 0"),
    (["--space", "lr=1e-3:1e-1", "--grid", "lr=1,2"], "--search tpe takes its space from --space"),
    (["--space", "lr=1e-3:1e-1", "--pruner", "mean"], "mean"),
])
def test_tpe_refuses_bad_spaces_before_making_a_study(args, message, tmp_path):
    base = ["tune", "--model", "linreg", "--search", "tpe"]
    if "--trials" not in args:
        args = [*args, "--trials", "3"]
    p = run(*base, *args, "--out", tmp_path / "x", check=False)
    assert p.returncode != 0 and message in p.stderr, p.stderr
    assert not (tmp_path / "x" / "study.db").exists()


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("tpe") / "study"
    run("tune", "--model", "linreg", "--epochs", "1", "--search", "tpe", "--trials", "2",
        "--space", "lr=1e-3:1e-1:log", "--no-plots", "--out", out)
    return out


def test_tpe_refuses_bad_study_files_and_writes_nothing(finished_study, tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all, just some bytes" * 100)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE measurements (x REAL)")
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    import optuna  # an Optuna database, but with another study than ours
    other = tmp_path / "other.db"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(storage=f"sqlite:///{other}", study_name="someone-else")
    unreadable = tmp_path / "unreadable.db"
    unreadable.write_bytes((finished_study / "study.db").read_bytes())
    unreadable.chmod(0)
    cases = [
        (["--resume", garbage], "cannot be read as a SQLite database"),
        (["--resume", foreign], "not an Optuna study"),
        (["--resume", other], "without an `rmsprop tune` study"),
        (["--resume", empty_folder], "no study.db in this folder"),
        (["--resume", tmp_path / "missing"], "no such file or folder"),
        (["--resume", finished_study, "--lr", "0.1"], "--lr cannot be changed"),
        (["--search", "tpe", "--model", "linreg", "--trials", "2", "--space", "lr=1e-3:1e-1",
          "--study", finished_study / "study.db", "--out", tmp_path / "y"], "already exists"),
    ]
    if os.geteuid() != 0:  # root reads a file whatever its mode
        cases.append((["--resume", unreadable], "unreadable.db"))
    files = [garbage, foreign, other, finished_study / "study.db"]
    before = {f: f.read_bytes() for f in files}
    for args, message in cases:
        p = run("tune", *args, check=False)
        assert p.returncode != 0 and message in p.stderr, (args, p.stderr)
        assert p.stderr.count("\n") <= 2, p.stderr  # one clear line, no traceback
    assert before == {f: f.read_bytes() for f in files}
    assert not (tmp_path / "y").exists() or not any((tmp_path / "y").iterdir())


def test_tpe_refuses_a_study_in_use(finished_study):
    import fcntl
    with open(finished_study / "study.db", "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running `tune` holds it
        p = run("tune", "--resume", finished_study, check=False)
    assert p.returncode != 0 and "in use by another `rmsprop tune`" in p.stderr, p.stderr


def test_tpe_resumes_a_study_killed_mid_transaction(finished_study, tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.db").write_bytes((finished_study / "study.db").read_bytes())
    # a writer killed inside a transaction: its journal is left beside the database ("hot")
    writer = subprocess.Popen([
        "/usr/bin/python3", "-c",
        "import sqlite3, sys, time\n"
        f"db = sqlite3.connect({str(out / 'study.db')!r}, isolation_level=None)\n"
        "db.execute('PRAGMA cache_size=1')\n"
        "db.execute('BEGIN IMMEDIATE')\n"
        "for i in range(2000):\n"
        "    db.execute(\"INSERT INTO study_user_attributes (study_id, key, value_json)"
        " VALUES (1, ?, '1')\", (f'junk{i}',))\n"
        "print('written', flush=True)\n"
        "time.sleep(600)\n"], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "written\n"
    writer.kill()
    writer.wait()
    assert (out / "study.db-journal").exists()
    p = run("tune", "--resume", out, "--trials", "3", "--no-plots")
    assert "2 of 3 trials ended before" in p.stdout and "[3/3]" in p.stdout
    with sqlite3.connect(out / "study.db") as db:  # the uncommitted rows were rolled back
        assert db.execute("SELECT COUNT(*) FROM study_user_attributes WHERE key LIKE 'junk%'"
                          ).fetchone()[0] == 0


def test_grid_and_random_refuse_study_flags(tmp_path):
    p = run("tune", "--model", "linreg", "--grid", "lr=0.1,0.2", "--study", tmp_path / "s.db",
            check=False)
    assert p.returncode != 0 and "--study belongs to --search tpe" in p.stderr
    p = run("tune", "--model", "linreg", "--grid", "lr=1e-3:1e-1", check=False)
    assert p.returncode != 0 and "a grid takes a list" in p.stderr


def test_tpe_without_optuna_says_what_to_install(tmp_path):
    python = tmp_path / "python-without-optuna"  # Debian's Python minus its dist-packages
    python.write_text("#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n")
    python.chmod(0o755)
    p = subprocess.run([CLI, "tune", "--model", "linreg", "--search", "tpe", "--trials", "2",
                        "--space", "lr=1e-3:1e-1", "--out", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "RMSPROP_PYTHON": str(python)})
    assert p.returncode != 0 and "install Debian's python3-optuna" in p.stderr, p.stderr
    assert not (tmp_path / "x" / "study.db").exists()
