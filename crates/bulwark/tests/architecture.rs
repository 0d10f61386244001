//! The dependency picture in ARCHITECTURE.md is the real one, and the rules it
//! states hold: checked against `cargo metadata`, so neither can drift.
//!
//! The block between `<!-- deps:begin -->` and `<!-- deps:end -->` in
//! ARCHITECTURE.md lists, for every crate of ours, the crates of ours it
//! depends on (normal dependencies; tests may use more). This test fails when
//! a Cargo.toml gains or loses one without the page saying so, and when a
//! dependency breaks one of the direction rules below.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Our crates' normal dependencies on each other, from `cargo metadata`.
fn actual() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let ours: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect();
    let mut graph = Graph::new();
    for p in packages {
        let name = short(p["name"].as_str().expect("name"));
        let deps = graph.entry(name).or_default();
        for d in p["dependencies"].as_array().expect("dependencies") {
            let dep = d["name"].as_str().expect("dependency name");
            // kind is null for normal dependencies, "dev" or "build" otherwise
            if ours.contains(dep) && d["kind"].is_null() {
                deps.insert(short(dep));
            }
        }
    }
    graph
}

fn short(name: &str) -> String {
    name.strip_prefix("bulwark-").unwrap_or(name).to_string()
}

/// The picture ARCHITECTURE.md draws: lines `name → a, b, c` (or `name → –`).
fn documented() -> Graph {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ARCHITECTURE.md");
    let text = std::fs::read_to_string(&path).expect("ARCHITECTURE.md is readable");
    let begin = text
        .find("<!-- deps:begin -->")
        .expect("ARCHITECTURE.md has a <!-- deps:begin --> marker");
    let end = text
        .find("<!-- deps:end -->")
        .expect("ARCHITECTURE.md has a <!-- deps:end --> marker");
    let mut graph = Graph::new();
    for line in text[begin..end].lines() {
        let Some((name, deps)) = line.split_once('→') else {
            continue;
        };
        let name = name.trim().trim_matches('`').to_string();
        let deps = deps
            .split(',')
            .map(|d| d.trim().trim_matches('`').to_string())
            .filter(|d| !d.is_empty() && d != "–" && d != "-")
            .collect();
        assert!(
            graph.insert(name.clone(), deps).is_none(),
            "ARCHITECTURE.md lists `{name}` twice"
        );
    }
    graph
}

#[test]
fn architecture_md_draws_the_real_dependency_graph() {
    let actual = actual();
    let documented = documented();
    let mut wrong = Vec::new();
    for (name, deps) in &actual {
        match documented.get(name) {
            None => wrong.push(format!("`{name}` is missing from the picture")),
            Some(doc) if doc != deps => wrong.push(format!(
                "`{name}`: the page says → {doc:?}, Cargo.toml says → {deps:?}"
            )),
            Some(_) => {}
        }
    }
    for name in documented.keys() {
        if !actual.contains_key(name) {
            wrong.push(format!(
                "`{name}` is drawn but is no crate of the workspace"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "ARCHITECTURE.md's dependency picture is out of date (fix the page or the Cargo.toml):\n  {}",
        wrong.join("\n  ")
    );
}

/// Everything `name` depends on, directly or not.
fn reach(graph: &Graph, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(n) = todo.pop() {
        for d in graph.get(&n).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn dependencies_point_one_way() {
    let graph = actual();
    let mut broken = Vec::new();
    // leaves: plain libraries that depend on no crate of ours
    for leaf in ["store", "schedule", "api"] {
        let deps = reach(&graph, leaf);
        if !deps.is_empty() {
            broken.push(format!(
                "`{leaf}` must depend on no crate of ours, but uses {deps:?}"
            ));
        }
    }
    // the engine and the probes use only `api`'s plain shared types (the URL redactor)
    for lib in ["engine", "monitor"] {
        let deps = reach(&graph, lib);
        if deps.iter().any(|d| d != "api") {
            broken.push(format!(
                "`{lib}` may depend only on `api`, but uses {deps:?}"
            ));
        }
    }
    // config is the model: it never reaches the engine, the stores or a role
    let config = reach(&graph, "config");
    for role in ["engine", "store", "hub", "agent", "replicate"] {
        if config.contains(role) {
            broken.push(format!("`config` must never depend on `{role}`"));
        }
    }
    // the hub and the agent cannot decrypt: they never link the engine
    for role in ["hub", "agent", "replicate", "monitor", "notify"] {
        if reach(&graph, role).contains("engine") {
            broken.push(format!(
                "`{role}` must never depend on `engine` (it holds no key)"
            ));
        }
    }
    // the store knows nothing of the engine, and nothing depends on the binary
    if reach(&graph, "store").contains("engine") {
        broken.push("`store` must never depend on `engine`".into());
    }
    for (name, deps) in &graph {
        if deps.contains("bulwark") {
            broken.push(format!("`{name}` depends on the binary crate"));
        }
    }
    assert!(
        broken.is_empty(),
        "dependency rules broken:\n  {}",
        broken.join("\n  ")
    );
}
