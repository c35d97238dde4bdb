//! Private Evolution's mechanics on a generated corpus with a known topic mix: does PE move the
//! synthetic notes' topic distribution towards the real one, over iterations, at epsilon 1-4,
//! against schema-only generation (no PE)?
//!
//! Real notes: 8 words each, from one of 4 topics (mix 0.50 / 0.30 / 0.15 / 0.05), each word
//! from the note's topic with probability 0.8 and from a generic list otherwise; 2,000 notes
//! (rows, one per privacy unit) vote, 1,000 more are held out. 200 synthetic records. The "LLM" is the loopback fake of the test suite
//! (tests/common/fake_llm.rs): a fresh text is 8 words drawn uniformly from all topic and
//! generic words (so schema-only text is topic-mixed), a variation keeps each word of its
//! parent with probability 0.7. Votes use privsynth's local lexical embedding.
//!
//! Measured on the synthetic notes against the held-out notes: the total-variation distance
//! between topic distributions (each note assigned to the topic with most of its words, ties
//! split), and the distance between mean lexical embeddings (a linear-kernel MMD). Medians of
//! `--repeats` runs (default 5), each with fresh DP noise.
//!
//! `cargo bench --profile dev --bench pe_topics -- [--repeats N]`

#[path = "../tests/common/fake_llm.rs"]
mod fake_llm;

use clap::Parser;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use privsynth::llm::embed::{HASHED_DIM, hashed};

const TOPICS: [[&str; 8]; 4] = [
    ["chest", "pain", "cardiology", "ecg", "angina", "troponin", "palpitations", "statin"],
    ["child", "vaccination", "growth", "wellness", "milestones", "infant", "immunization", "pediatric"],
    ["fracture", "cast", "xray", "orthopedic", "sprain", "splint", "bone", "ankle"],
    ["rash", "eczema", "cream", "skin", "itching", "lesion", "dermatitis", "topical"],
];
const GENERIC: [&str; 6] = ["patient", "seen", "today", "follow", "plan", "reviewed"];
const MIX: [f64; 4] = [0.50, 0.30, 0.15, 0.05];
/// Real notes that vote (one per row, so one per privacy unit).
const VOTERS: usize = 2000;

fn note(rng: &mut StdRng) -> String {
    let mut x = rng.random::<f64>();
    let mut t = 0;
    while t < 3 && x >= MIX[t] {
        x -= MIX[t];
        t += 1;
    }
    (0..8)
        .map(|_| {
            if rng.random::<f64>() < 0.8 { TOPICS[t][rng.random_range(0..8)] } else { GENERIC[rng.random_range(0..6)] }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Topic shares of notes (each note to its majority topic; ties split).
fn topics(notes: &[String]) -> [f64; 4] {
    let mut d = [0.0; 4];
    for n in notes {
        let mut c = [0usize; 4];
        for w in n.split_whitespace() {
            for (t, words) in TOPICS.iter().enumerate() {
                if words.contains(&w) {
                    c[t] += 1;
                }
            }
        }
        let m = *c.iter().max().unwrap_or(&0);
        let tied: Vec<usize> = (0..4).filter(|&t| c[t] == m).collect();
        for t in &tied {
            d[*t] += 1.0 / tied.len() as f64;
        }
    }
    let n = notes.len().max(1) as f64;
    d.map(|x| x / n)
}

fn tv(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / 2.0
}

fn mean_embedding(notes: &[String]) -> Vec<f64> {
    let mut m = vec![0.0; HASHED_DIM];
    for n in notes {
        for (x, e) in m.iter_mut().zip(hashed(n)) {
            *x += e as f64;
        }
    }
    m.iter().map(|x| x / notes.len().max(1) as f64).collect()
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One `synth` run; the synthetic notes.
fn run(dir: &std::path::Path, server: &fake_llm::FakeLlm, pe: Option<(f64, usize)>, k: usize) -> Vec<String> {
    let out = dir.join(format!("o{k}.csv"));
    let mut args: Vec<String> = [
        "privsynth",
        "-q",
        "synth",
        "",
        "--schema",
        "",
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "--rows",
        "200",
        "-o",
        "",
        "--ledger",
        "",
        "--llm-url",
        "",
        "--llm-model",
        "fake",
        "--llm-no-cache",
        "--llm-batch",
        "10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args[3] = dir.join("real.csv").display().to_string();
    args[5] = dir.join("s.yaml").display().to_string();
    args[13] = out.display().to_string();
    args[15] = dir.join(format!("l{k}.jsonl")).display().to_string();
    args[17] = server.url.clone();
    if let Some((eps, t)) = pe {
        args.extend(["--llm-pe-epsilon".into(), eps.to_string(), "--llm-pe-iterations".into(), t.to_string()]);
    }
    let cli = privsynth::cli::Cli::try_parse_from(&args).expect("arguments");
    let code = privsynth::cli::run(cli).expect("synth runs");
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&out).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_once(',').map(|x| x.1.trim_matches('"').to_string()))
        .filter(|n| !n.is_empty())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeats: usize = args
        .iter()
        .position(|a| a == "--repeats")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(2026);
    let wards = ["a", "b", "c"];
    let mut csv = String::from("ward,note\n");
    for _ in 0..VOTERS {
        csv += &format!("{},{}\n", wards[rng.random_range(0..3)], note(&mut rng));
    }
    std::fs::write(dir.path().join("real.csv"), csv).unwrap();
    let held: Vec<String> = (0..1000).map(|_| note(&mut rng)).collect();
    std::fs::write(
        dir.path().join("s.yaml"),
        "version: 1\ntables:\n  - name: notes\n    columns:\n      - {name: ward, type: categorical, domain: {categories: [a, b, c]}}\n      - {name: note, type: text, description: \"Clinical note.\", llm: {max_chars: 120}}\n",
    )
    .unwrap();
    let server = fake_llm::FakeLlm::start();
    let vocab: Vec<&str> = TOPICS.iter().flatten().chain(GENERIC.iter()).copied().collect();
    server.set_words(&vocab, 8, 8);
    let (held_topics, held_mean) = (topics(&held), mean_embedding(&held));
    println!(
        "held-out topic shares {:.3?}; the {VOTERS} voting notes: {:.3?}",
        held_topics,
        topics(
            &std::fs::read_to_string(dir.path().join("real.csv"))
                .unwrap()
                .lines()
                .skip(1)
                .map(|l| l.split_once(',').unwrap().1.to_string())
                .collect::<Vec<_>>()
        )
    );
    println!("| epsilon (PE) | iterations | topic TV to held-out | mean-embedding distance | top-topic share |");
    println!("|---|---|---|---|---|");
    let mut k = 0;
    let mut measure = |pe: Option<(f64, usize)>| {
        let (mut tvs, mut ds, mut top) = (vec![], vec![], vec![]);
        for _ in 0..repeats {
            k += 1;
            let notes = run(dir.path(), &server, pe, k);
            let t = topics(&notes);
            tvs.push(tv(&t, &held_topics));
            ds.push(dist(&mean_embedding(&notes), &held_mean));
            top.push(t[0]);
        }
        let (e, it) =
            pe.map_or(("none (schema only)".to_string(), "0".to_string()), |(e, t)| (format!("{e}"), t.to_string()));
        println!("| {e} | {it} | {:.3} | {:.3} | {:.2} |", median(tvs), median(ds), median(top));
    };
    // The floor: 200 notes drawn from the real distribution itself.
    let (mut tvs, mut ds) = (vec![], vec![]);
    for _ in 0..repeats {
        let real: Vec<String> = (0..200).map(|_| note(&mut rng)).collect();
        tvs.push(tv(&topics(&real), &held_topics));
        ds.push(dist(&mean_embedding(&real), &held_mean));
    }
    println!("| (200 real notes: sampling floor) | - | {:.3} | {:.3} | - |", median(tvs), median(ds));
    let started = std::time::Instant::now();
    measure(None);
    for eps in [1.0, 2.0, 4.0] {
        for t in [1, 2, 3, 5] {
            measure(Some((eps, t)));
        }
    }
    eprintln!("pe_topics: {} runs in {:.0} s", 13 * repeats, started.elapsed().as_secs_f64());
}
