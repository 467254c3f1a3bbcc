//! A benchmark's table: printed as markdown, and with `-- --tables DIR` also written as
//! `DIR/<name>.json` in the shape `wsreg-sim tables` renders into the README (documented in
//! `sim/src/measure/table.rs`). Shared by the core and server benches through `#[path]`.

/// A column: its title, whether it holds numbers (right-aligned), and whether its cells differ
/// from run to run (wall-clock times and rates) rather than being a function of the code.
pub struct Col {
    pub title: &'static str,
    pub number: bool,
    pub measured: bool,
}

/// Prints the table, and writes it as JSON when the arguments name `--tables DIR`.
pub fn emit(name: &str, command: &str, columns: &[Col], rows: &[Vec<String>], notes: &[String]) {
    let titles: Vec<&str> = columns.iter().map(|c| c.title).collect();
    println!("| {} |", titles.join(" | "));
    let aligns: Vec<&str> = columns
        .iter()
        .map(|c| if c.number { "---:" } else { "---" })
        .collect();
    println!("|{}|", aligns.join("|"));
    for r in rows {
        println!("| {} |", r.join(" | "));
    }
    if !notes.is_empty() {
        println!();
        for n in notes {
            println!("{n}");
        }
    }
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args
        .iter()
        .position(|a| a == "--tables")
        .and_then(|i| args.get(i + 1))
    else {
        return;
    };
    let columns: Vec<serde_json::Value> = columns
        .iter()
        .map(|c| {
            serde_json::json!({
                "title": c.title,
                "align": if c.number { "right" } else { "left" },
                "kind": if c.measured { "measured" } else { "count" },
            })
        })
        .collect();
    let table = serde_json::json!({
        "name": name, "command": command, "columns": columns, "rows": rows, "notes": notes,
    });
    let path = std::path::Path::new(dir).join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(&table).expect("a table serialises") + "\n";
    if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text)) {
        eprintln!("error: writing {}: {e}", path.display());
        std::process::exit(2);
    }
}
