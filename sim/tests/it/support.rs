//! Running the real binary, and small helpers.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the simulator binary (the madsim build of this test run) with `args`.
pub fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wsreg-sim"))
        .args(args)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("the wsreg-sim binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A campaign of seeds `0..seeds` against `target` on two jobs, everything else as `config`.
pub fn campaign_of(
    target: wsreg_sim::tooling::target::Target,
    config: wsreg_sim::generate::config::SimConfig,
    seeds: u64,
) -> wsreg_sim::tooling::campaign::CampaignSummary {
    use wsreg_sim::tooling::campaign::{run_campaign, CampaignOptions};
    let opts = CampaignOptions {
        jobs: 2,
        target,
        config,
        ..CampaignOptions::new(wsreg_sim::generate::seed::SeedRange {
            start: 0,
            end: seeds,
        })
    };
    run_campaign(&opts, &|_, _, _| {}).expect("runs")
}

/// A fresh path in the temp dir for this test.
pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsreg-sim-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// The trace hash a `run --json` report recorded.
pub fn hash_of(json_path: &PathBuf) -> u64 {
    let text = std::fs::read_to_string(json_path).expect("report written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("report is JSON");
    v["hash"].as_u64().expect("hash field")
}
