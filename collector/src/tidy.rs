//! The collector's layering, checked on its own source (docs/ARCHITECTURE.md, "Layers"):
//! wire types (prost, tonic, the generated contract) only in the edges, SQL only in `store/`,
//! no edge reaching into another edge, and no import cycle between top-level modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules that may use the wire contract: the gRPC edge, the CLI (a gRPC client),
/// the report edge that turns wire messages into facts, and the server that wires it up.
const WIRE_EDGES: &[&str] = &["grpc", "cli", "report", "server"];
const WIRE_WORDS: &[&str] = &["firstline_proto", "prost::", "tonic::"];

fn sources() -> Vec<(String, PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&root).expect("under src").to_owned();
                let top = rel
                    .components()
                    .next()
                    .and_then(|c| c.as_os_str().to_str())
                    .unwrap_or_default()
                    .trim_end_matches(".rs")
                    .to_owned();
                let text = std::fs::read_to_string(&path).expect("read file");
                out.push((top, rel, text));
            }
        }
    }
    out
}

/// The code of a file without its `#[cfg(test)]` tail and comments (tests may use anything).
fn code(text: &str) -> String {
    let body = text.split("#[cfg(test)]").next().unwrap_or_default();
    body.lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with("//")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn wire_types_stay_in_the_edges_and_sql_in_the_store() {
    let mut problems = Vec::new();
    for (top, rel, text) in sources() {
        if top == "tidy" || top == "main" || rel.ends_with("tests.rs") {
            continue;
        }
        let code = code(&text);
        if !WIRE_EDGES.contains(&top.as_str()) {
            for word in WIRE_WORDS {
                if code.contains(word) {
                    problems.push(format!("{}: uses {word} below the edges", rel.display()));
                }
            }
        }
        if top != "store" && code.contains("sqlx") {
            problems.push(format!("{}: SQL outside store/", rel.display()));
        }
        if top == "web" {
            for edge in ["crate::grpc", "crate::cli"] {
                if code.contains(edge) {
                    problems.push(format!(
                        "{}: the web edge reaches into {edge}",
                        rel.display()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_import_cycles_between_modules() {
    let files = sources();
    let modules: BTreeSet<String> = files.iter().map(|(t, _, _)| t.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (top, rel, text) in &files {
        if rel.ends_with("tests.rs") {
            continue;
        }
        for other in &modules {
            if other != top && code(text).contains(&format!("crate::{other}")) {
                graph.entry(top.clone()).or_default().insert(other.clone());
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for m in &modules {
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
    // The check sees the edges it should: the service layer stands on the store.
    assert!(graph["service"].contains("store"), "{graph:?}");
}
