//! The command line as a user meets it (issue 23 item 8): shell completions, help that says what
//! is required, and `--json` that takes a file everywhere.

mod common;
use common::{path_str, privsynth};

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef privsynth"), ("fish", "complete -c privsynth")] {
        let r = privsynth(&["completions", shell]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains(marker), "{shell}: {}", &r.stdout[..200.min(r.stdout.len())]);
        for sub in ["synth", "schema", "ledger", "completions"] {
            assert!(r.stdout.contains(sub), "{shell}: no {sub}");
        }
    }
    assert_eq!(privsynth(&["completions", "tcsh"]).code, 2);
}

#[test]
fn help_says_what_is_required_and_what_each_option_does() {
    let r = privsynth(&["audit", "--help"]);
    let usage = r.stdout.lines().find(|l| l.starts_with("Usage:")).unwrap();
    assert!(usage.contains("--holdout <HOLDOUT>") && !usage.contains("[--holdout"), "{usage}");
    // clap puts the help beside the flag, or on the next line when any option's help is long.
    let lines: Vec<&str> = r.stdout.lines().collect();
    let at = lines.iter().position(|l| l.trim_start().starts_with("--link-b")).unwrap();
    let beside = lines[at].trim().len() > "--link-b <LINK_B>".len() + 10;
    let below = lines.get(at + 1).is_some_and(|l| !l.trim_start().starts_with('-') && l.trim().len() > 10);
    assert!(beside || below, "--link-b has no help: {}", lines[at]);
    let top = privsynth(&["--help"]).stdout;
    let fit = top.lines().find(|l| l.trim_start().starts_with("fit ")).unwrap();
    assert!(fit.contains("AIM by default"), "{fit}");
}

#[test]
fn json_takes_a_file_in_ledger_show_and_schema_check_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("check.json");
    let heart = "data/uci-heart-disease/processed.cleveland.data";
    let arg = format!("--json={}", path_str(&out));
    let r = privsynth(&["schema", "check", heart, "--schema", "schemas/heart.yaml", &arg]);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(v.is_object());
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    // Without a file, stdout as before.
    let r = privsynth(&["schema", "check", heart, "--schema", "schemas/heart.yaml", "--json"]);
    assert!(serde_json::from_str::<serde_json::Value>(&r.stdout).is_ok(), "{}", r.stdout);
    let ledger = dir.path().join("l.jsonl");
    let led = dir.path().join("ledger.json");
    let r = privsynth(&["ledger", "show", "--ledger", path_str(&ledger), &format!("--json={}", path_str(&led))]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&led).unwrap()).unwrap();
    assert_eq!(v["entries"], 0);
}
