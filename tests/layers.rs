//! The layering rules, checked on the source: which top-level modules may
//! import which. A `use crate::…` that breaks them fails here, before review.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test that cannot go on fails loudly, with a message"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules that must never import configuration: they get typed
/// values (the domain's `Policy`, section structs) handed down instead.
const BELOW_CONFIG: &[&str] = &[
    "domain",
    "store",
    "tokens",
    "keys",
    "telemetry",
    "ids",
    "clock",
];

/// Top-level modules that must never import the store: they reach data
/// through the domain's rules.
const ABOVE_THE_DOMAIN: &[&str] = &["http"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each top-level module of `src/` (a file or a folder) with the other
/// top-level modules its code names as `crate::<module>`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let top: Vec<PathBuf> = std::fs::read_dir(&src)
        .expect("src")
        .map(|e| e.expect("entry").path())
        .collect();
    for path in top {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name")
            .to_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let mut files = Vec::new();
        if path.is_dir() {
            rust_files(&path, &mut files);
        } else {
            files.push(path.clone());
        }
        let deps = graph.entry(name.clone()).or_default();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable");
            for (at, _) in text.match_indices("crate::") {
                let rest = &text[at + "crate::".len()..];
                let module: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !module.is_empty() && module != name {
                    deps.insert(module);
                }
            }
        }
    }
    graph
}

#[test]
fn nothing_below_configuration_imports_it() {
    let graph = imports();
    for module in BELOW_CONFIG {
        let deps = graph.get(*module).expect("module exists");
        assert!(
            !deps.contains("config"),
            "src/{module} imports crate::config; hand it typed values instead"
        );
    }
}

#[test]
fn handlers_never_import_the_store() {
    let graph = imports();
    for module in ABOVE_THE_DOMAIN {
        let deps = graph.get(*module).expect("module exists");
        assert!(
            !deps.contains("store"),
            "src/{module} imports crate::store; call a domain method instead"
        );
    }
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let graph = imports();
    // Kahn's algorithm: repeatedly remove modules that import nothing left.
    let mut left = graph.clone();
    loop {
        let free: Vec<String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(m, _)| m.clone())
            .collect();
        if free.is_empty() {
            break;
        }
        for m in free {
            left.remove(&m);
        }
    }
    assert!(
        left.is_empty(),
        "an import cycle runs through these modules: {left:?}"
    );
}
