//! Private Evolution of text columns (`synth --llm-pe-epsilon`) against the loopback fake
//! server: the real notes are embedded locally and only counted, the prompts hold only the
//! schema, DP statistics, synthetic records and earlier synthetic texts (canary markers planted
//! in the real notes never reach a request, the transcript, the output, the ledger or a
//! message), the release is in the ledger with the accountant's scale and cost, and an
//! embedding server off this machine is refused before anything is spent. The fake's answers
//! are noise: nothing here is a quality result (benchmarks/pe_topics.rs measures the mechanics).

mod common;
#[path = "common/fake_llm.rs"]
mod fake_llm;

use std::path::{Path, PathBuf};

use common::{path_str, privsynth};
use fake_llm::FakeLlm;
use serde_json::Value;

const SCHEMA: &str = r#"
version: 1
tables:
  - name: visits
    columns:
      - {name: ward, type: categorical, domain: {categories: [cardio, peds, ortho, derm]}}
      - {name: note, type: text, description: "Clinical note of the visit.", llm: {max_chars: 120}}
"#;

const MARKERS: [&str; 2] = ["Canarynote5521", "Zqxmarkerword"];

fn leaks(text: &str) -> Vec<&'static str> {
    MARKERS.iter().copied().filter(|m| text.contains(m)).collect()
}

const TOPICS: [[&str; 4]; 4] = [
    ["chest", "pain", "cardiology", "ecg"],
    ["child", "vaccination", "growth", "wellness"],
    ["fracture", "cast", "xray", "ortho"],
    ["rash", "eczema", "cream", "skin"],
];

/// A table of 200 visits whose notes are topic words, markers in 10 of them.
fn data(dir: &Path) -> (PathBuf, PathBuf) {
    let schema = dir.join("s.yaml");
    std::fs::write(&schema, SCHEMA).unwrap();
    let wards = ["cardio", "peds", "ortho", "derm"];
    let mut csv = String::from("ward,note\n");
    for i in 0..200 {
        let t = [0, 0, 0, 1, 1, 2, 3][i % 7];
        let mut words: Vec<&str> = (0..6).map(|j| TOPICS[t][(i + j) % 4]).collect();
        if i % 20 == 3 {
            words.push(MARKERS[(i / 20) % 2]);
        }
        csv += &format!("{},{}\n", wards[t], words.join(" "));
    }
    let p = dir.join("visits.csv");
    std::fs::write(&p, csv).unwrap();
    (p, schema)
}

fn everything(server: &FakeLlm, files: &[&Path], stderr: &str, only_chats: bool) -> String {
    let mut all: String = server
        .requests()
        .iter()
        .filter(|r| !only_chats || r.path.ends_with("/chat/completions"))
        .map(|r| format!("{} {}\n{}\n", r.method, r.path, r.body))
        .collect();
    for f in files {
        all += &std::fs::read_to_string(f).unwrap();
    }
    all + stderr
}

#[test]
fn pe_learns_from_real_notes_through_votes_only_and_is_in_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let (data, schema) = data(dir.path());
    assert_eq!(leaks(&std::fs::read_to_string(&data).unwrap()).len(), 2);
    let server = FakeLlm::start();
    let (out, transcript, ledger) = (dir.path().join("o.csv"), dir.path().join("t.jsonl"), dir.path().join("l.jsonl"));
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
        "30",
        "-o",
        path_str(&out),
        "--ledger",
        path_str(&ledger),
        "--llm-url",
        &server.url,
        "--llm-model",
        "fake-model",
        "--llm-no-cache",
        "--llm-transcript",
        path_str(&transcript),
        "--llm-pe-epsilon",
        "2",
        "--llm-pe-iterations",
        "2",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("llm pe: Private Evolution of note over 2 iteration(s), epsilon 2.000"), "{}", r.stderr);

    // The prompts: schema-only candidates first, then variations whose earlier texts are all
    // answers the server gave before (synthetic), never real notes.
    let chats = server.chats();
    let mut answers: Vec<String> = vec![];
    let mut variations = 0;
    for c in &chats {
        let b: Value = serde_json::from_str(&c.body).unwrap();
        let user = b.pointer("/messages/1/content").and_then(Value::as_str).unwrap();
        if let Some(at) = user.find("Earlier texts to vary (synthetic, id: text):") {
            variations += 1;
            let parents: serde_json::Map<String, Value> = serde_json::from_str(user[at + 44..].trim()).unwrap();
            for p in parents.values() {
                let p = p.as_str().unwrap();
                assert!(
                    answers.iter().any(|a| a.contains(&serde_json::to_string(p).unwrap())),
                    "an earlier text that the model never wrote: {p:?}"
                );
            }
        }
        answers.push(c.answer.clone().unwrap_or_default());
    }
    assert!(variations >= 2 * 3, "two rounds of variations of 30 records in batches of 10: {variations}");

    // The ledger: the fit and the PE release on the same dataset, PE's costs as planned.
    let entries: Vec<Value> =
        std::fs::read_to_string(&ledger).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["dataset"]["fingerprint"], entries[1]["dataset"]["fingerprint"]);
    let costs = entries[1]["mechanisms"].as_array().unwrap();
    assert_eq!(costs.len(), 2);
    let rho_pe = privsynth_privacy::accountant::rho_for(2.0, 1e-9); // the default --delta
    let scale = privsynth_privacy::mechanisms::gaussian_scale(rho_pe / 2.0, 1).unwrap();
    for (t, c) in costs.iter().enumerate() {
        assert_eq!(c["label"], format!("private evolution votes note iteration {}", t + 1));
        assert_eq!((c["mechanism"].as_str(), c["sensitivity"].as_f64()), (Some("discrete_gaussian"), Some(1.0)));
        assert!((c["scale"].as_f64().unwrap() - scale).abs() < 1e-9, "{c}");
        // rho = 1 / (2 sigma^2) for sensitivity 1 (CKS20); OpenDP's map rounds conservatively
        // (upwards), by about 1e-6 relative here.
        let exact = 1.0 / (2.0 * scale * scale);
        let rho = c["rho"].as_f64().unwrap();
        assert!(rho >= exact * (1.0 - 1e-12) && rho < exact * (1.0 + 1e-4), "{c}");
    }
    assert!((entries[1]["rho"].as_f64().unwrap() - rho_pe).abs() < 1e-6 * rho_pe, "{} vs {rho_pe}", entries[1]["rho"]);
    assert!(r.stderr.contains(&format!("noise sd {scale:.2}")), "{}", r.stderr);
    // Composed with the fit: the ledger's total over both entries, in zCDP.
    let total = entries[0]["rho"].as_f64().unwrap() + entries[1]["rho"].as_f64().unwrap();
    let eps = privsynth_privacy::accountant::epsilon_for(total, 1e-9);
    assert!(
        r.stderr.contains(&format!("rho {total:.6} over 2 release(s), epsilon {eps:.3} at delta 1.0e-9")),
        "{}",
        r.stderr
    );

    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written.lines().count(), 31);
    let all = everything(&server, &[&transcript, &out, &ledger], &r.stderr, false);
    assert!(leaks(&all).is_empty(), "markers of the real notes left the boundary: {:?}", leaks(&all));
}

#[test]
fn a_loopback_embedding_server_gets_the_real_notes_the_llm_never_does() {
    let dir = tempfile::tempdir().unwrap();
    let (data, schema) = data(dir.path());
    let (llm, embed) = (FakeLlm::start(), FakeLlm::start());
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
        "12",
        "-o",
        path_str(&out),
        "--ledger",
        path_str(&dir.path().join("l.jsonl")),
        "--llm-url",
        &llm.url,
        "--llm-model",
        "fake-model",
        "--llm-no-cache",
        "--llm-pe-epsilon",
        "1",
        "--llm-pe-iterations",
        "1",
        "--llm-pe-embed-url",
        &embed.url,
        "--llm-pe-embed-model",
        "emb",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("embeddings: {}/embeddings (model emb, on this machine)", embed.url)),
        "{}",
        r.stderr
    );
    // The check can fail: the embedding server did receive the markers...
    assert_eq!(leaks(&everything(&embed, &[], "", false)).len(), 2, "the real notes were embedded by the local server");
    // ...and the LLM server none of them.
    assert!(leaks(&everything(&llm, &[&out], &r.stderr, false)).is_empty());
}

#[test]
fn pe_option_errors_come_before_any_budget_is_spent() {
    let dir = tempfile::tempdir().unwrap();
    let (data, schema) = data(dir.path());
    let server = FakeLlm::start();
    let (ledger, out) = (dir.path().join("l.jsonl"), dir.path().join("o.csv"));
    let base = [
        "synth",
        path_str(&data),
        "--schema",
        path_str(&schema),
        "--epsilon",
        "1",
        "-o",
        path_str(&out),
        "--ledger",
        path_str(&ledger),
    ];
    for (extra, msg) in [
        (
            vec![
                "--llm-url",
                server.url.as_str(),
                "--llm-model",
                "m",
                "--llm-pe-epsilon",
                "1",
                "--llm-pe-embed-url",
                "http://10.1.2.3:8081/v1",
            ],
            "is not on this machine",
        ),
        (
            vec!["--llm-url", server.url.as_str(), "--llm-model", "m", "--llm-pe-epsilon", "0"],
            "--llm-pe-epsilon must be positive",
        ),
        (
            vec![
                "--llm-url",
                server.url.as_str(),
                "--llm-model",
                "m",
                "--llm-pe-epsilon",
                "1",
                "--llm-pe-iterations",
                "0",
            ],
            "--llm-pe-iterations must be between",
        ),
        (vec!["--llm-pe-epsilon", "1"], "--llm-pe-epsilon needs an LLM server"),
    ] {
        let r = privsynth(&[&base[..], &extra].concat());
        assert_eq!(r.code, 2, "{extra:?}: {}", r.stderr);
        assert!(r.stderr.contains(msg) && !ledger.exists(), "{extra:?}: {}", r.stderr);
    }
    // A table without a text column: nothing to learn, refused before the fit.
    let plain = dir.path().join("plain.yaml");
    std::fs::write(
        &plain,
        SCHEMA.replace(
            "      - {name: note, type: text, description: \"Clinical note of the visit.\", llm: {max_chars: 120}}\n",
            "",
        ),
    )
    .unwrap();
    let r = privsynth(&[
        "synth",
        path_str(&data),
        "--schema",
        path_str(&plain),
        "--epsilon",
        "1",
        "-o",
        path_str(&out),
        "--ledger",
        path_str(&ledger),
        "--llm-url",
        &server.url,
        "--llm-model",
        "m",
        "--llm-pe-epsilon",
        "1",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("has no text column") && !ledger.exists(), "{}", r.stderr);
    assert!(server.chats().is_empty(), "nothing was asked");
}

/// Majority-topic shares of notes (ties split), over `TOPICS`.
fn topic_shares(notes: &[String]) -> [f64; 4] {
    let mut d = [0.0; 4];
    for n in notes {
        let c: Vec<usize> = TOPICS.iter().map(|t| n.split_whitespace().filter(|w| t.contains(w)).count()).collect();
        let m = *c.iter().max().unwrap();
        let tied: Vec<usize> = (0..4).filter(|&t| c[t] == m).collect();
        for t in &tied {
            d[*t] += 1.0 / tied.len() as f64;
        }
    }
    d.map(|x| x / notes.len().max(1) as f64)
}

/// One synth run on 1,000 real notes of mix 0.7 / 0.1 / 0.1 / 0.1, with or without PE at
/// epsilon 8 over 3 iterations; the total variation between the synthetic notes' topic shares
/// and the real mix.
fn topic_tv(pe: bool, k: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("s.yaml");
    std::fs::write(&schema, SCHEMA).unwrap();
    let mut csv = String::from("ward,note\n");
    for i in 0..1000 {
        let t = if i % 10 < 7 { 0 } else { i % 10 - 6 };
        csv +=
            &format!("cardio,{}\n", (0..6).map(|j| TOPICS[t][(i * 7 + j * 3 + k) % 4]).collect::<Vec<_>>().join(" "));
    }
    let data = dir.path().join("v.csv");
    std::fs::write(&data, csv).unwrap();
    let server = FakeLlm::start();
    let vocab: Vec<&str> = TOPICS.iter().flatten().copied().collect();
    server.set_words(&vocab, 6, 6);
    let (out, ledger) = (dir.path().join("o.csv"), dir.path().join("l.jsonl"));
    let mut args = vec![
        "synth",
        path_str(&data),
        "--schema",
        path_str(&schema),
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "--rows",
        "100",
        "-o",
        path_str(&out),
        "--ledger",
        path_str(&ledger),
        "--llm-url",
        &server.url,
        "--llm-model",
        "fake-model",
        "--llm-no-cache",
        "-q",
    ];
    if pe {
        args.extend(["--llm-pe-epsilon", "8", "--llm-pe-iterations", "3"]);
    }
    let r = privsynth(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let notes: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split_once(',').unwrap().1.to_string())
        .collect();
    let s = topic_shares(&notes);
    let real = [0.7, 0.1, 0.1, 0.1];
    s.iter().zip(real).map(|(a, b)| (a - b).abs()).sum::<f64>() / 2.0
}

/// PE moves the synthetic topic mix towards the real one. Schema-only text from the fake is
/// uniform over topics; PE at epsilon 8 over 3 iterations brings it close to the real mix.
/// Calibration (`topic_tv_calibration`, 20 runs each, 2026-11-30): schema-only TV mean 0.440
/// (sd 0.041), PE mean 0.054 (sd 0.021); the difference has mean 0.386 and sd 0.046, so the
/// threshold 0.15 is 5.1 sd below it: a false failure has probability about 2e-7 (normal
/// approximation).
#[test]
fn pe_moves_the_topic_mix_towards_the_real_notes() {
    let (base, pe) = (topic_tv(false, 0), topic_tv(true, 0));
    assert!(base - pe > 0.15, "schema-only TV {base:.3}, PE TV {pe:.3}");
}

#[test]
#[ignore = "calibration of pe_moves_the_topic_mix_towards_the_real_notes: cargo test --test cli_llm_pe -- --ignored --nocapture"]
fn topic_tv_calibration() {
    for pe in [false, true] {
        let v: Vec<f64> = (0..20).map(|k| topic_tv(pe, k)).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
        eprintln!(
            "pe {pe}: mean TV {m:.3}, sd {sd:.3}, min {:.3}, max {:.3}",
            v.iter().cloned().fold(f64::MAX, f64::min),
            v.iter().cloned().fold(f64::MIN, f64::max)
        );
    }
}
