"""Optuna behind `rmsprop tune --search tpe` (apps/cli/optuna_helper.hpp).

One JSON request per line on stdin, one JSON answer per line on stdout; a request that cannot
be served is answered {"error": "..."}. Optuna owns the sampler (TPE), the pruner and the
SQLite study; `rmsprop tune` owns the options, the trial processes and the results.

  inspect {"study"}                 read-only checks of an existing study file; its config
  open    {"study", "create", "config", "space", "seed", "jobs", "pruner"}
  ask     {}                        -> {"trial", "params"}
  report  {"trial", "epoch", "value"} -> {"prune"}
  tell    {"trial", "state": complete|pruned|diverged|failed, "value", "failure"}
  trials  {}                        -> {"trials": [...]} every trial of the study
"""
import json
import math
import os
import sqlite3
import sys
import urllib.parse
import warnings

STUDY_NAME = "rmsprop-tune"
CONFIG_KEY = "rmsprop_tune"  # the study's user attribute that marks it as ours


class Refusal(Exception):
    pass


def inspect(path):
    """The study's configuration, read without writing a byte to the file."""
    # A study whose writer was killed mid-transaction has a hot journal, which only a writer
    # may roll back: then open it read-write (the rollback restores the last commit; nothing
    # of ours is written), else read-only.
    mode = "rw" if os.path.exists(path + "-journal") else "ro"
    try:
        uri = "file:" + urllib.parse.quote(path) + "?mode=" + mode
        with sqlite3.connect(uri, uri=True) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"studies", "study_user_attributes", "trials", "version_info"} <= tables:
                raise Refusal(f"{path}: a SQLite database, but not an Optuna study "
                              f"(tables: {', '.join(sorted(tables)) or 'none'})")
            rows = db.execute(
                "SELECT s.study_name, a.value_json FROM studies s JOIN study_user_attributes a"
                " ON a.study_id = s.study_id WHERE a.key = ?", (CONFIG_KEY,)).fetchall()
    except sqlite3.Error as e:
        raise Refusal(f"{path}: cannot be read as a SQLite database ({e})") from None
    if len(rows) != 1 or rows[0][0] != STUDY_NAME:
        raise Refusal(f"{path}: an Optuna database without an `rmsprop tune` study in it")
    try:
        config = json.loads(rows[0][1])
    except ValueError:
        config = None
    if not isinstance(config, dict) or config.get("version") != 1:
        raise Refusal(f"{path}: its rmsprop tune configuration is not one this version reads")
    return config


class Session:
    def __init__(self):
        self.study = None
        self.space = {}
        self.running = {}  # trial number -> optuna.trial.Trial asked in this session

    def open(self, r):
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        from optuna.distributions import CategoricalDistribution, FloatDistribution
        from optuna.trial import TrialState
        self.space = {d["name"]: CategoricalDistribution(d["choices"]) if "choices" in d
                      else FloatDistribution(d["low"], d["high"], log=d["log"])
                      for d in r["space"]}
        pruners = {"median": optuna.pruners.MedianPruner,
                   "halving": optuna.pruners.SuccessiveHalvingPruner,
                   "none": optuna.pruners.NopPruner}
        try:
            storage = optuna.storages.RDBStorage("sqlite:///" + r["study"])
            existing = 0 if r["create"] else len(
                storage.get_all_trials(storage.get_study_id_from_name(STUDY_NAME), deepcopy=False))
        except Exception as e:  # a schema from another Optuna version, a locked file...
            raise Refusal(f"{r['study']}: Optuna cannot open it ({e})") from None
        # A resumed study's sampler starts from another seed, derived from the trials so far:
        # the same seed would draw the first random startup points again.
        sampler = optuna.samplers.TPESampler(seed=r["seed"] + existing,
                                             constant_liar=r["jobs"] > 1)
        arguments = dict(study_name=STUDY_NAME, storage=storage, sampler=sampler,
                         pruner=pruners[r["pruner"]]())
        if r["create"]:
            self.study = optuna.create_study(direction="minimize", **arguments)
            self.study.set_user_attr(CONFIG_KEY, r["config"])
        else:
            self.study = optuna.load_study(**arguments)
            if self.study.user_attrs.get(CONFIG_KEY) != r["config"]:  # --trials changed
                self.study.set_user_attr(CONFIG_KEY, r["config"])
        # Trials left running by a process that was killed: failed, marked, and asked again
        # first, so that no setting is lost and no finished trial is repeated. A trial killed
        # while its setting was being drawn (never trained) keeps the values drawn so far;
        # the rest are drawn anew.
        interrupted = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            storage.set_trial_user_attr(t._trial_id, "interrupted", True)
            self.study.tell(t.number, state=TrialState.FAIL)
            if t.params:  # empty when killed between creating the trial and its setting
                self.study.enqueue_trial(t.params, user_attrs={"rerun_of": t.number})
                interrupted.append(t.number)
        return {"finished": sum(1 for t in self.study.get_trials(deepcopy=False)
                                if t.state != TrialState.WAITING
                                and not t.user_attrs.get("interrupted")),
                "interrupted": interrupted}

    def ask(self, r):
        trial = self.study.ask(self.space)
        self.running[trial.number] = trial
        return {"trial": trial.number, "params": trial.params}

    def report(self, r):
        trial = self.running[r["trial"]]
        value = r["value"] if r["value"] is not None else math.nan  # JSON has no NaN
        trial.report(value, r["epoch"])
        return {"prune": bool(trial.should_prune())}

    def tell(self, r):
        from optuna.trial import TrialState
        trial = self.running.pop(r["trial"])
        if r["state"] == "complete":
            self.study.tell(trial, r["value"])
        elif r["state"] == "pruned":
            self.study.tell(trial, state=TrialState.PRUNED)
        elif r["state"] == "diverged":
            # Told as pruned, not failed: TPE leaves failed trials out of its model and would
            # keep proposing learning rates in the region that diverges; a pruned trial counts,
            # by its last epoch's loss, among the bad ones.
            trial.set_user_attr("failure", r["failure"])
            trial.set_user_attr("diverged", True)
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            trial.set_user_attr("failure", r.get("failure", ""))
            self.study.tell(trial, state=TrialState.FAIL)
        return {}

    def trials(self, r):
        rows = []
        for t in self.study.get_trials(deepcopy=False):
            if t.state.name == "WAITING":
                continue
            state = {"COMPLETE": "complete", "PRUNED": "pruned", "RUNNING": "running"}.get(
                t.state.name, "interrupted" if t.user_attrs.get("interrupted") else "failed")
            if t.user_attrs.get("diverged"):
                state = "diverged"
            rows.append({"trial": t.number, "state": state, "params": t.params,
                         "value": t.value,
                         "epochs": {str(k): (None if math.isnan(v) else v)
                                    for k, v in sorted(t.intermediate_values.items())},
                         "failure": t.user_attrs.get("failure")})
        return {"trials": rows}


def main():
    session = Session()
    handlers = {"inspect": lambda r: {"config": inspect(r["study"])}, "open": session.open,
                "ask": session.ask, "report": session.report, "tell": session.tell,
                "trials": session.trials}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = handlers[request["op"]](request)
        except Refusal as e:
            answer = {"error": str(e)}
        except ImportError as e:
            answer = {"error": f"--search tpe needs Optuna: install Debian's python3-optuna ({e})"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
