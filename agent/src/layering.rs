//! A test that keeps the agent's top-level modules layered: it reads `agent/src/**/*.rs`,
//! collects every `crate::<module>` reference (paths and `use crate::{...}` lists), and fails
//! when the modules' references form a cycle. A cycle means two modules cannot be understood,
//! or tested, one without the other; the shared piece belongs in one of them or below both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module -> the modules it refers to.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Reads every source file under `src` into (top-level module, text); `lib.rs` and `main.rs`
/// are the crate root, not modules.
fn sources(src: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = vec![src.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read the source directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src");
            let first = relative
                .components()
                .next()
                .expect("a path")
                .as_os_str()
                .to_string_lossy()
                .into_owned();
            let module = first.trim_end_matches(".rs").to_owned();
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read a source file");
            out.push((module, text));
        }
    }
    out
}

/// The names after `crate::` in `text`, outside line comments: `crate::a::b` gives `a`,
/// `crate::{a::X, b}` gives `a` and `b`.
fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            let after = &rest[at + "crate::".len()..];
            rest = after;
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            if let Some(list) = after.strip_prefix('{') {
                out.extend(list_heads(list));
            } else {
                out.push(ident(after));
            }
        }
    }
    out.retain(|name| !name.is_empty());
    out
}

/// The first name of each item of a `{...}` list, up to its closing brace.
fn list_heads(list: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_item_start = true;
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item_start = true,
            c if at_item_start && !c.is_whitespace() => {
                heads.push(ident(&list[i..]));
                at_item_start = false;
            }
            _ => {}
        }
    }
    heads
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The module graph of the sources, keeping only references to modules that exist.
fn graph(sources: &[(String, String)]) -> Graph {
    let modules: BTreeSet<String> = sources.iter().map(|(m, _)| m.clone()).collect();
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for (module, text) in sources {
        for target in references(text) {
            if target != *module && modules.contains(&target) {
                graph.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    graph
}

/// A cycle of the graph, as the modules along it (the first repeated at the end).
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|m| m == node)?;
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

#[test]
fn the_agent_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let sources = sources(&src);
    assert!(
        sources.len() > 20,
        "found only {} source files",
        sources.len()
    );
    let graph = graph(&sources);
    assert!(
        graph["reporter"].contains("spool"),
        "the scan misses references: {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "agent modules refer to each other in a cycle: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn references_come_from_paths_and_use_lists_but_not_comments() {
    let text = "use crate::facts::{Facts, ProbeId};\n\
                use crate::{probe::disk, spool::{Spool, Stamp}, wire};\n\
                let x = crate::clock::now_ms(); // crate::ignored\n\
                macro: $crate::hidden and my_crate::hidden\n";
    assert_eq!(
        references(text),
        ["facts", "probe", "spool", "wire", "clock"]
    );
}

/// Edges of a graph, and the cycle expected in it.
type Case = (
    &'static [(&'static str, &'static str)],
    Option<&'static [&'static str]>,
);

#[test]
fn cycles_are_found_and_layers_pass() {
    let cases: [Case; 4] = [
        (&[("a", "b"), ("b", "c")], None),
        (&[("a", "b"), ("b", "a")], Some(&["a", "b", "a"])),
        (
            &[("a", "b"), ("b", "c"), ("c", "d"), ("d", "b")],
            Some(&["b", "c", "d", "b"]),
        ),
        (&[("a", "c"), ("b", "c"), ("a", "b")], None),
    ];
    for (edges, expected) in cases {
        let mut graph = Graph::new();
        for (from, to) in edges {
            graph
                .entry((*from).to_owned())
                .or_default()
                .insert((*to).to_owned());
            graph.entry((*to).to_owned()).or_default();
        }
        let expected = expected.map(|c| c.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(find_cycle(&graph), expected, "{edges:?}");
    }
}
