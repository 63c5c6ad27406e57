"""End-to-end tests of the `rmsprop` CLI on small slices of Fashion-MNIST (CTest: cli_tests).

RMSPROP_CLI names the binary. RMSPROP_FULL_ACCURACY=1 adds the default run on the full data.
"""
import gzip
import io
import json
import os
import subprocess
import struct
import zipfile
import zlib

import pytest

CLI = os.environ.get("RMSPROP_CLI", "build/apps/rmsprop")
DATA = "/usr/share/datasets/fashion-mnist"
SMALL = ["--train-limit", "600", "--test-limit", "200", "--epochs", "2", "--threads", "2"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args, check=True):
    p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def assert_png(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_MAGIC, path
    width, height = struct.unpack(">II", head[16:24])
    assert width >= 300 and height >= 200, (path, width, height)


@pytest.mark.parametrize("command", [[], ["train"], ["compare"], ["bench"], ["experiment"], ["tune"]])
def test_help(command):
    p = run(*command, "--help")
    assert "Usage" in p.stdout


def test_no_subcommand_is_an_error_with_usage():
    p = run(check=False)
    assert p.returncode != 0 and "subcommand" in (p.stdout + p.stderr).lower()


def test_train_writes_results_and_plots(tmp_path):
    out = tmp_path / "run"
    p = run("train", *SMALL, "--out", out)
    assert "epoch 1/2" in p.stdout and "epoch 2/2" in p.stdout
    assert "test accuracy: 0." in p.stdout
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["command"] == "train"
    assert doc["dataset"] == {"name": "fashion-mnist", "train": 480, "validation": 120, "test": 200}
    assert doc["model"] == "mlp 784-32-10 dropout 0.20"
    assert doc["optimizer"]["backend"] == "rmsprop"
    options = doc["optimizer"]["options"]
    assert (options["lr"], options["alpha"], options["eps"]) == ("0.001", "0.9", "1e-08")
    assert [e["epoch"] for e in doc["epochs"]] == [1, 2]
    for e in doc["epochs"]:
        assert set(e) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                          "seconds", "optimizer_seconds"}
        assert 0 <= e["val_accuracy"] <= 1 and e["train_loss"] > 0
    assert 0 < doc["test"]["accuracy"] <= 1 and doc["test"]["loss"] > 0
    assert 0 < doc["optimizer_share"] < 1
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0] == "epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds,optimizer_seconds"
    assert len(rows) == 3
    assert_png(out / "loss.png")
    assert_png(out / "accuracy.png")
    assert (out / "checkpoint.pt").stat().st_size > 0


def test_learns_and_is_reproducible(tmp_path):
    a = run("train", *SMALL, "--epochs", "3", "--out", tmp_path / "a", "--no-plots")
    b = run("train", *SMALL, "--epochs", "3", "--out", tmp_path / "b", "--no-plots")
    da = json.loads((tmp_path / "a" / "metrics.json").read_text())
    db = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert da["weights_digest"] == db["weights_digest"]
    assert [e["val_loss"] for e in da["epochs"]] == [e["val_loss"] for e in db["epochs"]]
    assert da["epochs"][-1]["train_loss"] < da["epochs"][0]["train_loss"]
    assert da["test"]["accuracy"] > 0.5  # 10 classes: chance is 0.1
    assert not (tmp_path / "a" / "loss.png").exists()
    c = run("train", *SMALL, "--epochs", "3", "--seed", "7", "--out", tmp_path / "c", "--no-plots")
    dc = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert dc["weights_digest"] != da["weights_digest"]


def test_resume_after_interruption_gives_the_same_weights(tmp_path):
    flags = [*SMALL, "--epochs", "3", "--momentum", "0.9", "--centered", "true", "--no-plots"]
    straight = run("train", *flags, "--out", tmp_path / "straight")
    stopped = run("train", *flags, "--out", tmp_path / "part", "--stop-after", "1")
    assert "stopped after epoch 1" in stopped.stdout and "test accuracy" not in stopped.stdout
    resumed = run("train", *flags, "--out", tmp_path / "part",
                  "--resume", tmp_path / "part" / "checkpoint.pt")
    assert "resumed from" in resumed.stdout and "after epoch 1" in resumed.stdout
    a = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    b = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert a["weights_digest"] == b["weights_digest"]
    assert [e["val_loss"] for e in a["epochs"]] == [e["val_loss"] for e in b["epochs"]]
    assert a["test"] == b["test"]
    assert straight.stdout.splitlines()[-2] == resumed.stdout.splitlines()[-2]  # test accuracy


def test_resume_refuses_another_runs_checkpoint(tmp_path):
    run("train", *SMALL, "--epochs", "1", "--out", tmp_path / "a", "--no-plots")
    p = run("train", *SMALL, "--lr", "0.01", "--out", tmp_path / "b", "--no-plots",
            "--resume", tmp_path / "a" / "checkpoint.pt", check=False)
    assert p.returncode != 0 and "checkpoint is of another run" in p.stderr and "lr=0.01" in p.stderr
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    p = run("train", *SMALL, "--resume", tmp_path / "junk.pt", "--out", tmp_path / "c", check=False)
    assert p.returncode != 0 and "cannot load training checkpoint" in p.stderr


def test_resume_refuses_a_damaged_checkpoint(tmp_path):
    flags = [*SMALL, "--model", "logreg", "--epochs", "2", "--no-plots"]
    run("train", *flags, "--out", tmp_path / "a", "--stop-after", "1")
    good = (tmp_path / "a" / "checkpoint.pt").read_bytes()
    # single-bit flips spread over the whole file (header, archive, checksum): every one refused
    # before anything is restored (a torch archive alone took 33 of 40 such flips silently)
    positions = sorted({0, 9, 13, 17, 30, len(good) - 1} |
                       {len(good) * k // 14 for k in range(1, 14)})
    for i in positions:
        bad = bytearray(good)
        bad[i] ^= 1 << (i % 8)
        (tmp_path / "bad.pt").write_bytes(bytes(bad))
        p = run("train", *flags, "--out", tmp_path / f"b{i}",
                "--resume", tmp_path / "bad.pt", check=False)
        assert p.returncode != 0 and "cannot load training checkpoint" in p.stderr, (i, p.stderr)
        assert "resumed from" not in p.stdout
    (tmp_path / "bad.pt").write_bytes(good)
    run("train", *flags, "--out", tmp_path / "c", "--resume", tmp_path / "bad.pt")


def reseal(file_bytes, payload):
    """checkpoint.pt's envelope around another payload, its checksum made right (a forgery)."""
    head = file_bytes[:16] + struct.pack("<Q", len(payload)) + payload
    return head + struct.pack("<I", zlib.crc32(head))


def test_resume_checks_a_forged_checkpoint_as_untrusted(tmp_path):
    flags = [*SMALL, "--model", "logreg", "--epochs", "2", "--no-plots"]
    run("train", *flags, "--out", tmp_path / "a", "--stop-after", "1")
    good = (tmp_path / "a" / "checkpoint.pt").read_bytes()
    payload = good[24:-4]
    # bytes changed inside the torch archive, the checksum forged to match: resumed (a weight's
    # or a loss's value changed) or refused naming the file, never a crash
    for i in [len(payload) * k // 24 for k in range(24)] + [len(payload) - 1]:
        bad = bytearray(payload)
        bad[i] ^= 0xFF
        (tmp_path / "forged.pt").write_bytes(reseal(good, bytes(bad)))
        p = run("train", *flags, "--out", tmp_path / f"f{i}", "--resume", tmp_path / "forged.pt",
                check=False)
        assert p.returncode >= 0, (i, p.returncode, p.stderr)  # no signal
        # (run() reads the output as UTF-8: a forged fingerprint's bytes come escaped)
        resumed = "resumed from" in p.stdout  # it may then diverge: a weight's value changed
        assert resumed or "--resume " + str(tmp_path / "forged.pt") in p.stderr, (i, p.stderr)
    # a well-formed archive with values no run writes: each refused by name
    torch = pytest.importorskip("torch")
    with zipfile.ZipFile(io.BytesIO(payload)) as z:
        assert any(n.endswith("data.pkl") for n in z.namelist())
    module = torch.jit.load(io.BytesIO(payload))
    history = module.history.clone()
    *owner_path, weight = next(n for n, _ in module.model.named_parameters()).split(".")

    def epochs(value):
        return history.clone().index_fill_(1, torch.tensor([0]), value)

    def set_weight(m, value):
        owner = m.model
        for part in owner_path:
            owner = getattr(owner, part)
        owner._c.setattr(weight, value)

    cases = {
        "epoch nan": lambda m: m._c.setattr("history", epochs(float("nan"))),
        "epoch 1e300": lambda m: m._c.setattr("history", epochs(1e300)),
        "history float32": lambda m: m._c.setattr("history", history.float()),
        "weight shape": lambda m: set_weight(m, torch.zeros(3, 3)),
    }
    expected = {"epoch nan": "history's row 0 has epoch nan",
                "epoch 1e300": "history's row 0 has epoch",
                "history float32": "history is not a float64 table",
                "weight shape": "of shape [3, 3], the model's"}
    for name, change in cases.items():
        m = torch.jit.load(io.BytesIO(payload))
        change(m)
        buffer = io.BytesIO()
        torch.jit.save(m, buffer)
        (tmp_path / "crafted.pt").write_bytes(reseal(good, buffer.getvalue()))
        p = run("train", *flags, "--out", tmp_path / "c", "--resume", tmp_path / "crafted.pt",
                check=False)
        assert p.returncode > 0 and expected[name] in p.stderr, (name, p.stderr)


def test_every_model_and_backend(tmp_path):
    p = run("train", "--model", "logreg", *SMALL, "--out", tmp_path / "l", "--no-plots")
    assert "logreg 784-10" in p.stdout
    p = run("train", "--model", "cnn", "--train-limit", "200", "--test-limit", "100", "--epochs", "1",
            "--out", tmp_path / "c", "--no-plots")
    assert "test accuracy" in p.stdout
    p = run("train", "--model", "mlp", "--hidden", "64,16", "--dropout", "0", *SMALL,
            "--flavor", "tf1", "--momentum", "0.9", "--out", tmp_path / "m", "--no-plots")
    assert "mlp 784-64-16-10" in p.stdout
    p = run("train", *SMALL, "--backend", "torch", "--flavor", "torch", "--out", tmp_path / "t",
            "--no-plots")
    assert "test accuracy" in p.stdout
    p = run("train", "--model", "linreg", "--epochs", "20", "--lr", "0.1", "--out", tmp_path / "r")
    assert "linear-regression" in p.stdout
    doc = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert doc["test"]["accuracy"] is None and doc["test"]["loss"] < 0.05  # noise² = 0.01
    assert_png(tmp_path / "r" / "loss.png")
    assert not (tmp_path / "r" / "accuracy.png").exists()


def test_compare_plots_every_optimizer(tmp_path):
    out = tmp_path / "cmp"
    p = run("compare", *SMALL, "--optimizer", "sgd", "--optimizer", "rmsprop",
            "--optimizer", "adam:lr=0.002", "--out", out)
    for name in ("SGD", "RMSProp", "Adam lr=0.002"):
        assert f"== {name}" in p.stdout
    table = p.stdout[p.stdout.index("optimizer "):]
    assert "test acc" in table and "Adam lr=0.002" in table
    doc = json.loads((out / "compare.json").read_text())
    assert [r["optimizer"] for r in doc["runs"]] == ["SGD", "RMSProp", "Adam lr=0.002"]
    assert doc["runs"][2]["options"]["algorithm"] == "adam"
    assert doc["runs"][2]["options"]["lr"] == "0.002"
    lines = (out / "compare.csv").read_text().splitlines()
    assert lines[0].startswith("optimizer,epoch,") and len(lines) == 1 + 3 * 2
    assert_png(out / "compare.png")


def test_bench_json(tmp_path):
    p = run("bench", "--shape", "3x20000", "--shape", "1x100000", "--variant", "plain",
            "--variant", "centered+momentum", "--dtype", "float32", "--dtype", "bfloat16",
            "--threads", "1", "--threads", "2", "--repeats", "3", "--json")
    doc = json.loads(p.stdout)
    assert set(doc["roofline"]) == {"threads", "copy_gbs", "triad_gbs", "inplace_update_gbs"}
    assert len(doc["cases"]) == 2 * 2 * 2 * 2
    for c in doc["cases"]:
        assert c["elements"] in (60000, 100000) and c["dtype"] in ("float32", "bfloat16")
        assert c["variant"] in ("plain", "centered+momentum") and c["threads"] in (1, 2)
        for key in ("seconds_per_step", "g_elements_per_s", "gb_per_s", "fraction_of_roofline"):
            assert c[key] > 0, key
    p = run("bench", "--shape", "1x1000", "--repeats", "2")
    assert "%roof" in p.stdout and "plain" in p.stdout


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "resnet"], "resnet"),
    (["train", "--epochs", "0"], "--epochs: 0 is not in [1,"),
    (["train", "--lr", "fast"], "fast"),
    (["train", "--lr", "-1"], "lr"),
    (["train", "--alpha", "0.9", "--rho", "0.8"], "--alpha and --rho"),
    (["train", "--flavor", "jax"], "jax"),
    (["train", "--backend", "torch", "--nesterov", "true", "--momentum", "0.9"], "nesterov"),
    (["train", "--backend", "torch", "--non-finite", "skip"], "no non_finite=skip"),
    (["train", "--threads", "-2"], "threads"),
    (["train", "--no-such-flag"], "no-such-flag"),
    (["compare", "--optimizer", "lion"], "lion"),
    (["compare", "--optimizer", "adam:lr"], "not option=value"),
    (["bench", "--shape", "12"], "TENSORSxELEMENTS"),
    (["bench", "--variant", "fancy"], "fancy"),
    # integers CLI11 alone would wrap or saturate, values it would take as not given
    (["train", "--epochs", "18446744073709551617"], "out of range"),
    (["train", "--epochs", "2000000"], "2000000 is not in [1, 1000000]"),
    (["train", "--batch-size", "0"], "0 is not in [1,"),
    (["train", "--seed", "-1"], "'-1' is not a non-negative integer"),
    (["train", "--seed", "18446744073709551616"], "out of range"),
    (["train", "--dropout", "nan"], "--dropout nan"),
    (["train", "--dropout", "1"], "--dropout 1"),
    (["train", "--lr", ""], "--lr: an empty value"),
    (["train", "--flavor", ""], "--flavor: an empty value"),
    (["train", "--threads", "5000"], "5000 threads on"),
    (["bench", "--threads", "5000"], "5000 threads on"),
    (["train", "--weight-decay-uses-lr", "false=true"],
     "invalid value for weight_decay_uses_lr: 'false=true' is not a boolean"),
])
def test_bad_flags_are_refused_by_name(args, message, tmp_path):
    p = run(*args, "--out", tmp_path / "x", check=False) if args[0] != "bench" else run(*args, check=False)
    assert p.returncode != 0
    assert message in p.stdout + p.stderr


def test_a_batch_larger_than_the_data_is_one_batch(tmp_path):
    # 2^63 - 1 once overflowed the batch count: 0 steps, "finished": true
    flags = ["train", "--model", "linreg", "--epochs", "2", "--no-plots"]
    run(*flags, "--batch-size", "9223372036854775807", "--out", tmp_path / "huge")
    run(*flags, "--batch-size", "100000000", "--out", tmp_path / "big")
    huge = json.loads((tmp_path / "huge" / "metrics.json").read_text())
    big = json.loads((tmp_path / "big" / "metrics.json").read_text())
    assert huge["weights_digest"] == big["weights_digest"]
    assert huge["epochs"][1]["train_loss"] < huge["epochs"][0]["train_loss"]  # it stepped


def test_a_run_that_diverges_ends_non_zero_and_says_so(tmp_path):
    # lr 10 on logistic regression: every loss finite, every one far above the untrained model's
    p = run("train", *SMALL, "--model", "logreg", "--lr", "10", "--no-plots",
            "--out", tmp_path / "a", check=False)
    assert p.returncode != 0 and "the run diverged: validation loss" in p.stderr, p.stderr
    doc = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert doc["diverged"] is True and doc["epochs"][-1]["val_loss"] > doc["initial_loss"]
    ok = run("train", *SMALL, "--model", "logreg", "--no-plots", "--out", tmp_path / "b")
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["diverged"] is False
    assert "diverged" not in ok.stderr


def test_an_unwritable_run_folder_is_refused_before_any_work(tmp_path):
    # /proc/self exists and takes no new file, even for root (a chmod would not stop root)
    p = run("train", *SMALL, "--out", "/proc/self", check=False)
    assert p.returncode != 0 and "--out /proc/self: cannot write in the folder" in p.stderr
    assert "epoch 1" not in p.stdout and "examples" not in p.stdout


def test_missing_and_damaged_dataset_files(tmp_path):
    p = run("train", *SMALL, "--data", tmp_path, "--out", tmp_path / "o", check=False)
    assert p.returncode != 0 and "train-images-idx3-ubyte.gz: no such file" in p.stderr
    assert "dataset-fashion-mnist" in p.stderr
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    for name in names:
        os.symlink(os.path.join(DATA, name), tmp_path / name)
    # A truncated image file: the header promises more than the data holds.
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    os.remove(bad)
    with gzip.open(os.path.join(DATA, names[2])) as f:
        content = f.read()
    with gzip.open(bad, "wb") as f:
        f.write(content[:5000])
    p = run("train", *SMALL, "--data", tmp_path, "--out", tmp_path / "o", check=False)
    assert p.returncode != 0 and "t10k-images-idx3-ubyte.gz" in p.stderr and "truncated" in p.stderr
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")  # gzip magic, damaged stream
    p = run("train", *SMALL, "--data", tmp_path, "--out", tmp_path / "o", check=False)
    assert p.returncode != 0 and "t10k-images-idx3-ubyte.gz" in p.stderr
    with gzip.open(bad, "wb") as f:
        f.write(b"\x00\x00\x0d\x03" + content[4:])  # float IDX, not unsigned byte
    p = run("train", *SMALL, "--data", tmp_path, "--out", tmp_path / "o", check=False)
    assert p.returncode != 0 and "not unsigned byte" in p.stderr
    with gzip.open(bad, "wb") as f:
        f.write(b"PK\x03\x04 this is a zip file")
    p = run("train", *SMALL, "--data", tmp_path, "--out", tmp_path / "o", check=False)
    assert p.returncode != 0 and "not an IDX file" in p.stderr


@pytest.mark.skipif(os.environ.get("RMSPROP_FULL_ACCURACY") != "1",
                    reason="the full-data run is its own CTest (cli_default_train_accuracy)")
def test_default_train_reaches_85_percent(tmp_path):
    p = run("train", "--out", tmp_path / "default", "--no-plots")
    accuracy = float(p.stdout.split("test accuracy: ")[1].split()[0])
    print(p.stdout)
    assert accuracy >= 0.85, p.stdout


def experiment(name, tmp_path):
    out = tmp_path / name
    p = run("experiment", name, "--out", out)
    assert "finding holds: yes" in p.stdout, p.stdout
    doc = json.loads((out / "findings.json").read_text())
    assert doc["experiment"] == name and doc["holds"] is True
    csv_files = list(out.glob("*.csv"))
    assert len(csv_files) == 1 and len(csv_files[0].read_text().splitlines()) > 10
    assert_png(out / (csv_files[0].stem + ".png"))
    return doc["findings"]


def test_experiment_nonstationary(tmp_path):
    f = experiment("nonstationary", tmp_path)
    assert f["adagrad_effective_lr_end"] < f["lr"] / 500  # ~lr/1000: tiny after the switch
    assert f["rmsprop_effective_lr_end"] > 0.8 * f["lr"]  # recovered: 1/sqrt(1 + 0.9^100·1e4)
    assert f["rmsprop_over_adagrad"] > 500


def test_experiment_scale_invariance(tmp_path):
    f = experiment("scale-invariance", tmp_path)
    assert f["rmsprop_max_relative_difference"] < 1e-6  # the same steps for c = 1e-4, 1, 1e4
    assert f["sgd_c1_distance_to_optimum"] < 1e-3  # c = 1 converges...
    assert f["sgd_c1e-4_distance_to_optimum"] > 0.5  # ...c = 1e-4 barely moves...
    assert f["sgd_c1e4_abs_theta"] is None or f["sgd_c1e4_abs_theta"] > 1e3  # ...1e4 diverges


def test_experiment_bias_correction(tmp_path):
    f = experiment("bias-correction", tmp_path)
    assert abs(f["first_step_uncorrected_over_corrected"] - 10.0) < 1e-3  # 1/sqrt(1 - 0.99)
    assert f["v_vs_theory_max_relative_error"] < 0.05  # sampling error of 20000 streams


def test_experiment_ema_memory(tmp_path):
    f = experiment("ema-memory", tmp_path)
    for key, rho in (("memory_rho_0.9", 0.9), ("memory_rho_0.99", 0.99), ("memory_rho_0.999", 0.999)):
        assert abs(f[key]["measured"] - 1 / (1 - rho)) < 1e-3 * f[key]["expected"], key


def test_experiment_rosenbrock(tmp_path):
    d = experiment("rosenbrock", tmp_path)["final_distance"]
    assert set(d) == {"SGD", "AdaGrad", "RMSProp", "centered RMSProp", "Adam"}
    for name in ("RMSProp", "centered RMSProp", "Adam"):
        assert d[name] < 0.1 and d[name] < d["SGD"] / 10 and d[name] < d["AdaGrad"], d


def test_experiment_linreg(tmp_path):
    f = experiment("linreg", tmp_path)
    assert abs(f["fitted_w"] - f["least_squares_w"]) < 1e-3
    assert abs(f["fitted_b"] - f["least_squares_b"]) < 1e-3
    assert abs(f["fitted_w"] - f["true_w"]) < 0.05 and f["test_mse"] < 0.02


def test_experiment_list_and_unknown():
    p = run("experiment", "--list")
    assert len(p.stdout.splitlines()) == 6 and "ema-memory" in p.stdout
    p = run("experiment", "momentum-magic", check=False)
    assert p.returncode != 0 and "momentum-magic" in p.stderr and "rosenbrock" in p.stderr


def test_tune_grid_is_deterministic_and_plots_a_heat_map(tmp_path):
    args = ["tune", *SMALL, "--epochs", "1", "--grid", "lr=1e-4,1e-2", "--grid", "rho=0.9,0.99",
            "--jobs", "2", "--threads", "1"]
    p = run(*args, "--out", tmp_path / "a")
    assert "4 trials, 2 at a time" in p.stdout
    best = p.stdout.split("best: ")[1].split(" (")[0]
    doc = json.loads((tmp_path / "a" / "tune.json").read_text())
    assert doc["parameters"] == ["lr", "alpha"] and len(doc["trials"]) == 4
    losses = [t["val_loss"] for t in doc["trials"]]
    assert losses == sorted(losses)  # best first
    assert best == f"lr={doc['best']['lr']} alpha={doc['best']['alpha']}"
    assert_png(tmp_path / "a" / "tune.png")
    for k in range(4):  # each trial is a full train run of its own
        assert (tmp_path / "a" / "trials" / f"trial-{k:03d}" / "metrics.json").exists()
    run(*args, "--out", tmp_path / "b", "--no-plots")
    assert (tmp_path / "a" / "tune.csv").read_text() == (tmp_path / "b" / "tune.csv").read_text()


def test_tune_random_search_and_failed_trials(tmp_path):
    args = ["tune", "--model", "linreg", "--epochs", "3", "--random", "4", "--search-seed", "3",
            "--range", "lr=1e-3:1e-1:log", "--range", "momentum=0:0.9", "--no-plots"]
    run(*args, "--out", tmp_path / "a")
    run(*args, "--out", tmp_path / "b")
    a = json.loads((tmp_path / "a" / "tune.json").read_text())
    b = json.loads((tmp_path / "b" / "tune.json").read_text())
    assert a["trials"] == b["trials"] and len(a["trials"]) == 4
    for t in a["trials"]:
        assert 1e-3 <= float(t["lr"]) <= 1e-1 and 0 <= float(t["momentum"]) <= 0.9
    # A learning rate that makes the loss overflow: that trial fails, the search goes on.
    p = run("tune", "--model", "linreg", "--epochs", "2", "--grid", "lr=0.1,1e30",
            "--flavor", "torch", "--out", tmp_path / "c", "--no-plots")
    assert "failed" in p.stdout and "best: lr=0.1" in p.stdout


def test_tune_grid_over_bool_and_enum_options(tmp_path):
    p = run("tune", "--model", "linreg", "--epochs", "1", "--grid", "centered=true,false",
            "--grid", "non_finite=error,skip", "--no-plots", "--out", tmp_path / "a")
    assert "4 trials" in p.stdout
    doc = json.loads((tmp_path / "a" / "tune.json").read_text())
    assert sorted((t["centered"], t["non_finite"]) for t in doc["trials"]) == [
        ("false", "error"), ("false", "skip"), ("true", "error"), ("true", "skip")]


@pytest.mark.parametrize("args, message", [
    (["--grid", "lr"], "expected NAME=..."),
    (["--grid", "learning_rate=1"], "learning_rate"),
    (["--grid", "lr=fast"], "fast"),
    (["--random", "2", "--range", "lr=1:0"], "LO < HI"),
    (["--range", "lr=1e-3:1e-1"], "--random N"),
    (["--random", "2", "--range", "centered=0:1"], "not a number option"),
    (["--grid", "centred=true,false"], "unknown option 'centred'"),
    (["--grid", "centered=maybe"], "maybe"),
    ([], "--grid NAME"),
])
def test_tune_refuses_bad_searches(args, message, tmp_path):
    p = run("tune", "--model", "linreg", *args, "--out", tmp_path / "x", check=False)
    assert p.returncode != 0 and message in p.stderr, p.stderr
