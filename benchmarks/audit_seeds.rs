//! Do the audit's verdicts flip with the seed? Every default gate on the five Adult sanity sets,
//! for seeds 0-9, at the default `--attacks` and at 500.
//!
//! The sets (bundled UCI Adult): train and holdout = `data/adult/adult.csv` shuffled and split
//! 50/50; a fresh real sample = the first rows of `data/adult/adult_test.csv` (people in neither);
//! a copy of train; 10% copied train rows + 90% independently resampled columns; independently
//! resampled columns; and an AIM epsilon-1 output of `privsynth synth` on train (DP noise is not
//! seeded, so each build of the sets has its own AIM output). The expectation: fresh
//! sample and AIM pass, copy and 10% copy fail, each gate with the same verdict for every seed.
//!
//! `cargo bench --bench audit_seeds -- [--dir DIR] [--seeds N] [--attacks 2000,500] [--sets a,b]`
//! DIR keeps the sets (built once; delete it to rebuild); the default is a temporary folder.
//! Prints, per set and gate, the verdicts over the seeds and the range of the gated value, and
//! the detection AUCs; exits 1 when a gate's verdict changed with the seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use privsynth::data;
use privsynth::evaluate::{self, frame::Frames};
use privsynth::report::{Report, gates};
use privsynth::schema::Schema;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

const SETS: [&str; 5] = ["fresh", "aim", "copy", "copied10", "independent"];

fn write(dir: &Path, name: &str, header: &str, rows: &[String]) {
    std::fs::write(dir.join(name), format!("{header}\n{}\n", rows.join("\n"))).expect("write");
}

/// Build the sets into `dir` unless they are there.
fn build(dir: &Path, root: &Path) {
    if dir.join("aim.csv").exists() {
        return;
    }
    std::fs::create_dir_all(dir).expect("dir");
    let text = std::fs::read_to_string(root.join("data/adult/adult.csv")).expect("bundled Adult");
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let mut rows: Vec<String> = lines.filter(|l| !l.is_empty()).map(str::to_string).collect();
    rows.shuffle(&mut rand::rngs::StdRng::seed_from_u64(11));
    let h = rows.len() / 2;
    let (train, hold) = (rows[..h].to_vec(), rows[h..2 * h].to_vec());
    write(dir, "train.csv", &header, &train);
    write(dir, "holdout.csv", &header, &hold);
    let test = std::fs::read_to_string(root.join("data/adult/adult_test.csv")).expect("bundled Adult test split");
    let fresh: Vec<String> = test.lines().skip(1).filter(|l| !l.is_empty()).take(h).map(str::to_string).collect();
    write(dir, "fresh.csv", &header, &fresh);
    let cells: Vec<Vec<&str>> = train.iter().map(|r| r.split(',').collect()).collect();
    let d = cells[0].len();
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let indep: Vec<String> = (0..train.len())
        .map(|_| (0..d).map(|c| cells[rng.random_range(0..cells.len())][c]).collect::<Vec<_>>().join(","))
        .collect();
    write(dir, "independent.csv", &header, &indep);
    let k = train.len() / 10;
    let mut pick = train.clone();
    pick.shuffle(&mut rng);
    let mut copied: Vec<String> = pick[..k].to_vec();
    copied.extend(indep[..train.len() - k].iter().cloned());
    write(dir, "copied10.csv", &header, &copied);
    write(dir, "copy.csv", &header, &train);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_privsynth"))
        .args(["synth", "train.csv", "--schema"])
        .arg(root.join("schemas/adult.yaml"))
        .args(["--epsilon", "1", "-o", "aim.csv", "--ledger", "ledger.jsonl", "--seed", "1", "-q"])
        .current_dir(dir)
        .output()
        .expect("run privsynth synth");
    assert!(out.status.success(), "privsynth synth failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = opt("--dir").map(PathBuf::from).unwrap_or_else(|| tmp.path().join("sets"));
    let seeds: u64 = opt("--seeds").and_then(|s| s.parse().ok()).unwrap_or(10);
    let attacks: Vec<usize> = opt("--attacks")
        .map(|s| s.split(',').filter_map(|a| a.parse().ok()).collect())
        .unwrap_or_else(|| vec![evaluate::Options::default().attacks, 500]);
    let sets: Vec<String> = opt("--sets")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_else(|| SETS.iter().map(|s| s.to_string()).collect());
    build(&dir, &root);

    let schema = Schema::load(&root.join("schemas/adult.yaml")).expect("schema");
    let table = schema.table(None).expect("table").clone();
    let read = |n: &str| data::read_for_table(&dir.join(n), &table).expect("read");
    let (train, hold) = (read("train.csv"), read("holdout.csv"));
    let (gate_list, src) = gates::load(None).expect("gates");
    let mut flips = 0;
    for set in &sets {
        let frames = Frames::load(&table, &train, &hold, &read(&format!("{set}.csv"))).expect("load");
        for &n in &attacks {
            // gate -> (passes, fails, skipped, min, max)
            let mut table: BTreeMap<String, (usize, usize, usize, f64, f64)> = BTreeMap::new();
            let mut verdicts = (0, 0);
            let mut extra: Vec<String> = Vec::new();
            let t0 = Instant::now();
            for seed in 0..seeds {
                let audit = evaluate::run(&frames, &evaluate::Options { seed, attacks: n, ..Default::default() })
                    .expect("audit");
                let r = Report::new(audit, &gate_list, src.clone()).expect("report");
                if r.passed() {
                    verdicts.0 += 1
                } else {
                    verdicts.1 += 1
                }
                for g in &r.gates {
                    let e = table.entry(g.gate.metric.clone()).or_insert((0, 0, 0, f64::INFINITY, f64::NEG_INFINITY));
                    match g.status {
                        gates::Status::Pass => e.0 += 1,
                        gates::Status::Fail => e.1 += 1,
                        gates::Status::Skipped => e.2 += 1,
                    }
                    if let Some(v) = g.value {
                        e.3 = e.3.min(v);
                        e.4 = e.4.max(v);
                    }
                }
                let a = &r.audit;
                let so = &a.reidentification.singling_out_multivariate;
                extra.push(format!(
                    "seed {seed}: detection AUC {:.4} (holdout {:.4}, iterations {:?}); multivariate singling out {} predicates, risk {:?} [{:?}, {:?}]; inference risk {:?} [{:?}]",
                    a.fidelity.detection_auc.synthetic.unwrap_or(f64::NAN),
                    a.fidelity.detection_auc.holdout.unwrap_or(f64::NAN),
                    a.fidelity.detection.synthetic.iterations,
                    so.predicates,
                    so.result.risk,
                    so.result.risk_ci_low,
                    so.result.risk_ci_high,
                    a.reidentification.inference.as_ref().and_then(|i| i.result.risk),
                    a.reidentification.inference.as_ref().and_then(|i| i.result.risk_ci_low),
                ));
            }
            println!(
                "== {set}, --attacks {n}: verdict pass {} / fail {} over {seeds} seeds ({:.1} s per audit)",
                verdicts.0,
                verdicts.1,
                t0.elapsed().as_secs_f64() / seeds as f64
            );
            for (metric, (p, f, s, lo, hi)) in &table {
                let stable = [*p, *f, *s].iter().filter(|&&c| c > 0).count() == 1;
                if !stable {
                    flips += 1;
                }
                println!(
                    "  {} {metric:<55} pass {p:>2} fail {f:>2} skipped {s:>2}  value {lo:.4} .. {hi:.4}",
                    if stable { " " } else { "!" }
                );
            }
            if std::env::var_os("AUDIT_SEEDS_VERBOSE").is_some() {
                extra.iter().for_each(|l| println!("    {l}"));
            } else if let Some(l) = extra.first() {
                println!("    {l}");
            }
        }
    }
    println!("{flips} gate(s) changed verdict with the seed");
    if flips > 0 {
        std::process::exit(1);
    }
}
