//! The LLM stage against a real llama.cpp `llama-server` (opt-in). Run by
//! `benchmarks/llama_server/run.sh`, which builds the server from the llama.cpp sources in the
//! `llama-cpp-python` sdist, writes a tiny random-weight GGUF and starts the server with two
//! slots, embeddings on (mean pooling) and an 8192-token context per slot. Without
//! PRIVSYNTH_TEST_LLAMA_URL every test here prints that it was skipped and passes.
//!
//! What it verifies: structured output in each dialect the server accepts (answers valid
//! against the request's JSON Schema, checked here with the `jsonschema` crate, not only by
//! privsynth's own validator), the plausibility check and constraint proposals (anyOf, enums,
//! formats), both slots busy at once under client concurrency, client timeouts retried and given
//! up with the server still healthy, a request beyond the context surfaced with the server's
//! message, and the /embeddings endpoint driving Private Evolution. The model's weights are
//! random: its text is noise, so nothing here says anything about text quality.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Run, path_str, privsynth};
use serde_json::Value;

fn server() -> Option<(String, String)> {
    match (std::env::var("PRIVSYNTH_TEST_LLAMA_URL"), std::env::var("PRIVSYNTH_TEST_LLAMA_MODEL")) {
        (Ok(u), Ok(m)) if !u.is_empty() => Some((u, m)),
        _ => {
            eprintln!(
                "skipped: no llama-server (set PRIVSYNTH_TEST_LLAMA_URL and PRIVSYNTH_TEST_LLAMA_MODEL, or run benchmarks/llama_server/run.sh)"
            );
            None
        }
    }
}

fn fitted(dir: &Path) -> PathBuf {
    let model = dir.join("m.json");
    let r = privsynth(&[
        "fit",
        "data/synthea/patients.csv",
        "--schema",
        "schemas/synthea-patients.yaml",
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "-o",
        path_str(&model),
        "--ledger",
        path_str(&dir.join("l.jsonl")),
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    model
}

fn sample(dir: &Path, model: &Path, (url, name): &(String, String), dialect: &str, extra: &[&str]) -> (Run, PathBuf) {
    let transcript = dir.join(format!("t-{dialect}.jsonl"));
    let out = dir.join(format!("s-{dialect}.csv"));
    let args = [
        &[
            "sample",
            path_str(model),
            "-o",
            path_str(&out),
            "--seed",
            "1",
            "--llm-url",
            url,
            "--llm-model",
            name,
            "--llm-dialect",
            dialect,
            "--llm-no-cache",
        ][..],
        &["--llm-transcript", path_str(&transcript)],
        extra,
    ]
    .concat();
    (privsynth(&args), transcript)
}

/// Every server answer of a transcript, with the schema its request asked for.
fn answers(transcript: &Path) -> Vec<(Value, String, Option<String>, String)> {
    std::fs::read_to_string(transcript)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e.get("answer").is_some())
        .map(|e| {
            let req = &e["request"];
            let schema = ["/response_format/json_schema/schema", "/response_format/schema", "/structured_outputs/json"]
                .iter()
                .find_map(|p| req.pointer(p))
                .cloned()
                .unwrap_or(Value::Null);
            (
                schema,
                e["answer"].as_str().unwrap_or_default().to_string(),
                e["finish_reason"].as_str().map(str::to_owned),
                e["verdict"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The counter `answers: N accepted` of a run summary.
fn accepted(stderr: &str) -> usize {
    let at = stderr.find("answers: ").expect("a summary") + "answers: ".len();
    stderr[at..].split_whitespace().next().and_then(|n| n.parse().ok()).expect("a count")
}

/// Every answer of a grammar-enforcing dialect is JSON, and every answer privsynth accepted is
/// valid against the request's schema (checked with the `jsonschema` crate). Two things make a
/// random model's answer fail later checks, and privsynth rejects it and asks again with the
/// next seed: a text blank after trimming or holding control characters (privsynth's text
/// rules), and a string over its maxLength because a byte-level token left a UTF-8 sequence
/// incomplete, which llama-server turns into one U+FFFD per byte after the grammar counted it
/// as one character.
fn all_schema_valid(dialect: &str, transcript: &Path) {
    for (schema, content, finish, verdict) in answers(transcript) {
        let v: Value =
            serde_json::from_str(&content).unwrap_or_else(|e| panic!("{dialect}: not JSON ({e}): {content}"));
        let valid = jsonschema::validator_for(&schema).unwrap().is_valid(&v);
        assert_eq!(finish.as_deref(), Some("stop"), "{dialect}: {content}");
        assert!(
            valid || verdict != "accepted",
            "{dialect}: privsynth accepted an answer its schema does not allow: {content}"
        );
        if !valid {
            assert!(content.contains('\u{FFFD}'), "{dialect}: not valid against the request's schema: {content}");
            eprintln!("{dialect}: answer over a maxLength through U+FFFD replacement, rejected and asked again");
        } else if verdict != "accepted" {
            eprintln!(
                "{dialect}: schema-valid answer rejected by privsynth's text rules (blank or control characters)"
            );
        }
    }
}

#[test]
fn structured_output_is_schema_valid_in_every_dialect_the_server_enforces() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = fitted(dir.path());
    for dialect in ["llama-cpp", "ollama"] {
        let t = Instant::now();
        let (r, transcript) =
            sample(dir.path(), &model, &srv, dialect, &["--rows", "6", "--llm-batch", "3", "--llm-max-chars", "60"]);
        assert_eq!(r.code, 0, "{dialect}: {}", r.stderr);
        assert_eq!(accepted(&r.stderr), 2, "{dialect}: {}", r.stderr);
        assert!(
            r.stderr.contains("6 of 6 record(s) written") && !r.stderr.contains("truncated"),
            "{dialect}: {}",
            r.stderr
        );
        all_schema_valid(dialect, &transcript);
        eprintln!("{dialect}: 6 records in 2 requests, {:.1} s", t.elapsed().as_secs_f64());
    }
    // The openai dialect drops string lengths (OpenAI's strict subset has none): the grammar
    // then bounds no text, a random model never closes a string, and every answer runs into
    // the token limit, reported as truncated (a real model closes its strings).
    let (r, transcript) =
        sample(dir.path(), &model, &srv, "openai", &["--rows", "2", "--llm-batch", "2", "--llm-max-chars", "20"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("answers: 0 accepted, 3 rejected (truncated 3)"), "{}", r.stderr);
    assert!(answers(&transcript).iter().all(|(_, _, f, _)| f.as_deref() == Some("length")));
    // vLLM's and prompt-only requests carry no schema field llama-server reads: its output is
    // then unconstrained noise, rejected and counted, and the run still ends cleanly.
    for dialect in ["vllm", "prompt-only"] {
        let (r, transcript) =
            sample(dir.path(), &model, &srv, dialect, &["--rows", "2", "--llm-batch", "2", "--llm-max-chars", "20"]);
        assert_eq!(r.code, 0, "{dialect}: {}", r.stderr);
        assert!(r.stderr.contains("answers: 0 accepted, 3 rejected"), "{dialect}: {}", r.stderr);
        assert!(answers(&transcript).iter().all(|(_, _, _, v)| v == "rejected"));
    }
}

#[test]
fn the_check_and_constraint_proposals_get_schema_valid_answers() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = fitted(dir.path());
    let (r, transcript) = sample(
        dir.path(),
        &model,
        &srv,
        "llama-cpp",
        &["--rows", "4", "--llm-batch", "4", "--llm-max-chars", "30", "--llm-check"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(accepted(&r.stderr) == 2 && r.stderr.contains("llm check"), "{}", r.stderr);
    all_schema_valid("llama-cpp", &transcript);
    let out = dir.path().join("proposed.yaml");
    let t = dir.path().join("tc.jsonl");
    let r = privsynth(&[
        "llm",
        "constraints",
        "--schema",
        "schemas/synthea-patients.yaml",
        "-o",
        path_str(&out),
        "--llm-url",
        &srv.0,
        "--llm-model",
        &srv.1,
        "--llm-dialect",
        "llama-cpp",
        "--llm-no-cache",
        "--llm-transcript",
        path_str(&t),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(accepted(&r.stderr), 1, "{}", r.stderr);
    all_schema_valid("llama-cpp", &t);
}

/// Both server slots work at once under client concurrency (polled from GET /slots).
#[test]
fn client_concurrency_fills_the_server_slots() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = fitted(dir.path());
    let slots_url = format!("{}/slots", srv.0.trim_end_matches("/v1"));
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let busy = || -> usize {
        let Ok(mut r) = agent.get(&slots_url).call() else { return 0 };
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).unwrap_or(Value::Null);
        v.as_array().map_or(0, |a| a.iter().filter(|s| s["is_processing"] == Value::Bool(true)).count())
    };
    let mut times = vec![];
    for conc in ["1", "4"] {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (most, took, r) = std::thread::scope(|s| {
            let poll = s.spawn(|| {
                let mut most = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    most = most.max(busy());
                    std::thread::sleep(Duration::from_millis(20));
                }
                most
            });
            let t = Instant::now();
            let (r, _) = sample(
                dir.path(),
                &model,
                &srv,
                "llama-cpp",
                &["--rows", "8", "--llm-batch", "2", "--llm-max-chars", "60", "--llm-concurrency", conc],
            );
            let took = t.elapsed().as_secs_f64();
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            (poll.join().unwrap(), took, r)
        });
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(accepted(&r.stderr), 4, "{}", r.stderr);
        assert_eq!(most, if conc == "1" { 1 } else { 2 }, "concurrency {conc}: most slots busy at once");
        times.push(took);
    }
    eprintln!(
        "8 records in 4 requests: {:.1} s at concurrency 1, {:.1} s at concurrency 4 (2 slots)",
        times[0], times[1]
    );
}

#[test]
fn timeouts_are_retried_then_given_up_and_the_server_stays_healthy() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = fitted(dir.path());
    let t = Instant::now();
    let (r, _) =
        sample(dir.path(), &model, &srv, "llama-cpp", &["--rows", "4", "--llm-batch", "4", "--llm-timeout", "0.2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("retried: 4 (timeout 4)") && r.stderr.contains("given up: 1 (timeout 1)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("0 of 4 record(s) written"), "{}", r.stderr);
    eprintln!("5 timed-out attempts with backoff in {:.1} s", t.elapsed().as_secs_f64());
    let health = format!("{}/health", srv.0.trim_end_matches("/v1"));
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    assert_eq!(agent.get(&health).call().unwrap().status().as_u16(), 200);
    // And answers again.
    let (r, _) =
        sample(dir.path(), &model, &srv, "llama-cpp", &["--rows", "2", "--llm-batch", "2", "--llm-max-chars", "20"]);
    assert_eq!(accepted(&r.stderr), 1, "{}", r.stderr);
}

#[test]
fn a_prompt_beyond_the_context_is_reported_with_the_servers_message() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = fitted(dir.path());
    let (r, _) = sample(dir.path(), &model, &srv, "llama-cpp", &["--rows", "150", "--llm-batch", "150"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("given up: 1 (http_400 1)")
            && r.stderr.contains("last server error: HTTP 400")
            && r.stderr.contains("larger context per slot"),
        "{}",
        r.stderr
    );
}

#[test]
fn private_evolution_votes_with_the_servers_embeddings() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("s.yaml");
    std::fs::write(&schema, "version: 1\ntables:\n  - name: visits\n    columns:\n      - {name: ward, type: categorical, domain: {categories: [a, b]}}\n      - {name: note, type: text, llm: {max_chars: 40}}\n").unwrap();
    let data = dir.path().join("v.csv");
    let rows: String = (0..60)
        .map(|i| {
            format!(
                "{},{}\n",
                if i % 3 == 0 { "a" } else { "b" },
                if i % 3 == 0 { "chest pain on exertion" } else { "routine child wellness visit" }
            )
        })
        .collect();
    std::fs::write(&data, format!("ward,note\n{rows}")).unwrap();
    let out = dir.path().join("o.csv");
    let r = privsynth(&[
        "synth",
        path_str(&data),
        "--schema",
        path_str(&schema),
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "--rows",
        "6",
        "-o",
        path_str(&out),
        "--ledger",
        path_str(&dir.path().join("l.jsonl")),
        "--llm-url",
        &srv.0,
        "--llm-model",
        &srv.1,
        "--llm-dialect",
        "llama-cpp",
        "--llm-no-cache",
        "--llm-batch",
        "3",
        "--llm-pe-epsilon",
        "1",
        "--llm-pe-iterations",
        "1",
        "--llm-pe-embed-url",
        &srv.0,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("/embeddings (model") && r.stderr.contains("llm pe note: 1 iteration(s)"),
        "{}",
        r.stderr
    );
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written.lines().count(), 7);
}

/// Linked tables: each encounter's reason written per synthetic event, conditioned on its
/// person, in schema-valid answers (the other text columns of the Synthea schema are turned
/// into identifiers here, to keep the run short).
#[test]
fn linked_event_text_on_the_real_server() {
    let Some(srv) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::root().join("schemas/ehr/synthea-111.yaml")).unwrap();
    let schema = dir.path().join("s.yaml");
    std::fs::write(
        &schema,
        text.replace("type: text", "type: identifier")
            .replace("{name: REASONDESCRIPTION, type: identifier", "{name: REASONDESCRIPTION, type: text"),
    )
    .unwrap();
    let (out, t) = (dir.path().join("out"), dir.path().join("t.jsonl"));
    let r = privsynth(&[
        "synth",
        "data/ehr/synthea-111",
        "--schema",
        path_str(&schema),
        "--epsilon",
        "2",
        "--mechanism",
        "mst",
        "--rows",
        "2",
        "--seed",
        "6",
        "-o",
        path_str(&out),
        "--ledger",
        path_str(&dir.path().join("l.jsonl")),
        "--llm-url",
        &srv.0,
        "--llm-model",
        &srv.1,
        "--llm-dialect",
        "llama-cpp",
        "--llm-no-cache",
        "--llm-batch",
        "10",
        "--llm-max-chars",
        "24",
        "--llm-transcript",
        path_str(&t),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        accepted(&r.stderr) >= 1 && !r.stderr.contains("http_400") && !r.stderr.contains("truncated"),
        "{}",
        r.stderr
    );
    all_schema_valid("llama-cpp", &t);
    let bodies = std::fs::read_to_string(&t).unwrap();
    assert!(
        bodies.contains("person.GENDER") && bodies.contains("Table \\\"encounters\\\""),
        "event prompts show the person"
    );
}
