//! The module graph of `src/` (a top-level module or folder is one node; an edge is any
//! `crate::…` path outside comments and unit tests) has no cycle, and the pipeline's lower stages
//! (data, model, train, probe, metrics and what they stand on) import nothing above them.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{files_under, root};

/// The modules the lower stages may use: the stages themselves and the leaves under them.
const LOWER: [&str; 12] = [
    "error",
    "json",
    "seed",
    "interrupt",
    "isa",
    "kernel",
    "backend",
    "data",
    "model",
    "train",
    "probe",
    "metrics",
];

/// The top-level modules named by the `crate::` paths of `code`, `use crate::{a, b::{c, d}}`
/// groups over several lines included.
fn uses(code: &str) -> BTreeSet<String> {
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `tunnelbench::` or another crate's path
        }
        let rest = &code[i + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            found.insert(ident(rest));
            continue;
        };
        // The first segment of each item at the group's top level.
        let (mut depth, mut item_start) = (0usize, 0usize);
        for (j, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    found.insert(ident(&group[item_start..j]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    found.insert(ident(&group[item_start..j]));
                    item_start = j + 1;
                }
                _ => {}
            }
        }
    }
    found.retain(|n| !n.is_empty());
    found
}

/// Module → the modules it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("src");
    let files = files_under(&src, Some(&["rs"]));
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut modules = BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" || module == "cli" {
            continue; // the crate root and the binary sit above everything
        }
        modules.insert(module.clone());
        let code = std::fs::read_to_string(f).unwrap();
        let code = code.split("#[cfg(test)]\nmod tests").next().unwrap();
        let entry = edges.entry(module.clone()).or_default();
        entry.extend(uses(code).into_iter().filter(|m| *m != module));
    }
    for targets in edges.values_mut() {
        targets.retain(|m| modules.contains(m));
    }
    assert!(modules.len() > 15, "found only {modules:?}");
    edges
}

/// A cycle through `node`, if there is one reachable from it.
fn cycle(
    node: &str,
    edges: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|p| p == node) {
        return Some(path[i..].to_vec());
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in edges.get(node).into_iter().flatten() {
        if let Some(c) = cycle(next, edges, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn the_module_graph_has_no_cycle() {
    let edges = graph();
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(c) = cycle(node, &edges, &mut Vec::new(), &mut done) {
            panic!("import cycle: {} -> {}", c.join(" -> "), c[0]);
        }
    }
}

#[test]
fn the_lower_stages_import_nothing_above_them() {
    let edges = graph();
    for m in LOWER {
        let above: Vec<&String> = edges[m].iter().filter(|u| !LOWER.contains(&u.as_str())).collect();
        assert!(
            above.is_empty(),
            "src/{m} uses {above:?}, above the pipeline's lower stages"
        );
    }
}

#[test]
fn paths_are_found_in_use_lines_and_groups() {
    let code = "use crate::a::b;\nuse crate::{\n    c::{d, x},\n    e,\n};\nlet x = crate::f::g();\n// crate::h\nuse tunnelbench::i;";
    let expected: BTreeSet<String> = ["a", "c", "e", "f"].into_iter().map(String::from).collect();
    assert_eq!(uses(code), expected);
}
