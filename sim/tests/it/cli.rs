//! The command line: exit codes, bad input, the stuck verdict.

use crate::support::{sim, stderr, stdout, temp};

#[test]
fn bad_input_is_a_usage_error_naming_the_problem() {
    let out = sim(&["fuzz", "--seeds", "5..5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
    let out = sim(&["run", "--seed", "1", "--bug", "B99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("B99"));
    let out = sim(&["run", "--seed", "1", "--oracle", "grey-box"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("grey-box"), "{}", stderr(&out));
    let out = sim(&["fuzz", "--frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = sim(&["fuzz", "--shard", "4/4"]);
    assert_eq!(out.status.code(), Some(2));
    let out = sim(&["run", "--seed", "1", "--users", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("users"), "{}", stderr(&out));
    let out = sim(&["run"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_malformed_plan_file_names_the_line_and_field() {
    let path = temp("broken.plan.json");
    std::fs::write(
        &path,
        "{\n  \"version\": 1,\n  \"users\": [{\"name\": \"u1\", \"thread\": \"t1\"}],\n  \"ops\": [\n    {\"at_ms\": 0, \"user\": \"u1\", \"op\": \"conect\"}\n  ]\n}\n",
    )
    .unwrap();
    let out = sim(&["run", "--plan", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("line 5") && err.contains("ops[0]") && err.contains("conect"),
        "{err}"
    );
    let out = sim(&["run", "--plan", "/no/such/plan.json"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_run_that_cannot_drain_in_time_is_stuck_and_says_who_waits() {
    let path = temp("stuck.plan.json");
    std::fs::write(
        &path,
        r#"{
  "version": 1,
  "liveness_bound_ms": 1,
  "users": [{"name": "slowpoke", "thread": "t1"}],
  "ops": [
    {"at_ms": 0, "user": "slowpoke", "op": "connect", "slow": true},
    {"at_ms": 1, "user": "slowpoke", "op": "run", "tools": 3, "thinking": 2, "step_ms": 0}
  ]
}"#,
    )
    .unwrap();
    let out = sim(&["run", "--plan", path.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("STUCK") && text.contains("slowpoke"),
        "{text}"
    );
}

#[test]
fn a_passing_run_prints_seed_config_and_replay_first_and_last() {
    let out = sim(&["run", "--seed", "0x10"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("SEED=0x10\nconfig "), "{text}");
    assert!(text.contains("verdict: PASS"));
    assert!(text
        .trim_end()
        .ends_with("replay: cargo sim run --seed 0x10"));
}

#[test]
fn replay_says_how_a_snapshot_replays_by_its_exit_code() {
    let corpus = wsreg_sim::tooling::snapshot::dir().join("I7-lifecycle-order-a0612c1d.snap");
    let text = std::fs::read_to_string(&corpus).expect("a corpus snapshot");
    assert!(text.contains("\ntarget: B22\n") && text.contains("at step 27 "));
    let replay = |name: &str, body: &str| {
        let path = temp(name);
        std::fs::write(&path, body).unwrap();
        sim(&["replay", path.to_str().unwrap()])
    };
    let same = replay("same.snap", &text);
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
    assert!(stdout(&same).contains("the same way"));
    let fixed = replay(
        "fixed.snap",
        &text.replace("\ntarget: B22\n", "\ntarget: core\n"),
    );
    assert_eq!(fixed.status.code(), Some(5), "{}", stdout(&fixed));
    assert!(stdout(&fixed).contains("NOW PASSES"));
    let moved = replay("moved.snap", &text.replace("at step 27 ", "at step 26 "));
    assert_eq!(moved.status.code(), Some(6), "{}", stdout(&moved));
    let story = replay(
        "story.snap",
        &text.replace("\nstory: ", "\nstory: (edited) "),
    );
    assert_eq!(story.status.code(), Some(6), "a changed story is a change");
    let broken = replay("broken.snap", "verdict: nothing else\n");
    assert_eq!(broken.status.code(), Some(2), "{}", stderr(&broken));
}

/// Reads a whole XML document, failing on any malformation.
fn well_formed(xml: &str) {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("malformed XML at {}: {e}\n{xml}", reader.buffer_position()),
        }
    }
}

#[test]
fn fuzz_writes_a_junit_report_with_one_case_per_failure_kind() {
    let path = temp("b3.junit.xml");
    let out = sim(&[
        "fuzz",
        "--target",
        "B3",
        "--seeds",
        "0..40",
        "--no-shrink",
        "--junit",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let xml = std::fs::read_to_string(&path).unwrap();
    well_formed(&xml);
    assert_eq!(xml.matches("<testcase").count(), 12, "{xml}");
    assert!(
        xml.contains(r#"<failure type="I2 one-manager-per-user""#),
        "{xml}"
    );
    assert!(
        xml.contains(">cargo sim run --seed ") && xml.contains("--target B3</failure>"),
        "{xml}"
    );
    let failing = xml.matches("<failure ").count();
    assert!(failing >= 1, "{xml}");
    assert!(xml.contains(&format!(r#"failures="{failing}""#)), "{xml}");

    let path = temp("core.junit.xml");
    let out = sim(&[
        "fuzz",
        "--seeds",
        "0..20",
        "--junit",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let xml = std::fs::read_to_string(&path).unwrap();
    well_formed(&xml);
    assert_eq!(xml.matches("<testcase").count(), 12);
    assert!(!xml.contains("<failure"), "{xml}");
}

#[test]
fn merge_checks_that_shards_cover_the_range_exactly_once() {
    let shard = |i: &str, name: &str| {
        let path = temp(name);
        let out = sim(&[
            "fuzz",
            "--target",
            "B3",
            "--seeds",
            "0..40",
            "--shard",
            i,
            "--no-shrink",
            "--json",
            path.to_str().unwrap(),
        ]);
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{}",
            stderr(&out)
        );
        path
    };
    let (a, b) = (shard("0/2", "shard-a.json"), shard("1/2", "shard-b.json"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let merged = temp("merged.json");
    let out = sim(&["merge", a, b, "--json", merged.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains("40 seeds run, the range covered exactly once"),
        "{text}"
    );
    assert!(text.contains("I2 one-manager-per-user"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["seeds_run"], 40);

    // The same shard twice: its seeds would count twice.
    let out = sim(&["merge", a, a]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("overlap"), "{}", stderr(&out));
    // One shard alone leaves half the range unrun.
    let out = sim(&["merge", a]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("a shard is missing"),
        "{}",
        stderr(&out)
    );
    // Not a summary at all.
    let out = sim(&["merge", "Cargo.toml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_store_reports_a_failure_as_new_once_then_as_known() {
    let store = temp("store");
    let junit = temp("store.junit.xml");
    let fuzz_over = |seeds: &str| {
        sim(&[
            "fuzz",
            "--target",
            "B3",
            "--seeds",
            seeds,
            "--store",
            store.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ])
    };
    let fuzz = || fuzz_over("0..10");
    let first = fuzz();
    let text = stdout(&first);
    assert_eq!(first.status.code(), Some(1), "{text}");
    assert!(
        text.contains("store: 1 new failure(s): I2 one-manager-per-user"),
        "{text}"
    );
    let mut stored: Vec<String> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    stored.sort();
    assert_eq!(stored.len(), 2, "a snapshot and its page: {stored:?}");
    let snap = stored[1].strip_suffix(".snap").expect("a snapshot");
    assert_eq!(stored[0], format!("{snap}.html"), "the page sits beside it");
    let page = std::fs::read_to_string(store.join(&stored[0])).unwrap();
    assert!(page.contains("VIOLATION I2"), "the page shows the failure");

    let again = fuzz();
    let text = stdout(&again);
    assert_eq!(again.status.code(), Some(0), "{text}");
    assert!(text.contains("store: no new failures (1 known)"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    well_formed(&xml);
    assert!(
        xml.contains("<skipped message=\"known failure, stored as I2-"),
        "{xml}"
    );
    assert!(!xml.contains("<failure"), "{xml}");

    // Other seeds of the same bug shrink to other plans, but break I2 by the same check: the
    // store knows the bug, so a night over new seeds reports nothing new and shrinks nothing.
    let other_seeds = fuzz_over("100..110");
    let text = stdout(&other_seeds);
    assert_eq!(other_seeds.status.code(), Some(0), "{text}");
    assert!(text.contains(&format!("fails like {snap}")), "{text}");
    assert!(text.contains("store: no new failures (1 known)"), "{text}");
    assert_eq!(
        std::fs::read_dir(&store).unwrap().count(),
        2,
        "nothing new stored"
    );
    // Another bug is not this one, though it breaks the same invariant.
    let other_bug = sim(&[
        "fuzz",
        "--target",
        "B1",
        "--seeds",
        "0..10",
        "--store",
        store.to_str().unwrap(),
    ]);
    let text = stdout(&other_bug);
    assert_ne!(other_bug.status.code(), Some(0), "{text}");
    assert!(text.contains("new failure(s)"), "{text}");
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    // `cargo sim run --seed 0x2a --full-trace | head -n 1`: the reader leaves after one line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsreg-sim"))
        .args(["run", "--seed", "0x2a", "--full-trace"])
        .env_remove("RUSTFLAGS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the wsreg-sim binary runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut first)
        .expect("reads the first line");
    // The reader is dropped here, closing the pipe while thousands of trace lines remain.
    let out = child.wait_with_output().expect("the binary ends");
    assert_eq!(first, "SEED=0x2a\n");
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.trim().is_empty(), "nothing on stderr: {err}");
}

#[test]
fn run_plan_applies_the_oracle_and_network_and_refuses_what_shapes_a_generated_plan() {
    // B23's writer drops thinking steps and reports them written: only what the tab read
    // shows it, so the black-box oracle fails the shrunk plan and the white-box one passes it.
    let snap = wsreg_sim::tooling::snapshot::Snapshot::load(
        &wsreg_sim::tooling::snapshot::dir().join("I8-nothing-lost-silently-1ba093ef.snap"),
    )
    .expect("the corpus holds B23's snapshot");
    assert_eq!(snap.target, "B23");
    let path = temp("b23.plan.json");
    snap.plan.save(&path).expect("plan written");
    let plan = path.to_str().unwrap();
    let seed = snap.runtime_seed.to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--plan", plan, "--seed", &seed, "--target", "B23"];
        args.extend_from_slice(extra);
        sim(&args)
    };
    let black = run(&["--oracle", "black-box"]);
    assert_eq!(black.status.code(), Some(1), "{}", stdout(&black));
    let white = run(&["--oracle", "white-box"]);
    assert_eq!(white.status.code(), Some(0), "{}", stdout(&white));
    assert!(
        stdout(&white).contains("--oracle white-box"),
        "the replay line repeats the oracle: {}",
        stdout(&white)
    );
    // --net puts an in-process plan behind the real server, with the latency asked for.
    let record = temp("b23.net.json");
    let net = run(&[
        "--net",
        "--latency-ms",
        "3..3",
        "--json",
        record.to_str().unwrap(),
    ]);
    assert!(net.status.code().is_some(), "{}", stderr(&net));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).expect("record written"))
            .expect("record is JSON");
    assert_eq!(
        v["plan"]["net"]["latency_ms"],
        serde_json::json!([3, 3]),
        "{v}"
    );
    for (args, flag) in [
        (&["--users", "3"][..], "--users"),
        (&["--ops", "9"], "--ops"),
        (&["--no-swarm"], "--no-swarm"),
        (&["--net", "--partitions", "1"], "--partitions"),
        (&["--net", "--restarts", "1"], "--restarts"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains(flag) && err.contains("plan file"),
            "{flag}: {err}"
        );
    }
}

#[test]
fn a_snapshot_shrunk_elsewhere_names_where_it_was_written_in_its_replay_line() {
    let dir = temp("elsewhere");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsreg-sim"))
        .args(["shrink", "--seed", "2", "--target", "B3", "--snapshots"])
        .arg(&dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CI")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let snap = std::fs::read_dir(&dir)
        .expect("written")
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "snap"))
        .expect("a snapshot");
    let text = std::fs::read_to_string(&snap).unwrap();
    let name = snap.file_name().unwrap().to_string_lossy().into_owned();
    let expected = format!("replay: cargo sim replay {}/{name}", dir.display());
    assert!(text.contains(&expected), "{expected}\n{text}");
}
