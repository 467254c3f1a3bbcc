//! The README is the front door: it defines every invariant and every zoo bug it names, in
//! tables that must match the `Invariant` and `Bug` enums.

use wsreg_sim::check::invariant::Invariant;
use wsreg_sim::zoo::Bug;

/// The README's section that defines the invariants and the zoo.
fn definitions() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let text = std::fs::read_to_string(path).expect("README.md at the workspace root");
    let section = text
        .split("## What is checked: the invariants")
        .nth(1)
        .expect("the invariants section");
    section.split("\n## ").next().unwrap_or_default().to_owned()
}

/// The first two cells of every table row whose first cell starts with `prefix` and a digit.
fn rows(text: &str, prefix: char) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut cells = l.strip_prefix('|')?.split('|').map(str::trim);
            let (id, second) = (cells.next()?, cells.next()?);
            let rest = id.strip_prefix(prefix)?;
            (!rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
                .then(|| (id.to_owned(), second.to_owned()))
        })
        .collect()
}

#[test]
fn the_readme_defines_exactly_the_invariants_the_checker_has() {
    let defined = rows(&definitions(), 'I');
    let expected: Vec<(String, String)> = Invariant::ALL
        .iter()
        .map(|i| (format!("{i:?}"), i.name().replace('-', " ")))
        .collect();
    let defined_ids: Vec<_> = defined.iter().map(|(id, _)| id.clone()).collect();
    let expected_ids: Vec<_> = expected.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        defined_ids, expected_ids,
        "README invariants table vs the Invariant enum"
    );
    for ((id, name), (_, want)) in defined.iter().zip(&expected) {
        assert_eq!(
            name.replace('-', " "),
            *want,
            "{id}: the README's name differs from the enum's"
        );
    }
}

#[test]
fn the_readme_defines_exactly_the_zoo_bugs() {
    let defined: Vec<String> = rows(&definitions(), 'B')
        .into_iter()
        .map(|(id, text)| {
            assert!(text.len() > 20, "{id} needs a definition, not {text:?}");
            id
        })
        .collect();
    let expected: Vec<String> = Bug::ALL.iter().map(|b| b.to_string()).collect();
    assert_eq!(defined, expected, "README zoo table vs the Bug enum");
}

/// Every table in the README is rendered from the JSON a command wrote (`docs/tables/`); a table
/// edited by hand, or JSON re-measured without re-rendering, fails here.
#[test]
fn the_readme_tables_are_the_ones_the_commands_printed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let dir = root.join("docs/tables");
    let used =
        wsreg_sim::measure::table::check_readme(&readme, &dir).unwrap_or_else(|e| panic!("{e}"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("docs/tables")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
        .collect();
    files.sort();
    let mut shown = used.clone();
    shown.sort();
    assert_eq!(
        shown, files,
        "every committed table is shown once, and only those"
    );
    for t in used {
        let table = wsreg_sim::measure::table::Table::read(&dir, &t).expect("read");
        let printed_by = readme.contains(&format!("`{}`", table.command));
        assert!(
            printed_by,
            "{t}: the README names its command `{}`",
            table.command
        );
    }
}
