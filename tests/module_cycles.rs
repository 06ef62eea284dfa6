//! No import cycle between the modules of the daemon crate (`src/`) or the outbox crate
//! (`crates/outbox/src/`): among each crate's top-level modules (`http`, `console`, `ops`,
//! `store`...; `runner`, `worker`, `queue`...), and among the files of each module folder,
//! nested ones too (`http/customers.rs` and `http/entities.rs`; `store/balances/*.rs`...). A module's references are read from
//! its source text: `crate::x` paths (in `use` lines and in code), `use crate::{x, y}`
//! groups, and `super::x` for the files of a folder. A cycle fails the test, named.
//!
//! Known cycles in code another change owns are listed in `KNOWN`; remove an entry when its
//! cycle is gone (the test fails on a listed cycle that no longer exists, so the list stays
//! true).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Cycles left on purpose for now, each as its sorted members and why.
const KNOWN: &[(&[&str], &str)] = &[];

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The source roots checked: the daemon crate's and the outbox crate's.
fn roots() -> Vec<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    vec![manifest.join("src"), manifest.join("crates/outbox/src")]
}

/// The source of `path` without `//` comments (doc comments name modules freely).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The identifiers that follow `prefix` in `code` (`crate::` → `ops`, `http`...), including
/// each member of a `prefix{a, b::c}` group.
fn targets(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().last();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    found
}

/// The module a file under `src/` belongs to at `depth` (1: `http`; 2: `http::customers`).
fn module_of(relative: &Path, depth: usize) -> Option<String> {
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.len() < depth {
        return None;
    }
    let mut module: Vec<String> = parts[..depth].to_vec();
    if module.last().is_some_and(|m| m == "mod") {
        return None;
    }
    if depth == 1 && (module[0] == "lib" || module[0] == "main") {
        return None;
    }
    Some(module.remove(0) + &module.iter().map(|m| format!("::{m}")).collect::<String>())
}

/// The top-level modules of the crate at `root` and who references whom.
fn top_level_graph(root: &Path) -> Graph {
    let files = rust_files(root);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_of(f.strip_prefix(root).unwrap(), 1))
        .collect();
    let mut graph = Graph::new();
    for file in &files {
        let Some(module) = module_of(file.strip_prefix(root).unwrap(), 1) else {
            continue;
        };
        let edges = graph.entry(module.clone()).or_default();
        for target in targets(&code(file), "crate::") {
            if target != module && modules.contains(&target) {
                edges.insert(target);
            }
        }
    }
    graph
}

/// Within each module folder under `root` (nested ones too), its files and who references
/// whom (`super::x`, `crate::folder::x`).
fn folder_graphs(root: &Path) -> Vec<Graph> {
    let mut graphs = Vec::new();
    let mut dirs: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(parent) = dirs.pop() {
        for entry in std::fs::read_dir(&parent).unwrap() {
            let dir = entry.unwrap().path();
            if dir.is_dir() {
                graphs.push(folder_graph(root, &dir));
                dirs.push(dir);
            }
        }
    }
    graphs
}

/// The files of one module folder and who references whom.
fn folder_graph(root: &Path, dir: &Path) -> Graph {
    let folder = dir
        .strip_prefix(root)
        .unwrap()
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("::");
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    let names: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "mod")
        .collect();
    let mut graph = Graph::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "mod" {
            continue;
        }
        let text = code(file);
        let mut found = targets(&text, "super::");
        found.extend(targets(&text, &format!("crate::{folder}::")));
        let edges = graph.entry(format!("{folder}::{name}")).or_default();
        for target in found {
            if target != name && names.contains(&target) {
                edges.insert(format!("{folder}::{target}"));
            }
        }
    }
    graph
}

/// The strongly connected components of more than one module (Tarjan), each sorted.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.found
}

fn known(cycle: &[String]) -> bool {
    KNOWN.iter().any(|(members, _)| *members == cycle)
}

#[test]
fn no_import_cycles_between_modules() {
    let mut all = Vec::new();
    for root in roots() {
        all.extend(cycles(&top_level_graph(&root)));
        for graph in folder_graphs(&root) {
            all.extend(cycles(&graph));
        }
    }
    let new: Vec<&Vec<String>> = all.iter().filter(|c| !known(c)).collect();
    assert!(
        new.is_empty(),
        "import cycles (each group references itself around): {new:?}"
    );
    for (members, why) in KNOWN {
        assert!(
            all.iter().any(|c| c == members),
            "{members:?} is no cycle any more ({why}): remove it from KNOWN"
        );
    }
}

#[test]
fn the_checker_sees_a_cycle_and_its_members() {
    let mut graph = Graph::new();
    let edge = |g: &mut Graph, a: &str, b: &str| {
        g.entry(a.to_owned()).or_default().insert(b.to_owned());
    };
    edge(&mut graph, "http", "console");
    edge(&mut graph, "console", "ops");
    edge(&mut graph, "ops", "store");
    assert!(cycles(&graph).is_empty());
    edge(&mut graph, "console", "http");
    assert_eq!(cycles(&graph), vec![vec!["console", "http"]]);
    let code = "use crate::{ops, views::Page};\nlet x = crate::http::serve;\nuse super::api;";
    let found = targets(code, "crate::");
    assert_eq!(found, ["http", "ops", "views"].map(String::from).into());
    assert_eq!(targets(code, "super::"), ["api".to_owned()].into());
}
