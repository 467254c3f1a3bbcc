//! The folder listing tells the truth: the simulator's source is one folder per stage, and
//! stages import one way. A module may use its own stage and the stages before it, never a
//! later one; every path goes through a stage (one public path per item, no aliases at the
//! crate root); and the modules' import graph has no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The stages, in the order data flows through them.
const STAGES: [&str; 7] = [
    "generate", "check", "run", "zoo", "tooling", "measure", "cli",
];

fn rank(stage: &str) -> Option<usize> {
    STAGES.iter().position(|s| *s == stage)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file belongs to: its stage and the module under it (`check::invariant`).
fn module_of(src: &Path, file: &Path) -> Option<(String, String)> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts = rel.iter().map(|p| p.to_string_lossy().into_owned());
    let stage = parts.next()?;
    let stage = stage.strip_suffix(".rs").unwrap_or(&stage).to_owned();
    rank(&stage)?;
    let module = parts
        .next()
        .map(|m| m.strip_suffix(".rs").unwrap_or(&m).to_owned())
        .unwrap_or_else(|| "mod".to_owned());
    Some((stage, module))
}

/// Every `crate::a::b` path in the file's code (comments left out), as (a, b).
fn crate_paths(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let word = |s: &str| -> String {
                s.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()
            };
            let first = word(after);
            let second = after
                .strip_prefix(first.as_str())
                .and_then(|s| s.strip_prefix("::"))
                .map(word)
                .unwrap_or_default();
            out.push((first, second));
            rest = &after[1..];
        }
    }
    out
}

#[test]
fn stages_import_one_way_through_one_path_and_modules_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut against = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut checked = 0;
    for file in &files {
        let Some((stage, module)) = module_of(&src, file) else {
            continue;
        };
        checked += 1;
        let from = format!("{stage}::{module}");
        let text = std::fs::read_to_string(file).expect("readable");
        for (first, second) in crate_paths(&text) {
            let shown = file.strip_prefix(&src).unwrap().display().to_string();
            match rank(&first) {
                None => against.push(format!("{shown}: crate::{first} is not a stage")),
                Some(r) if r > rank(&stage).unwrap() => against.push(format!(
                    "{shown} ({stage}) uses crate::{first}, a later stage"
                )),
                Some(_) => {
                    let to = format!("{first}::{second}");
                    if to != from && !second.is_empty() {
                        graph.entry(from.clone()).or_default().insert(to);
                    }
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} files read: has the source moved?"
    );
    assert!(
        against.is_empty(),
        "imports against the flow:\n{}",
        against.join("\n")
    );
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(
        !lib.lines().any(|l| l.trim_start().starts_with("pub use")),
        "lib.rs re-exports: every item has one public path, through its stage"
    );
    // No cycle among modules: a depth-first search that meets a module on its own stack.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == m) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(m.to_owned());
            return Some(cycle);
        }
        if !done.insert(m.to_owned()) {
            return None;
        }
        stack.push(m.to_owned());
        for next in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            panic!("a cycle among modules: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_checker_of_the_flow_sees_an_import_against_it() {
    let paths = crate_paths("use crate::tooling::campaign::derive; // crate::measure::x\n");
    assert_eq!(paths, [("tooling".to_owned(), "campaign".to_owned())]);
    assert!(rank("tooling") > rank("generate"));
}
