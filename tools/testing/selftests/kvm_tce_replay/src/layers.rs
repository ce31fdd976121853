// SPDX-License-Identifier: GPL-2.0

//! Host test of the module's layering (Documentation/design.rst): reads every file of rust/,
//! resolves each path it names through `crate::` or `super::` to the file that defines it, and
//! checks that every such import goes to a lower layer (or, inside a layer, to a file that does
//! not import back: the graph has no cycle), and that the pure core imports no `kernel::`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom up, by file (module path prefix).
fn layer(module: &[String]) -> usize {
    let first = module.first().map(String::as_str);
    match first {
        Some("pure") => 1,
        Some("shim") => 2,
        Some("accounting" | "guest" | "stats" | "user") => 3,
        Some("iommu") if module.len() == 1 => 4,
        Some("table" | "replay") => 5,
        Some("iommu") => 6,
        Some("attach" | "device" | "kunit") | None => 7,
        Some(other) => panic!("rust/{other}.rs belongs to no layer: add it to layers.rs"),
    }
}

/// The one import that goes up, on purpose: `module!` generates the module's identity
/// (`LocalModule`, for `THIS_MODULE`) at the crate root, and the shim's file operations name it
/// as their owner, as every `file_operations` of a module must.
const UP_ON_PURPOSE: &[(&str, &str)] = &[("shim/file", "kvm_tce_replay_main")];

/// Every .rs file under `dir`, by module path (the crate root is the empty path).
fn modules(root: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("rust/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .expect("under rust/")
                    .with_extension("");
                let module: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let module = if module == ["kvm_tce_replay_main"] {
                    Vec::new()
                } else {
                    module
                };
                out.insert(module, path);
            }
        }
    }
    out
}

/// `text` without comments.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The full paths of a use tree (`a::{b, c::{d, e}}`) from `s`, with `prefix` before each.
fn use_tree(s: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let s = s.trim();
    if let Some(open) = s.find('{') {
        let mut base = prefix.to_vec();
        base.extend(segments(&s[..open]));
        let inner = &s[open + 1..s.rfind('}').expect("a closed use group")];
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    use_tree(&inner[start..i], &base, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        use_tree(&inner[start..], &base, out);
    } else if !s.is_empty() {
        let mut path = prefix.to_vec();
        path.extend(segments(s.split(" as ").next().unwrap_or(s)));
        out.push(path);
    }
}

fn segments(s: &str) -> Vec<String> {
    s.split("::")
        .map(str::trim)
        .filter(|seg| !seg.is_empty() && *seg != "self" && *seg != "*")
        .map(String::from)
        .collect()
}

/// Every module path `file` (module `module`) names through `crate::` or `super::`.
fn references(module: &[String], text: &str) -> Vec<Vec<String>> {
    let text = strip_comments(text);
    let mut out = Vec::new();
    let parent = &module[..module.len().saturating_sub(1)];
    for (keyword, base) in [("crate::", &[][..]), ("super::", parent)] {
        let mut rest = text.as_str();
        while let Some(i) = rest.find(keyword) {
            let before = rest[..i].chars().last();
            rest = &rest[i + keyword.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            if rest.starts_with('{') {
                let end = matching(rest);
                use_tree(&rest[..=end], base, &mut out);
            } else {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                let mut path = base.to_vec();
                path.extend(segments(&rest[..end]));
                out.push(path);
            }
        }
    }
    out
}

/// The index of the `}` closing the `{` that `s` starts with.
fn matching(s: &str) -> usize {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    panic!("an unclosed use group");
}

/// The file-to-file import graph of the module: module path -> module paths it imports from.
fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../rust");
    let mods = modules(&root);
    // `#[macro_export]` puts a macro at the crate root whatever file defines it: `crate::NAME!`
    // names that file.
    let mut exported = BTreeMap::new();
    for (module, path) in &mods {
        let text = std::fs::read_to_string(path).expect("a readable source");
        for (i, _) in text.match_indices("#[macro_export]") {
            let rest = text[i..].split_once("macro_rules! ").map(|(_, r)| r);
            if let Some(name) =
                rest.and_then(|r| r.split(|c: char| !c.is_alphanumeric() && c != '_').next())
            {
                exported.insert(vec![name.to_string()], module.clone());
            }
        }
    }
    let mut graph = BTreeMap::new();
    for (module, path) in &mods {
        let text = std::fs::read_to_string(path).expect("a readable source");
        let mut targets = BTreeSet::new();
        for reference in references(module, &text) {
            let reference = exported.get(&reference).cloned().unwrap_or(reference);
            // The longest prefix of the path that is a file of the module.
            let target = (0..=reference.len())
                .rev()
                .map(|n| reference[..n].to_vec())
                .find(|p| mods.contains_key(p))
                .unwrap_or_default();
            if &target != module {
                targets.insert(target);
            }
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

fn name(module: &[String]) -> String {
    if module.is_empty() {
        "kvm_tce_replay_main".into()
    } else {
        module.join("/")
    }
}

#[test]
fn layers_import_downward_only() {
    let graph = graph();
    assert!(graph.len() > 20, "rust/ has {} files", graph.len());
    let mut upward = Vec::new();
    for (from, targets) in &graph {
        for to in targets {
            let allowed = UP_ON_PURPOSE.contains(&(name(from).as_str(), name(to).as_str()));
            if layer(to) > layer(from) && !allowed {
                upward.push(format!(
                    "{} (layer {}) imports {} (layer {})",
                    name(from),
                    layer(from),
                    name(to),
                    layer(to)
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports going up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_import_cycle() {
    let graph = graph();
    // Depth-first search with colours; a grey node reached again closes a cycle.
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, bool>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(true) => return None,
            Some(false) => {
                let at = stack.iter().position(|n| n == node).expect("on the stack");
                return Some(stack[at..].iter().map(|n| name(n)).collect());
            }
            None => {}
        }
        state.insert(node.clone(), false);
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, state, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        state.insert(node.clone(), true);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut state, &mut Vec::new()) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn pure_core_is_pure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../rust");
    for (module, path) in modules(&root) {
        if module.first().map(String::as_str) != Some("pure") {
            continue;
        }
        let text = strip_comments(&std::fs::read_to_string(&path).expect("readable"));
        for forbidden in ["kernel::", "crate::", "unsafe "] {
            assert!(
                !text.contains(forbidden),
                "{} uses {forbidden}",
                path.display()
            );
        }
    }
}

/// Whether `text` (without comments) has the keyword `unsafe`, as a word.
fn has_unsafe(text: &str) -> bool {
    let text = strip_comments(text);
    let word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices("unsafe").any(|(i, m)| {
        !text[..i].chars().next_back().is_some_and(word)
            && !text[i + m.len()..].chars().next().is_some_and(word)
    })
}

/// Every `unsafe` of the module (blocks, impls, fns, and the `unsafe(uninit)` of a
/// `global_lock!`) is in rust/shim/: the rest is safe Rust (shim.rs says so).
#[test]
fn unsafe_only_in_shim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../rust");
    let outside: Vec<String> = modules(&root)
        .into_iter()
        .filter(|(module, _)| module.first().map(String::as_str) != Some("shim"))
        .filter(|(_, path)| has_unsafe(&std::fs::read_to_string(path).expect("readable")))
        .map(|(_, path)| path.display().to_string())
        .collect();
    assert!(outside.is_empty(), "unsafe outside rust/shim/: {outside:?}");
}

#[test]
fn the_checker_sees_unsafe() {
    assert!(has_unsafe("fn f() { unsafe { g() } }"));
    assert!(has_unsafe(
        "global_lock! { unsafe(uninit) static X: T = 0; }"
    ));
    assert!(!has_unsafe("// unsafe in a comment\nfn unsafe_name() {}"));
}

#[test]
fn the_checker_sees_imports() {
    let module = vec!["iommu".to_string(), "mock".to_string()];
    let text = "use crate::{pure::{hwmap::HwGeometry, window::Window}, shim::X as Y};\n\
                use super::Binding; // crate::device::Nope\nfn f() { crate::table::GEO; }";
    let refs = references(&module, text);
    let want: Vec<Vec<String>> = [
        "pure hwmap HwGeometry",
        "pure window Window",
        "shim X",
        "table GEO",
        "iommu Binding",
    ]
    .iter()
    .map(|p| p.split(' ').map(String::from).collect())
    .collect();
    assert_eq!(refs, want);
}
