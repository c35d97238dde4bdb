//! The LLM stage end to end against a loopback fake OpenAI-compatible server (tests/common/
//! fake_llm.rs): text columns, the plausibility pass, constraint proposals and enforcement,
//! faults (429 with Retry-After, 503, 500, timeouts, truncated, invalid and schema-violating
//! answers, hallucinated categories), the error-rate stop, the cache, every dialect, and the
//! canary test of the DP boundary. The fake's answers are schema-valid noise: nothing here is a
//! quality result.

mod common;
#[path = "common/fake_llm.rs"]
mod fake_llm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Run, path_str, privsynth, root};
use fake_llm::{FakeLlm, Fault};
use privsynth::llm::prompt::ReleasedStats;
use privsynth::model::file::ModelFile;
use privsynth::schema::constraints::RuleStatus;
use privsynth::schema::{CsvFormat, Schema};
use serde_json::Value;

const DATA: &str = "data/synthea/patients.csv";
const SCHEMA: &str = "schemas/synthea-patients.yaml";
const TEXT: [&str; 4] = ["CITY", "COUNTY", "FIPS", "ZIP"];

/// A temp dir with a model of the Synthea patients fitted in it (MST, epsilon 1).
struct Fitted {
    dir: tempfile::TempDir,
    model: PathBuf,
}

fn fitted_with(schema: &str) -> Fitted {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.json");
    let ledger = dir.path().join("l.jsonl");
    let r = privsynth(&[
        "fit",
        DATA,
        "--schema",
        schema,
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "--iterations",
        "300",
        "-o",
        path_str(&model),
        "--ledger",
        path_str(&ledger),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    Fitted { dir, model }
}

fn fitted() -> Fitted {
    fitted_with(SCHEMA)
}

impl Fitted {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `sample` against the fake server with a fixed seed and a cache in the temp dir.
    fn sample(&self, server: &FakeLlm, out: &str, extra: &[&str]) -> Run {
        let (out, cache) = (self.path(out), self.path("cache"));
        let mut args = vec![
            "sample",
            path_str(&self.model),
            "-o",
            path_str(&out),
            "--seed",
            "5",
            "--llm-url",
            &server.url,
            "--llm-model",
            "fake-model",
            "--llm-cache",
            path_str(&cache),
        ];
        args.extend_from_slice(extra);
        privsynth(&args)
    }
}

/// Rows of a CSV file as column -> value (empty = None).
fn read_csv(p: &Path) -> Vec<BTreeMap<String, Option<String>>> {
    let raw = privsynth::data::read(p, &CsvFormat::default(), None).unwrap();
    let names = raw.column_names();
    let cols: Vec<Vec<Option<String>>> = names
        .iter()
        .map(|n| {
            raw.df
                .column(n)
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .map(|v| v.map(str::to_owned).filter(|s| !s.is_empty()))
                .collect()
        })
        .collect();
    (0..raw.df.height()).map(|i| names.iter().zip(&cols).map(|(n, c)| (n.clone(), c[i].clone())).collect()).collect()
}

fn body(r: &fake_llm::Recorded) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

fn system_prompt(b: &Value) -> &str {
    b.pointer("/messages/0/content").and_then(Value::as_str).unwrap()
}

/// The records of a text or check request: id -> values.
fn records_in(b: &Value) -> serde_json::Map<String, Value> {
    let user = b.pointer("/messages/1/content").and_then(Value::as_str).unwrap();
    let json = &user[user.find('{').unwrap()..];
    serde_json::from_str::<Value>(json).unwrap().as_object().unwrap().clone()
}

fn purpose(b: &Value) -> String {
    b.pointer("/response_format/json_schema/name").and_then(Value::as_str).unwrap_or_default().to_string()
}

#[test]
fn text_columns_are_written_from_the_records_schema_and_released_statistics() {
    let f = fitted();
    let server = FakeLlm::start();
    let transcript = f.path("t.jsonl");
    let r =
        f.sample(&server, "s.csv", &["--rows", "30", "--llm-batch", "7", "--llm-transcript", path_str(&transcript)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = read_csv(&f.path("s.csv"));
    assert_eq!(rows.len(), 30);
    // Every record got its non-nullable text column, within the default 200 characters.
    assert!(
        rows.iter().all(|r| r["CITY"].as_ref().is_some_and(|c| !c.is_empty() && c.chars().count() <= 200)),
        "{rows:?}"
    );
    let chats = server.chats();
    assert_eq!(chats.len(), 5, "30 records in batches of 7");
    for c in &chats {
        let b = body(c);
        assert_eq!(b["model"], "fake-model");
        assert_eq!(b.pointer("/response_format/type").unwrap(), "json_schema");
        assert_eq!(b.pointer("/response_format/json_schema/strict").unwrap(), true);
        let sys = system_prompt(&b);
        for col in TEXT {
            assert!(sys.contains(&format!("- {col}:")), "the prompt asks for {col}: {sys}");
        }
        // Each record in the prompt is the output record with that id, and the answer for it is
        // what the output holds: prompts condition on the right records.
        let answer: Value = serde_json::from_str(c.answer.as_ref().unwrap()).unwrap();
        for (id, values) in records_in(&b) {
            let i: usize = id[1..].parse::<usize>().unwrap() - 1;
            for col in ["BIRTHDATE", "GENDER", "RACE", "INCOME"] {
                assert_eq!(values[col].as_str(), rows[i][col].as_deref(), "{id} {col}");
            }
            assert!(values.get("CITY").is_none(), "text columns are asked for, not shown");
            assert_eq!(answer[&id]["CITY"].as_str(), rows[i]["CITY"].as_deref(), "{id}");
        }
    }
    // The statistics in the prompt are the model file's released one-way measurements, which
    // differ from the exact shares of the real table.
    let model = ModelFile::load(&f.model).unwrap();
    let cols: Vec<&str> = model.columns.iter().map(String::as_str).collect();
    let stats = ReleasedStats::from_model(&model).unwrap();
    let released = stats.describe(&cols);
    // DP noise is unseeded: a column whose noisy counts have no positive mass releases no
    // shares (seen once for GENDER on these 111 rows in a CI run), so no one column is required.
    let lines = released.lines().filter(|l| l.starts_with("- ")).count();
    assert!(lines >= cols.len() / 2 && released.contains("Gaussian noise sd"), "{released}");
    assert!(system_prompt(&body(&chats[0])).contains(&released));
    let real = read_csv(&root().join(DATA));
    let exact = |col: &str, v: &str| {
        100.0 * real.iter().filter(|r| r[col].as_deref() == Some(v)).count() as f64 / real.len() as f64
    };
    let shown_exact = [("GENDER", "F"), ("GENDER", "M"), ("ETHNICITY", "hispanic"), ("RACE", "white")]
        .iter()
        .filter(|(c, v)| released.contains(&format!("{v} {:.1}%", exact(c, v))))
        .count();
    assert!(shown_exact < 4, "the prompt shows exact shares: {released}");
    // The transcript has one accepted exchange per request, holding the very bodies sent.
    let lines: Vec<Value> =
        std::fs::read_to_string(&transcript).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    assert!(lines.iter().all(|l| l["verdict"] == "accepted" && l["source"] == "server"));
    let sent: Vec<Value> = chats.iter().map(body).collect();
    for l in &lines {
        assert!(sent.contains(&l["request"]), "transcript request not among those sent");
    }
    assert!(r.stderr.contains("llm: 5 request(s)") && r.stderr.contains("5 accepted, 0 rejected"), "{}", r.stderr);
    assert!(r.stderr.contains("llm text: 30 of 30 record(s) written (CITY, COUNTY, FIPS, ZIP)"), "{}", r.stderr);
}

#[test]
fn without_a_server_text_columns_are_empty_and_llm_options_fail_before_spending() {
    let dir = tempfile::tempdir().unwrap();
    let (out, ledger) = (dir.path().join("s.csv"), dir.path().join("l.jsonl"));
    let base = [
        "synth",
        DATA,
        "--schema",
        SCHEMA,
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "-o",
        path_str(&out),
        "--ledger",
        path_str(&ledger),
    ];
    let r = privsynth(&base);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("warning: no LLM configured") && r.stderr.contains("CITY, COUNTY, FIPS, ZIP are left empty"),
        "{}",
        r.stderr
    );
    // Text columns without a server are left out of the output, and the schema written beside
    // it says so (it is the schema the output passes `schema check` against).
    let rows = read_csv(&out);
    assert!(!rows.is_empty() && rows.iter().all(|r| TEXT.iter().all(|c| !r.contains_key(*c))));
    assert!(rows.iter().all(|r| r["GENDER"].is_some()), "modelled columns are unaffected");
    let beside = out.with_file_name(format!("{}.schema.yaml", out.file_stem().unwrap().to_str().unwrap()));
    let yaml = std::fs::read_to_string(&beside).unwrap();
    assert!(yaml.contains("not produced") && TEXT.iter().all(|c| yaml.contains(*c)), "{yaml}");
    std::fs::remove_file(&ledger).unwrap();
    std::fs::remove_file(&out).unwrap();
    std::fs::remove_file(&beside).unwrap();
    for (extra, needle) in [
        (vec!["--llm-check"], "--llm-check needs an LLM server"),
        (vec!["--llm-url", "http://127.0.0.1:9/v1"], "no model"),
        (vec!["--llm-url", "ftp://x", "--llm-model", "m"], "must start with http"),
        (vec!["--llm-url", "http://127.0.0.1:9/v1", "--llm-model", "m", "--llm-concurrency", "0"], "--llm-concurrency"),
        (vec!["--llm-url", "http://127.0.0.1:9/v1", "--llm-model", "m"], "cannot reach"),
    ] {
        let mut args = base.to_vec();
        args.extend(extra.iter());
        let r = privsynth(&args);
        assert_eq!(r.code, 2, "{extra:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{extra:?}: expected {needle:?} in {}", r.stderr);
        assert!(
            !ledger.exists() && !out.exists(),
            "{extra:?}: nothing may be charged or written before the LLM options are checked"
        );
    }
}

#[test]
fn faults_are_retried_or_rejected_and_counted() {
    let f = fitted();
    let server = FakeLlm::start();
    // One worker, so the faults meet the first batch in order: five are retried (429 and 503
    // after their Retry-After; 500, a dropped connection and the timeout after a backoff), then
    // three answers are rejected, which exhausts the batch's re-asks: its cells stay empty and
    // the run goes on.
    server.script([
        Fault::TooMany(1),
        Fault::Unavailable,
        Fault::ServerError,
        Fault::Hangup,
        Fault::Stall(Duration::from_millis(2500)),
        Fault::Truncated,
        Fault::InvalidJson,
        Fault::SchemaViolation,
    ]);
    let started = Instant::now();
    let r = f.sample(
        &server,
        "s.csv",
        &["--rows", "20", "--llm-batch", "10", "--llm-timeout", "1", "--llm-concurrency", "1", "--llm-no-cache"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for needle in [
        "retried: 5 (connection 1, http_429 1, http_500 1, http_503 1, timeout 1)",
        "1 accepted, 3 rejected (invalid_json 1, schema 1, truncated 1)",
        "10 of 20 record(s) written",
        "1 batch(es) given up",
    ] {
        assert!(r.stderr.contains(needle), "expected {needle:?} in {}", r.stderr);
    }
    let rows = read_csv(&f.path("s.csv"));
    assert!(rows[..10].iter().all(|r| r["CITY"].is_none()) && rows[10..].iter().all(|r| r["CITY"].is_some()));
    // Retry-After is honoured: the request after the 429 and after the 503 waited a second.
    let chats = server.chats();
    assert_eq!(chats.len(), 9, "eight faults, then the second batch");
    for fault in [Fault::TooMany(1), Fault::Unavailable] {
        let i = chats.iter().position(|c| c.fault == fault).unwrap();
        let gap = chats[i + 1].at.duration_since(chats[i].at);
        assert!(gap >= Duration::from_millis(950), "{fault:?} then {gap:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(25));
}

/// A body that meets HTTP 500 on every retry (as llama-server answers when its chat parser
/// cannot read what a seed generated) is asked again with the next seed.
#[test]
fn a_server_error_on_every_retry_moves_to_the_next_seed() {
    let f = fitted();
    let server = FakeLlm::start();
    server.script(std::iter::repeat_n(Fault::ServerError, 5));
    let r =
        f.sample(&server, "s.csv", &["--rows", "3", "--llm-batch", "3", "--llm-concurrency", "1", "--llm-no-cache"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("answers: 1 accepted")
            && r.stderr.contains("retried: 4 (http_500 4)")
            && r.stderr.contains("3 of 3 record(s) written"),
        "{}",
        r.stderr
    );
    let seeds: Vec<u64> = server.chats().iter().map(|c| body(c)["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds.len(), 6);
    assert!(
        seeds[..5].iter().all(|s| *s == seeds[0]) && seeds[5] == seeds[0] + 1,
        "five tries of one body, then the next seed: {seeds:?}"
    );
}

#[test]
fn a_429_halves_the_requests_in_flight() {
    let f = fitted();
    let server = FakeLlm::start();
    server.script([Fault::TooMany(1)]);
    let r =
        f.sample(&server, "s.csv", &["--rows", "40", "--llm-batch", "5", "--llm-concurrency", "4", "--llm-no-cache"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("retried: 1 (http_429 1)") && r.stderr.contains("lowest concurrency 2"), "{}", r.stderr);
    assert!(r.stderr.contains("40 of 40 record(s) written"), "{}", r.stderr);
}

#[test]
fn sustained_failures_stop_the_run_with_the_server_and_the_reason() {
    let f = fitted();
    let server = FakeLlm::start();
    server.set_default(Fault::InvalidJson);
    let transcript = f.path("t.jsonl");
    let r = f.sample(
        &server,
        "s.csv",
        &[
            "--rows",
            "80",
            "--llm-batch",
            "2",
            "--llm-concurrency",
            "2",
            "--llm-no-cache",
            "--llm-transcript",
            path_str(&transcript),
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("stopping the LLM stage")
            && r.stderr.contains(&server.url)
            && r.stderr.contains("commonest reason is invalid_json"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--llm-dialect"), "the message says what to try: {}", r.stderr);
    let n = server.chats().len();
    assert!((20..=24).contains(&n), "stopped after {n} requests");
    assert!(!f.path("s.csv").exists(), "no output after a stop");
    let lines = std::fs::read_to_string(&transcript).unwrap().lines().count();
    assert!(lines >= 20, "the transcript is written even when the stage stops ({lines} lines)");
    // In `synth`, where the budget is already spent, the message says how to retry for free.
    let r = privsynth(&[
        "synth",
        DATA,
        "--schema",
        SCHEMA,
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "-o",
        path_str(&f.path("s.csv")),
        "--ledger",
        path_str(&f.path("l2.jsonl")),
        "--llm-url",
        &server.url,
        "--llm-model",
        "fake-model",
        "--llm-no-cache",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("stopping the LLM stage")
            && r.stderr.contains("with --model-out MODEL, `privsynth sample MODEL` can retry"),
        "{}",
        r.stderr
    );
    // A key the server refuses stops at once, naming the variable to fix.
    let server = FakeLlm::start();
    server.set_default(Fault::Unauthorized);
    let r = f.sample(&server, "s.csv", &["--rows", "20", "--llm-no-cache"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("HTTP 401") && r.stderr.contains("PRIVSYNTH_LLM_API_KEY"), "{}", r.stderr);
    assert!(server.chats().len() <= 4, "one refusal per worker at most");
}

#[test]
fn the_cache_makes_reruns_free_and_identical() {
    let f = fitted();
    let server = FakeLlm::start();
    let extra = ["--rows", "25", "--llm-check"];
    let r1 = f.sample(&server, "a.csv", &extra);
    assert_eq!(r1.code, 0, "{}", r1.stderr);
    let sent = server.chats().len();
    assert_eq!(sent, 6, "3 text and 3 check batches");
    let r2 = f.sample(&server, "b.csv", &extra);
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    assert_eq!(server.chats().len(), sent, "a rerun sends nothing");
    assert!(r2.stderr.contains("llm: 0 request(s)") && r2.stderr.contains("6 cache hit(s)"), "{}", r2.stderr);
    assert_eq!(std::fs::read(f.path("a.csv")).unwrap(), std::fs::read(f.path("b.csv")).unwrap());
    // Another seed samples other records: new prompts, new requests.
    let r3 = privsynth(&[
        "sample",
        path_str(&f.model),
        "-o",
        path_str(&f.path("c.csv")),
        "--seed",
        "6",
        "--rows",
        "25",
        "--llm-url",
        &server.url,
        "--llm-model",
        "fake-model",
        "--llm-cache",
        path_str(&f.path("cache")),
    ]);
    assert_eq!(r3.code, 0, "{}", r3.stderr);
    assert_eq!(server.chats().len(), sent + 3, "three text batches (no check this time)");
}

#[test]
fn every_dialect_asks_in_its_own_fields_and_its_answers_are_read() {
    let f = fitted();
    let server = FakeLlm::start();
    for dialect in ["openai", "vllm", "llama-cpp", "ollama", "prompt-only"] {
        let before = server.chats().len();
        let out = format!("{dialect}.csv");
        let r = f.sample(
            &server,
            &out,
            &["--rows", "4", "--llm-batch", "4", "--llm-dialect", dialect, "--llm-no-cache", "--llm-max-chars", "50"],
        );
        assert_eq!(r.code, 0, "{dialect}: {}", r.stderr);
        let chats = server.chats();
        assert_eq!(chats.len(), before + 1, "{dialect}");
        let b = body(&chats[before]);
        let sys = system_prompt(&b);
        let in_prompt = sys.contains("<response_schema>");
        match dialect {
            "openai" => {
                assert_eq!(b.pointer("/response_format/json_schema/strict"), Some(&Value::Bool(true)));
                assert!(b.get("max_completion_tokens").is_some());
                assert!(!b["response_format"].to_string().contains("maxLength"), "outside OpenAI's strict subset");
            }
            "vllm" => {
                assert!(
                    b.pointer("/structured_outputs/json/properties/r1").is_some()
                        && b.get("response_format").is_none()
                        && b.get("guided_json").is_none()
                );
            }
            "llama-cpp" => {
                assert_eq!(b.pointer("/response_format/type"), Some(&Value::from("json_object")));
                assert!(b.pointer("/response_format/schema/properties").is_some() && b["cache_prompt"] == true);
            }
            "ollama" => assert!(in_prompt && b.pointer("/response_format/json_schema/schema").is_some()),
            _ => assert!(in_prompt && b.get("response_format").is_none() && sys.contains("```json")),
        }
        assert!(b["seed"].is_u64());
        assert!(
            b["max_tokens"].is_u64() != b["max_completion_tokens"].is_u64(),
            "one token limit, in the dialect's name"
        );
        assert!(b.pointer("/structured_outputs/json/properties/r1/properties/CITY/maxLength").is_none_or(|m| m == 50));
        if dialect == "prompt-only" {
            assert!(chats[before].answer.as_ref().unwrap().contains("```json"), "the fake answers in a fence");
        }
        let rows = read_csv(&f.path(&out));
        assert!(rows.iter().all(|r| r["CITY"].is_some()), "{dialect}: answers were read: {}", r.stderr);
    }
}

#[test]
fn the_plausibility_pass_reports_and_drops_what_the_model_flags() {
    let f = fitted();
    let server = FakeLlm::start();
    server.set_p_true(0.7);
    let r = f.sample(&server, "s.csv", &["--rows", "50", "--llm-check", "--llm-no-cache"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Count the records the fake really flagged in its check answers.
    let flagged: usize = server
        .chats()
        .iter()
        .filter(|c| purpose(&body(c)) == "plausibility_check")
        .map(|c| {
            serde_json::from_str::<Value>(c.answer.as_ref().unwrap())
                .unwrap()
                .as_object()
                .unwrap()
                .values()
                .filter(|v| v["plausible"] == false)
                .count()
        })
        .sum();
    assert!(flagged > 0 && flagged < 50, "{flagged}");
    let share = 100.0 * flagged as f64 / 50.0;
    assert!(
        r.stderr.contains(&format!("llm check: {flagged} of 50 checked record(s) flagged implausible ({share:.1}%)")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("kept (pass --llm-drop-flagged"), "{}", r.stderr);
    assert_eq!(read_csv(&f.path("s.csv")).len(), 50, "flagged records are kept by default");
    // The check prompt shows the text the model wrote for each record.
    let check = server.chats().into_iter().find(|c| purpose(&body(c)) == "plausibility_check").unwrap();
    assert!(records_in(&body(&check)).values().all(|v| v["CITY"].is_string()));
    let r = f.sample(&server, "d.csv", &["--rows", "50", "--llm-check", "--llm-drop-flagged", "--llm-no-cache"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(read_csv(&f.path("d.csv")).len(), 50 - flagged, "{}", r.stderr);
    assert!(
        privsynth(&["sample", path_str(&f.model), "-o", "x.csv", "--llm-drop-flagged"]).code == 2,
        "--llm-drop-flagged needs --llm-check"
    );
}

/// The Synthea schema with `rules` appended to its table.
fn schema_with(dir: &Path, rules: &str) -> PathBuf {
    let p = dir.join("schema.yaml");
    let text = std::fs::read_to_string(root().join(SCHEMA)).unwrap();
    std::fs::write(&p, format!("{text}    constraints:\n{rules}")).unwrap();
    p
}

#[test]
fn reviewed_constraints_are_enforced_when_sampling_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "      - {kind: order, before: BIRTHDATE, after: DEATHDATE, status: reviewed}\n\
                 \x20     - {kind: range, column: INCOME, min: 20000, status: reviewed}\n\
                 \x20     - {kind: forbid, when: {MARITAL: M, BIRTHDATE: [2010-01-01, 2025-12-31]}, status: reviewed}\n\
                 \x20     - {kind: forbid, when: {GENDER: F}}\n";
    let schema = schema_with(dir.path(), rules);
    let f = fitted_with(path_str(&schema));
    let out = f.path("s.csv");
    let r = privsynth(&["sample", path_str(&f.model), "-o", path_str(&out), "--rows", "400", "--seed", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = read_csv(&out);
    assert_eq!(rows.len(), 400);
    let (mut order, mut range, mut forbid) = (0, 0, 0);
    for r in &rows {
        // DEATHDATE may be drawn all-missing in 400 records and then left out (synthetic::conform).
        let (b, d) = (r["BIRTHDATE"].clone().unwrap(), r.get("DEATHDATE").cloned().flatten());
        order += d.as_ref().is_some_and(|d| *d < b) as usize;
        range += (r["INCOME"].as_ref().unwrap().parse::<i64>().unwrap() < 20_000) as usize;
        forbid += (r["MARITAL"].as_deref() == Some("M") && b.as_str() >= "2010-01-01") as usize;
    }
    assert_eq!((order, range, forbid), (0, 0, 0), "every record satisfies the reviewed rules");
    assert!(rows.iter().any(|r| r["GENDER"].as_deref() == Some("F")), "a proposed rule is not enforced");
    assert!(r.stderr.contains("constraints: 3 reviewed rule(s) enforced by rejection"), "{}", r.stderr);
    assert!(
        r.stderr.contains("constraint 2 (INCOME >= 20000)")
            && r.stderr.contains("not enforced because their status is not `reviewed`: 4 (forbid, proposed)"),
        "{}",
        r.stderr
    );
    // Without the rules the same model produces violations, so the enforcement is what removed them.
    let rate: f64 =
        r.stderr.split(" drawn records rejected (").nth(1).and_then(|s| s.split('%').next()).unwrap().parse().unwrap();
    assert!(rate > 1.0, "the rules rejected {rate}% of draws");
    // Rules no record can pass stop the run after the draw budget, with no output file.
    let never = schema_with(
        dir.path(),
        "      - {kind: forbid, when: {GENDER: F}, status: reviewed}\n      - {kind: forbid, when: {GENDER: M}, status: reviewed}\n",
    );
    let g = fitted_with(path_str(&never));
    let none = g.path("none.csv");
    let r = privsynth(&["sample", path_str(&g.model), "-o", path_str(&none), "--rows", "50", "--seed", "2"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("almost never satisfy: after 100000 draws only 0 of 50 records passed"), "{}", r.stderr);
    assert!(!none.exists());
    // A rule naming an unknown column or value is a schema error (exit 2) that names the rule.
    for (rule, needle) in [
        ("      - {kind: order, before: BIRTHDATE, after: DEATH, status: reviewed}\n", "constraint 1 (order"),
        (
            "      - {kind: range, column: INCOME, min: 0}\n      - {kind: forbid, when: {RACE: martian}}\n",
            "constraint 2 (forbid: never RACE = martian): \"martian\" is not a category",
        ),
        ("      - {kind: range, column: CITY, min: 0}\n", "not modelled"),
    ] {
        let bad = schema_with(dir.path(), rule);
        let r = privsynth(&[
            "fit",
            DATA,
            "--schema",
            path_str(&bad),
            "--epsilon",
            "1",
            "-o",
            path_str(&dir.path().join("x.json")),
            "--ledger",
            path_str(&dir.path().join("l.jsonl")),
        ]);
        assert_eq!(r.code, 2, "{rule}");
        assert!(r.stderr.contains(needle), "expected {needle:?} in {}", r.stderr);
    }
}

#[test]
fn llm_constraints_proposes_rules_for_review_and_turns_down_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeLlm::start();
    // The first rule of the answer carries a hallucinated value.
    server.script([Fault::OutOfDomain]);
    let out = dir.path().join("proposed.yaml");
    let transcript = dir.path().join("t.jsonl");
    let args = [
        "llm",
        "constraints",
        "--schema",
        SCHEMA,
        "-o",
        path_str(&out),
        "--llm-url",
        &server.url,
        "--llm-model",
        "fake-model",
        "--llm-no-cache",
        "--llm-transcript",
        path_str(&transcript),
    ];
    let r = privsynth(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let chats = server.chats();
    assert_eq!(chats.len(), 1, "one request");
    let b = body(&chats[0]);
    assert_eq!(purpose(&b), "constraint_proposals");
    let user = b.pointer("/messages/1/content").and_then(Value::as_str).unwrap();
    assert!(user.contains("MARITAL") && !user.contains("Differentially private statistics"), "from the schema alone");
    let schema = Schema::load(&out).unwrap();
    let t = schema.table(None).unwrap();
    let accepted: usize =
        r.stderr.split("llm constraints: ").nth(1).and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
    assert_eq!(t.constraints.len(), accepted);
    assert!(accepted >= 1, "{}", r.stderr);
    assert!(t.constraints.iter().all(|c| c.status() == RuleStatus::Proposed));
    assert!(
        r.stderr.contains("rejected (out_of_domain): rule 1"),
        "the hallucinated value is turned down: {}",
        r.stderr
    );
    assert!(std::fs::read_to_string(&out).unwrap().contains("# Proposed rules are NOT enforced"));
    // A rerun of the command on its own output skips what is already there.
    let again = dir.path().join("again.yaml");
    let mut args2 = args.to_vec();
    args2[3] = path_str(&out);
    args2[5] = path_str(&again);
    let r = privsynth(&args2);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let t2 = Schema::load(&again).unwrap().tables[0].constraints.clone();
    assert!(t.constraints.iter().all(|c| t2.contains(c)), "earlier proposals are kept");
    let user2 = body(&server.chats()[1]).pointer("/messages/1/content").and_then(Value::as_str).unwrap().to_string();
    assert_eq!(user2.contains("Rules already written"), accepted > 0, "the model is told what is there");
    // Without a server the command is a usage error.
    let r = privsynth(&["llm", "constraints", "--schema", SCHEMA]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("needs an LLM server"));
    // A schema with domains read from the data is never sent.
    let inferred = dir.path().join("inferred.yaml");
    assert_eq!(privsynth(&["schema", "infer", DATA, "-o", path_str(&inferred)]).code, 0);
    let n = server.chats().len();
    let r = privsynth(&[
        "llm",
        "constraints",
        "--schema",
        path_str(&inferred),
        "--llm-url",
        &server.url,
        "--llm-model",
        "fake-model",
        "--llm-no-cache",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("source: data") && r.stderr.contains("may not be sent to an LLM"), "{}", r.stderr);
    assert_eq!(server.chats().len(), n, "nothing was sent");
    // Nor may a fit that overrides the refusal of such domains feed the LLM stage; refused
    // before any budget is spent.
    let ledger = dir.path().join("l.jsonl");
    let r = privsynth(&[
        "synth",
        DATA,
        "--schema",
        path_str(&inferred),
        "--allow-data-domains",
        "--epsilon",
        "1",
        "-o",
        path_str(&dir.path().join("s.csv")),
        "--ledger",
        path_str(&ledger),
        "--llm-url",
        &server.url,
        "--llm-model",
        "fake-model",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--allow-data-domains cannot be combined with the LLM stage") && !ledger.exists(),
        "{}",
        r.stderr
    );
}

/// Unique markers planted in the real table: in a text column, in identifiers, and as a
/// numeric value.
const MARKERS: [&str; 5] = ["Zqxcanarytown", "Canaryfirst9931", "Canarylast7719", "999-00-4242", "4321987.65"];

/// Which markers occur in `text`.
fn leaks(text: &str) -> Vec<&'static str> {
    MARKERS.iter().copied().filter(|m| text.contains(m)).collect()
}

/// The Synthea table with the markers planted in a few rows.
fn planted(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join(DATA)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let header: Vec<String> = lines[0].split(',').map(str::to_owned).collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    for line in lines.iter_mut().skip(1).take(6) {
        let mut f: Vec<String> = line.split(',').map(str::to_owned).collect();
        f[col("CITY")] = MARKERS[0].into();
        f[col("FIRST")] = MARKERS[1].into();
        f[col("LAST")] = MARKERS[2].into();
        f[col("SSN")] = MARKERS[3].into();
        f[col("HEALTHCARE_EXPENSES")] = MARKERS[4].into();
        *line = f.join(",");
    }
    let p = dir.join("patients-canary.csv");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

/// Everything that left the process towards the LLM, or was written: request bodies (as the
/// server received them), the transcript, the outputs, the model file and the messages.
fn everything(server: &FakeLlm, files: &[&Path], runs: &[&Run]) -> String {
    let mut all: String = server.requests().iter().map(|r| format!("{} {}\n{}\n", r.method, r.path, r.body)).collect();
    for f in files {
        all += &std::fs::read_to_string(f).unwrap();
    }
    for r in runs {
        all += &r.stdout;
        all += &r.stderr;
    }
    all
}

#[test]
fn canary_markers_in_the_real_table_never_reach_the_llm() {
    let dir = tempfile::tempdir().unwrap();
    let data = planted(dir.path());
    // The markers are really in the input.
    assert_eq!(leaks(&std::fs::read_to_string(&data).unwrap()).len(), MARKERS.len());
    let server = FakeLlm::start();
    let ledger = dir.path().join("l.jsonl");
    let url = server.url.clone();
    let llm = ["--llm-url", url.as_str(), "--llm-model", "fake-model", "--llm-no-cache"];
    // 1. Constraint proposals from the schema.
    let proposed = dir.path().join("proposed.yaml");
    let c = privsynth(&[&["llm", "constraints", "--schema", SCHEMA, "-o", path_str(&proposed)][..], &llm].concat());
    assert_eq!(c.code, 0, "{}", c.stderr);
    // 2. The whole pipeline on the planted table: reviewed rules, text columns, the check.
    // Epsilon 4, not 1: AIM's one-way measurements of 111 records at epsilon 1 are noise, and
    // about 1 fit in 15 then put all its mass on deaths before births, which the reviewed rule
    // rightly refuses to sample (`synthetic::MIN_DRAW_BUDGET`). This test is about leaks.
    let schema =
        schema_with(dir.path(), "      - {kind: order, before: BIRTHDATE, after: DEATHDATE, status: reviewed}\n");
    let (out, model, transcript) = (dir.path().join("s.csv"), dir.path().join("m.json"), dir.path().join("t.jsonl"));
    let s = privsynth(
        &[
            &[
                "synth",
                path_str(&data),
                "--schema",
                path_str(&schema),
                "--epsilon",
                "4",
                "--mechanism",
                "aim",
                "--rows",
                "60",
                "-o",
                path_str(&out),
                "--model-out",
                path_str(&model),
            ][..],
            &["--ledger", path_str(&ledger), "--llm-check", "--llm-transcript", path_str(&transcript)],
            &llm,
        ]
        .concat(),
    );
    assert_eq!(s.code, 0, "{}", s.stderr);
    // The run did talk to the model about this table: columns, statistics, records.
    let chats = server.chats();
    assert!(chats.len() >= 13, "{} requests", chats.len());
    let bodies: String = chats.iter().map(|c| c.body.clone()).collect();
    for needle in [
        "HEALTHCARE_EXPENSES",
        "Differentially private statistics",
        "\"r60\"",
        "plausibility_check",
        "constraint_proposals",
        "BIRTHDATE <= DEATHDATE",
    ] {
        assert!(bodies.contains(needle), "requests lack {needle:?}");
    }
    let all = everything(&server, &[&transcript, &out, &model, &proposed], &[&c, &s]);
    assert!(leaks(&all).is_empty(), "markers of the real table left the boundary: {:?}", leaks(&all));
}

/// The canary check can fail: a builder that shows real records to the model (few-shot
/// prompting as CLLM does) is caught, and so is a schema whose "public" description was filled
/// from the data, the one channel the types cannot close.
#[test]
fn the_canary_check_catches_a_leaky_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let data = planted(dir.path());
    let server = FakeLlm::start();
    // A deliberately wrong builder: real rows as few-shot examples, sent as any client would.
    let real: Vec<String> = std::fs::read_to_string(&data).unwrap().lines().take(8).map(str::to_owned).collect();
    let leaky = serde_json::json!({
        "model": "fake-model",
        "messages": [{"role": "system", "content": format!("Here are example records:\n{}\nWrite a new one.", real.join("\n"))}, {"role": "user", "content": "{}"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "row", "strict": true, "schema": {"type": "object", "properties": {"CITY": {"type": "string"}}, "required": ["CITY"], "additionalProperties": false}}}
    });
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let resp = agent
        .post(&format!("{}/chat/completions", server.url))
        .header("Content-Type", "application/json")
        .send(leaky.to_string().as_str())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(leaks(&everything(&server, &[], &[])).len(), MARKERS.len(), "the leaky builder is caught");
    // A schema description pasted from the data goes out with every prompt, and is caught.
    let server = FakeLlm::start();
    let text = std::fs::read_to_string(root().join(SCHEMA)).unwrap().replace(
        "description: Gender - M = male, F = female.",
        &format!("description: Gender - M = male, F = female (e.g. {} of {}).", MARKERS[1], MARKERS[0]),
    );
    let schema = dir.path().join("leaky.yaml");
    std::fs::write(&schema, text).unwrap();
    let out = dir.path().join("s.csv");
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
        "10",
        "-o",
        path_str(&out),
        "--ledger",
        path_str(&dir.path().join("l.jsonl")),
        "--llm-url",
        &server.url,
        "--llm-model",
        "fake-model",
        "--llm-no-cache",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(leaks(&everything(&server, &[], &[])), vec![MARKERS[0], MARKERS[1]]);
}

#[test]
fn the_api_key_is_sent_as_a_bearer_token_and_never_stored() {
    let f = fitted();
    let server = FakeLlm::start();
    let (out, transcript, cache) = (f.path("s.csv"), f.path("t.jsonl"), f.path("cache"));
    let o = Command::new(env!("CARGO_BIN_EXE_privsynth"))
        .args([
            "sample",
            path_str(&f.model),
            "-o",
            path_str(&out),
            "--rows",
            "12",
            "--llm-cache",
            path_str(&cache),
            "--llm-transcript",
            path_str(&transcript),
        ])
        .current_dir(root())
        .env("PRIVSYNTH_LLM_URL", &server.url)
        .env("PRIVSYNTH_LLM_MODEL", "fake-model")
        .env("PRIVSYNTH_LLM_API_KEY", "sk-secret-canary-123")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let reqs = server.requests();
    assert!(
        reqs.len() >= 3 && reqs.iter().all(|r| r.authorization.as_deref() == Some("Bearer sk-secret-canary-123")),
        "models listing and chats carry the key"
    );
    let mut stored = std::fs::read_to_string(&transcript).unwrap() + &stderr;
    for e in walk(&cache) {
        stored += &std::fs::read_to_string(e).unwrap();
    }
    assert!(!stored.contains("sk-secret-canary-123"), "the key leaked into a transcript, cache entry or message");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
