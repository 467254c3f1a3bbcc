//! Tables of measured numbers: the JSON a measuring command writes, and the markdown the README
//! shows.
//!
//! Every table in the README is printed by a command (`bench`, `disconnect`, `cargo stress`, the
//! core and server benches). Given `--tables DIR`, such a command also writes each table it
//! printed as `DIR/<name>.json`:
//!
//! ```json
//! { "name": "memory", "command": "cargo bench --bench memory",
//!   "columns": [ { "title": "what", "align": "left", "kind": "count" },
//!                { "title": "bytes", "align": "right", "kind": "count" } ],
//!   "rows": [ [ "an idle user", "1457" ] ],
//!   "notes": [ "1000 users a row" ] }
//! ```
//!
//! A column's `kind` says whether its cells are a function of the code and the seed (`count`:
//! steps, detections, bytes, virtual times) or vary from run to run (`measured`: wall-clock times
//! and rates, real-scheduler outcomes). `wsreg-sim tables` renders the README's marked blocks
//! (`<!-- table: NAME [NAME…] -->` … `<!-- /table -->`) from the committed files in
//! `docs/tables/`; `--check` fails when the README differs from them, and `--fresh DIR` also
//! compares a new measurement's `count` cells with the committed ones (`measured` cells are
//! allowed to differ).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One table: a name (its file's stem), the command that prints it, columns, rows and notes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// The file stem under the tables directory, and the name README blocks use.
    pub name: String,
    /// The command that printed it, as a user would type it.
    pub command: String,
    /// The header.
    pub columns: Vec<Column>,
    /// The cells, one `Vec` per row, as many as there are columns.
    pub rows: Vec<Vec<String>>,
    /// Lines printed under the table (ratios, targets).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A column's header, alignment and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// The header text.
    pub title: String,
    /// Left for words, right for numbers.
    pub align: Align,
    /// Whether a fresh measurement must reproduce the cells exactly.
    pub kind: Kind,
}

/// A column's alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    /// Words.
    Left,
    /// Numbers.
    Right,
}

/// Whether a column's cells are reproducible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A function of the code and the seed: a fresh run must print the same.
    Count,
    /// Wall-clock time, a rate, or an outcome of a real scheduler: differs from run to run.
    Measured,
}

impl Column {
    /// A left-aligned, reproducible column (names, labels, verdicts).
    pub fn text(title: &str) -> Self {
        Self::new(title, Align::Left, Kind::Count)
    }

    /// A right-aligned, reproducible column (counts, virtual times).
    pub fn count(title: &str) -> Self {
        Self::new(title, Align::Right, Kind::Count)
    }

    /// A right-aligned column that differs from run to run (wall time, rates).
    pub fn measured(title: &str) -> Self {
        Self::new(title, Align::Right, Kind::Measured)
    }

    /// Any column.
    pub fn new(title: &str, align: Align, kind: Kind) -> Self {
        Self {
            title: title.to_owned(),
            align,
            kind,
        }
    }
}

/// What can go wrong reading tables or checking the README against them.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A table file is not a table.
    #[error("{path}: not a table: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What serde said, with line and column.
        message: String,
    },
    /// The README differs from what the tables render, or a fresh table from a committed one.
    #[error("{0}")]
    Drift(String),
}

impl Table {
    /// A table with no rows yet.
    pub fn new(name: &str, command: &str, columns: Vec<Column>) -> Self {
        Self {
            name: name.to_owned(),
            command: command.to_owned(),
            columns,
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Appends a row; it must have one cell per column.
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "{}: row width", self.name);
        self.rows.push(cells);
    }

    /// The header, alignment line and rows in markdown, then the notes after a blank line.
    pub fn markdown(&self) -> String {
        let mut out = self.grid();
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                let _ = writeln!(out, "{n}");
            }
        }
        out
    }

    fn grid(&self) -> String {
        let mut out = String::new();
        let titles: Vec<&str> = self.columns.iter().map(|c| c.title.as_str()).collect();
        let _ = writeln!(out, "| {} |", titles.join(" | "));
        let aligns: Vec<&str> = self
            .columns
            .iter()
            .map(|c| match c.align {
                Align::Left => "---",
                Align::Right => "---:",
            })
            .collect();
        let _ = writeln!(out, "|{}|", aligns.join("|"));
        for r in &self.rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
        out
    }

    /// Writes the table as `dir/<name>.json`.
    pub fn write_to(&self, dir: &Path) -> Result<(), TableError> {
        let path = dir.join(format!("{}.json", self.name));
        let io = |error| TableError::Io {
            path: path.clone(),
            error,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let text = serde_json::to_string_pretty(self).expect("a table serialises");
        std::fs::write(&path, text + "\n").map_err(io)
    }

    /// Reads `dir/<name>.json`.
    pub fn read(dir: &Path, name: &str) -> Result<Self, TableError> {
        let path = dir.join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path).map_err(|error| TableError::Io {
            path: path.clone(),
            error,
        })?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        let t: Table = serde_path_to_error::deserialize(de).map_err(|e| TableError::Malformed {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if t.rows.iter().any(|r| r.len() != t.columns.len()) {
            return Err(TableError::Malformed {
                path,
                message: "a row's width differs from the header's".to_owned(),
            });
        }
        Ok(t)
    }

    /// The differences between a fresh measurement and this (committed) table in the cells that
    /// must reproduce; empty when they agree.
    pub fn count_drift(&self, fresh: &Table) -> Vec<String> {
        let mut out = Vec::new();
        if fresh.columns != self.columns {
            out.push(format!("{}: the columns differ", self.name));
            return out;
        }
        if fresh.rows.len() != self.rows.len() {
            out.push(format!(
                "{}: {} rows, committed {}",
                self.name,
                fresh.rows.len(),
                self.rows.len()
            ));
            return out;
        }
        for (i, (a, b)) in self.rows.iter().zip(&fresh.rows).enumerate() {
            for (c, col) in self.columns.iter().enumerate() {
                if col.kind == Kind::Count && a[c] != b[c] {
                    out.push(format!(
                        "{}: row {} ({}), column {:?}: committed {:?}, measured {:?}",
                        self.name,
                        i + 1,
                        a[0],
                        col.title,
                        a[c],
                        b[c]
                    ));
                }
            }
        }
        out
    }
}

const OPEN: &str = "<!-- table: ";
const CLOSE: &str = "<!-- /table -->";

/// The body of a README block showing these tables: each table's grid (tables of one shape
/// merged into one grid), their notes, and the commands that print them.
pub fn block(tables: &[Table]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < tables.len() {
        let mut merged = tables[i].clone();
        let mut j = i + 1;
        while j < tables.len() && tables[j].columns == merged.columns {
            merged.rows.extend(tables[j].rows.iter().cloned());
            merged.notes.extend(tables[j].notes.iter().cloned());
            j += 1;
        }
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&merged.markdown());
        i = j;
    }
    let mut commands: Vec<&str> = Vec::new();
    for t in tables {
        if !commands.contains(&t.command.as_str()) {
            commands.push(&t.command);
        }
    }
    let named: Vec<String> = commands.iter().map(|c| format!("`{c}`")).collect();
    let _ = writeln!(out, "\n<sub>Printed by {}.</sub>", named.join(" and "));
    out
}

/// The README with every marked block re-rendered from the tables in `dir`, and the names of the
/// tables it used.
pub fn render_readme(readme: &str, dir: &Path) -> Result<(String, Vec<String>), TableError> {
    let mut out = String::with_capacity(readme.len());
    let mut used = Vec::new();
    let mut rest = readme;
    while let Some(start) = rest.find(OPEN) {
        let header_end = start
            + rest[start..]
                .find("-->")
                .ok_or_else(|| TableError::Drift("an unclosed `<!-- table:` marker".to_owned()))?
            + 3;
        let names: Vec<String> = rest[start + OPEN.len()..header_end - 3]
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let close = rest[header_end..]
            .find(CLOSE)
            .ok_or_else(|| TableError::Drift(format!("the block {names:?} has no `{CLOSE}`")))?
            + header_end;
        let tables = names
            .iter()
            .map(|n| Table::read(dir, n))
            .collect::<Result<Vec<_>, _>>()?;
        out.push_str(&rest[..header_end]);
        out.push('\n');
        out.push_str(&block(&tables));
        out.push_str(CLOSE);
        used.extend(names);
        rest = &rest[close + CLOSE.len()..];
    }
    out.push_str(rest);
    Ok((out, used))
}

/// Fails, naming the first differing line, when the README is not what the tables render.
pub fn check_readme(readme: &str, dir: &Path) -> Result<Vec<String>, TableError> {
    let (rendered, used) = render_readme(readme, dir)?;
    if rendered == readme {
        return Ok(used);
    }
    let line = readme
        .lines()
        .zip(rendered.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| readme.lines().count().min(rendered.lines().count()));
    Err(TableError::Drift(format!(
        "the README differs from the tables in {} at line {}:\n  README: {}\n  tables: {}\n\
         run `cargo sim tables` to re-render it",
        dir.display(),
        line + 1,
        readme.lines().nth(line).unwrap_or("(end)"),
        rendered.lines().nth(line).unwrap_or("(end)")
    )))
}

/// The pages that show tables under `root`: its README.md and every docs/*.md, in order.
pub fn pages(root: &Path) -> Result<Vec<PathBuf>, TableError> {
    let docs = root.join("docs");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&docs)
        .map_err(|error| TableError::Io {
            path: docs.clone(),
            error,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages.insert(0, root.join("README.md"));
    Ok(pages)
}

/// `tables`: renders the marked blocks of `pages` from the committed tables in `dir` (or, with
/// `check`, only compares them), and compares a fresh measurement's count cells with the
/// committed ones when `fresh` names its directory. Prints what it compared; returns every
/// difference found (none: the pages and the fresh counts agree).
pub fn render_or_check(
    pages: &[PathBuf],
    dir: &Path,
    check: bool,
    fresh: Option<&Path>,
) -> Result<Vec<String>, TableError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error| TableError::Io { path, error }
    };
    let mut drift = Vec::new();
    if let Some(fresh) = fresh {
        let mut names: Vec<String> = std::fs::read_dir(fresh)
            .map_err(io(fresh))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
            .collect();
        names.sort();
        if names.is_empty() {
            return Err(TableError::Drift(format!(
                "{} holds no tables",
                fresh.display()
            )));
        }
        for name in &names {
            let committed = Table::read(dir, name)?;
            drift.extend(committed.count_drift(&Table::read(fresh, name)?));
            println!("tables: {name}: compared with {}", dir.display());
        }
    }
    let mut shown = 0;
    for page in pages {
        let text = std::fs::read_to_string(page).map_err(io(page))?;
        if check {
            match check_readme(&text, dir) {
                Ok(used) => shown += used.len(),
                Err(e) => drift.push(format!("{}: {e}", page.display())),
            }
        } else {
            let (rendered, used) = render_readme(&text, dir)?;
            if rendered != text {
                std::fs::write(page, rendered).map_err(io(page))?;
            }
            shown += used.len();
        }
    }
    println!(
        "tables: {} {shown} tables in {} page(s)",
        if check { "checked" } else { "rendered" },
        pages.len()
    );
    for d in &drift {
        println!("drift: {d}");
    }
    Ok(drift)
}

/// How this process was invoked, as a user would type it (`cargo sim …`), without the flags that
/// only say where to write (`--tables`, `--json`).
pub fn invocation(prefix: &str) -> String {
    let mut words = vec![prefix.to_owned()];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--tables" || a == "--json" {
            args.next();
        } else if !(a.starts_with("--tables=") || a.starts_with("--json=")) {
            words.push(a);
        }
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, wall: &str) -> Table {
        let mut t = Table::new(
            name,
            "cargo sim x",
            vec![
                Column::text("run"),
                Column::count("steps"),
                Column::measured("wall s"),
            ],
        );
        t.row(vec!["a".into(), "10".into(), wall.into()]);
        t.notes.push("ratio 0.5".into());
        t
    }

    #[test]
    fn markdown_aligns_and_notes() {
        let md = sample("t", "1.0").markdown();
        assert_eq!(
            md,
            "| run | steps | wall s |\n|---|---:|---:|\n| a | 10 | 1.0 |\n\nratio 0.5\n"
        );
    }

    #[test]
    fn wall_clock_cells_may_drift_counts_may_not() {
        let committed = sample("t", "1.0");
        assert!(committed.count_drift(&sample("t", "9.9")).is_empty());
        let mut fresh = sample("t", "1.0");
        fresh.rows[0][1] = "11".into();
        let drift = committed.count_drift(&fresh);
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert!(drift[0].contains("\"steps\""), "{drift:?}");
    }

    #[test]
    fn readme_blocks_render_and_check() {
        let dir = std::env::temp_dir().join(format!("wsreg-tables-{}", std::process::id()));
        sample("one", "1.0").write_to(&dir).unwrap();
        sample("two", "2.0").write_to(&dir).unwrap();
        let readme = "intro\n<!-- table: one two -->\nstale\n<!-- /table -->\nend\n";
        let (rendered, used) = render_readme(readme, &dir).unwrap();
        assert_eq!(used, ["one", "two"]);
        assert!(
            rendered.contains("| a | 10 | 1.0 |\n| a | 10 | 2.0 |\n"),
            "{rendered}"
        );
        assert!(rendered.contains("Printed by `cargo sim x`"), "{rendered}");
        assert!(rendered.ends_with("<!-- /table -->\nend\n"), "{rendered}");
        assert!(check_readme(&rendered, &dir).is_ok());
        let err = check_readme(readme, &dir).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        let missing = check_readme("<!-- table: nope -->\n<!-- /table -->", &dir);
        assert!(matches!(missing, Err(TableError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
