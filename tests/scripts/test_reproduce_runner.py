"""Running cells: finished stages are skipped, cut runs resume, failures are isolated, cells run in
parallel, each with its share of the threads."""
import os
import sys

from scripts.repro import commands


def _writer(path, count_file, fail=False):
    """A stage that appends a line to count_file (to count runs) and writes `path` (or fails)."""
    code = (f"import sys; open({count_file!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n'); "
            + ("sys.exit(3)" if fail else f"open({path!r}, 'w').write('ok')"))
    return (sys.executable, "-c", code)


def _chain(tmp_path, tag, fail_at=None):
    count = str(tmp_path / f"{tag}.runs")
    stages = []
    for i, name in enumerate(["train", "test_latest", "score_latest"]):
        done = str(tmp_path / f"{tag}.{name}.done")
        stages.append(commands.Stage(name, _writer(done, count, fail=(name == fail_at)), done))
    return stages, count


def _runs(count_file):
    return open(count_file).read().count("\n") if os.path.exists(count_file) else 0


def test_second_run_skips_finished_cells(tmp_path):
    stages, count = _chain(tmp_path, "a")
    env = commands.subprocess_env(1)
    assert commands.run_chain("a", stages, str(tmp_path / "logs"), env).status == "done"
    assert _runs(count) == 3
    again = commands.run_chain("a", stages, str(tmp_path / "logs"), env)
    assert again.status == "skipped" and _runs(count) == 3


def test_rerun_continues_from_the_first_unfinished_stage(tmp_path):
    stages, count = _chain(tmp_path, "b")
    open(stages[0].done_path, "w").close()          # training finished in an earlier run
    assert commands.pending(stages) == stages[1:]
    assert commands.run_chain("b", stages, str(tmp_path / "logs"), commands.subprocess_env(1)).status == "done"
    assert _runs(count) == 2


def test_resume_flag_only_when_a_previous_attempt_left_state(tmp_path):
    state = tmp_path / "latest_net_G.pth"
    stage = commands.Stage("train", ("python", "train.py"), str(tmp_path / "200_net_G.pth"),
                           resume_flag="--continue_train", resume_path=str(state))
    assert commands.stage_argv(stage) == ["python", "train.py"]
    state.write_bytes(b"x")
    assert commands.stage_argv(stage) == ["python", "train.py", "--continue_train"]


def test_only_a_chain_run_from_its_start_times_the_whole_cell(tmp_path):
    env, logs = commands.subprocess_env(1), str(tmp_path / "logs")
    fresh, _ = _chain(tmp_path, "fresh")
    assert commands.run_chain("fresh", fresh, logs, env).whole
    # a finished stage from an earlier run: this call timed only the rest
    later, _ = _chain(tmp_path, "later")
    open(later[0].done_path, "w").close()
    assert not commands.run_chain("later", later, logs, env).whole
    # training continued from an earlier attempt's checkpoint
    cut, _ = _chain(tmp_path, "cut")
    state = tmp_path / "latest_net_G.pth"
    state.write_bytes(b"x")
    cut[0] = commands.Stage("train", cut[0].argv, cut[0].done_path, resume_flag="--continue_train",
                            resume_path=str(state))
    outcome = commands.run_chain("cut", cut, logs, env)
    assert outcome.status == "done" and not outcome.whole


def test_a_failing_cell_is_reported_and_does_not_stop_the_others(tmp_path):
    bad, bad_count = _chain(tmp_path, "bad", fail_at="test_latest")
    good, good_count = _chain(tmp_path, "good")
    seen = []
    outcomes = commands.run_cells([("bad", bad, str(tmp_path / "bad_logs")),
                                 ("good", good, str(tmp_path / "good_logs"))],
                                commands.LocalExecutor(jobs=2, threads=1), progress=seen.append)
    assert [o.name for o in outcomes] == ["bad", "good"]
    assert outcomes[0].status == "failed" and "test_latest exited with 3" in outcomes[0].message
    assert os.path.exists(tmp_path / "bad_logs" / "test_latest.log")
    assert outcomes[0].log_tail.startswith("$ ")                    # the log's last lines come with it
    assert _runs(bad_count) == 2                     # score never ran after the failure
    assert outcomes[1].status == "done" and _runs(good_count) == 3
    assert sorted(o.name for o in seen) == ["bad", "good"]


def test_an_empty_chain_has_nothing_to_do(tmp_path):
    assert commands.run_chain("prepare", [], str(tmp_path), commands.subprocess_env(1)).status == "skipped"


def test_a_stage_that_exits_0_without_its_output_is_a_failure(tmp_path):
    stage = commands.Stage("train", (sys.executable, "-c", "pass"), str(tmp_path / "never"))
    out = commands.run_chain("x", [stage], str(tmp_path), commands.subprocess_env(1))
    assert out.status == "failed" and "did not write" in out.message


def test_cells_run_in_parallel(tmp_path):
    # each cell waits until both have started: only possible when they run at the same time
    code = ("import os, sys, time; open(sys.argv[1], 'w').close(); t = time.time()\n"
            "while not all(os.path.exists(p) for p in sys.argv[2:4]):\n"
            "    time.sleep(0.02)\n"
            "    assert time.time() - t < 20, 'the other cell never started'\n"
            "open(sys.argv[4], 'w').close()")
    started = [str(tmp_path / f"started{i}") for i in (0, 1)]
    chains = [(f"c{i}", [commands.Stage("train", (sys.executable, "-c", code, started[i], *started,
                                                  str(tmp_path / f"done{i}")), str(tmp_path / f"done{i}"))],
               str(tmp_path / f"logs{i}")) for i in (0, 1)]
    outcomes = commands.run_cells(chains, commands.LocalExecutor(jobs=2, threads=1))
    assert [o.status for o in outcomes] == ["done", "done"]
    assert commands.subprocess_env(3)["OMP_NUM_THREADS"] == "3"


def test_a_cell_another_runner_holds_is_not_run_twice(tmp_path):
    stages, count = _chain(tmp_path, "held")
    logs = str(tmp_path / "logs")
    with commands.claim(logs) as holder:             # another submitter's job runs the cell
        assert holder is None
        out = commands.run_chain("held", stages, logs, commands.subprocess_env(1))
    assert out.status == "busy" and str(os.getpid()) in out.message and _runs(count) == 0
    assert commands.run_chain("held", stages, logs, commands.subprocess_env(1)).status == "done"
