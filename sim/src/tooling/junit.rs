//! A campaign as a JUnit report, the format CI systems show as test results: one test case per
//! way a seed can fail (each invariant, a panic, nondeterminism), so the same names appear in
//! every run. A kind the campaign saw fails, with its first seed's one-line message and, as the
//! failure's text, the one-line command that reproduces it; one whose shrunk snapshot was
//! already in the `--store` is skipped as known.

use quick_xml::events::BytesText;
use quick_xml::Writer;

use crate::check::outcome::FailureKind;
use crate::tooling::campaign::CampaignSummary;

/// The failure kinds every report lists, by label ([`FailureKind`]).
pub fn kinds() -> Vec<String> {
    FailureKind::all().map(|k| k.to_string()).collect()
}

/// The report of `summary`; `repro(kind)` is the command that reproduces a failure of `kind`
/// (given its first seed).
pub fn report(
    summary: &CampaignSummary,
    repro: &dyn Fn(&str, crate::generate::seed::Seed) -> String,
) -> String {
    let kinds = kinds();
    let failing = kinds
        .iter()
        .filter(|k| summary.failures.get(*k).is_some_and(|g| !g.known))
        .count();
    let suite = format!(
        "wsreg-sim fuzz {} {} shard {}",
        summary.target, summary.range, summary.shard
    );
    let (tests, failures) = (kinds.len().to_string(), failing.to_string());
    let time = format!("{:.3}", summary.wall_s);
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let written = w
        .create_element("testsuites")
        .with_attributes([
            ("name", "wsreg-sim"),
            ("tests", &tests),
            ("failures", &failures),
            ("time", &time),
        ])
        .write_inner_content(|w| {
            w.create_element("testsuite")
                .with_attributes([
                    ("name", suite.as_str()),
                    ("tests", &tests),
                    ("failures", &failures),
                    ("time", &time),
                ])
                .write_inner_content(|w| {
                    for kind in &kinds {
                        let case = w.create_element("testcase").with_attributes([
                            (
                                "classname",
                                format!("wsreg-sim.{}", summary.target).as_str(),
                            ),
                            ("name", kind),
                        ]);
                        match summary.failures.get(kind) {
                            None => {
                                case.write_empty()?;
                            }
                            Some(g) if g.known => {
                                let message = format!(
                                    "known failure, stored as {}: {} seed(s), first {}",
                                    g.snapshot.as_deref().unwrap_or("?"),
                                    g.count,
                                    g.first_seed
                                );
                                case.write_inner_content(|w| {
                                    w.create_element("skipped")
                                        .with_attribute(("message", message.as_str()))
                                        .write_empty()?;
                                    Ok(())
                                })?;
                            }
                            Some(g) => {
                                let message = format!(
                                    "{} seed(s), first {}: {}",
                                    g.count, g.first_seed, g.message
                                );
                                let line = repro(kind, g.first_seed);
                                case.write_inner_content(|w| {
                                    w.create_element("failure")
                                        .with_attributes([
                                            ("type", kind.as_str()),
                                            ("message", &message),
                                        ])
                                        .write_text_content(BytesText::new(&line))?;
                                    Ok(())
                                })?;
                            }
                        }
                    }
                    Ok(())
                })?;
            Ok(())
        });
    // Writing into memory cannot fail.
    debug_assert!(written.is_ok());
    let body = String::from_utf8(w.into_inner()).unwrap_or_default();
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}\n")
}
