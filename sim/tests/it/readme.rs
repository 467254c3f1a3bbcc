//! The README and the reference in docs/ say what the code does: the invariants and the zoo
//! are defined in tables that must match the `Invariant` and `Bug` enums, and every measured
//! table is the one its command printed.

use wsreg_sim::check::invariant::Invariant;
use wsreg_sim::zoo::Bug;

/// The reference page that defines the invariants and the zoo.
fn definitions() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/invariants.md");
    std::fs::read_to_string(path).expect("docs/invariants.md")
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

/// Every table of the README and docs/ is rendered from the JSON a command wrote
/// (`docs/tables/`); a table edited by hand, or JSON re-measured without re-rendering, fails
/// here. Every committed table is shown on exactly one page, which names its command.
#[test]
fn every_page_shows_the_tables_the_commands_printed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("docs/tables");
    let mut shown = Vec::new();
    for page in wsreg_sim::measure::table::pages(&root).expect("pages") {
        let text = std::fs::read_to_string(&page).expect("readable page");
        let used = wsreg_sim::measure::table::check_readme(&text, &dir)
            .unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        for t in &used {
            let table = wsreg_sim::measure::table::Table::read(&dir, t).expect("read");
            assert!(
                text.contains(&format!("`{}`", table.command)),
                "{t}: {} names its command `{}`",
                page.display(),
                table.command
            );
        }
        shown.extend(used);
    }
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("docs/tables")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
        .collect();
    files.sort();
    shown.sort();
    assert_eq!(
        shown, files,
        "every committed table is shown once, and only those"
    );
}

/// The README is the front door: short, every command it shows real, no measured number typed
/// into its prose (a number that is measured lives in a table, printed by its command).
#[test]
fn the_readme_is_a_front_door() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 300,
        "the README has {lines} lines; the reference belongs in docs/"
    );
    for link in readme.split("](").skip(1) {
        let target = link.split(')').next().unwrap_or_default();
        let file = target.split('#').next().unwrap_or_default();
        if file.is_empty() || file.starts_with("http") {
            continue;
        }
        assert!(
            root.join(file).exists(),
            "the README links to {target}, which is missing"
        );
    }
    // Measured numbers come with units or ratios: none may stand in the README's prose.
    let measured = regex_free_units(&readme);
    assert!(
        measured.is_empty(),
        "numbers typed into the README's prose: {measured:?}"
    );
}

/// Words like `20 s`, `0.99×`, `12 KiB`, `50,000 events a second` outside code: what a
/// measurement looks like.
fn regex_free_units(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_code_block = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code_block = !in_code_block;
            continue;
        }
        if in_code_block {
            continue;
        }
        // Inline code is a command or a name, not prose.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let words: Vec<&str> = prose.split_whitespace().collect();
        for pair in words.windows(2) {
            let number = pair[0].trim_start_matches(['(', '~']);
            let is_number = !number.is_empty()
                && number.chars().next().is_some_and(|c| c.is_ascii_digit())
                && number
                    .chars()
                    .all(|c| c.is_ascii_digit() || ",.x×%".contains(c));
            let unit = pair[1].trim_end_matches([',', '.', ')', ';', ':']);
            let units = [
                "s", "ms", "µs", "seconds", "minutes", "KiB", "KB", "MB", "MiB", "GB", "seeds/s",
                "steps/s",
            ];
            if is_number
                && (units.contains(&unit) || number.ends_with('×') || number.ends_with('x'))
            {
                found.push(format!("{} {}", pair[0], pair[1]));
            }
        }
    }
    found
}
