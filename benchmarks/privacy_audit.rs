//! The pipeline-level privacy audit at length: thousands of in-process `synth` runs on
//! neighbouring datasets with a worst-case unit, for MST and AIM on a single table and MST on
//! linked tables, each reduced to a Clopper-Pearson lower bound on epsilon (at 95% and at
//! 1 - 1e-6 confidence) beside the claim. The suite's `tests/privacy_pipeline.rs` is the short
//! version of the single-table case.
//!
//! `cargo bench --bench privacy_audit -- [--runs N] [--only table|ignored|linked]` (default 1000
//! per dataset and case, every case).

use std::time::Instant;

use polars::prelude::*;
use privsynth::data::RawTable;
use privsynth::ehr;
use privsynth::mechanism::Mechanism;
use privsynth::pipeline::linked::LinkedPlan;
use privsynth::pipeline::{FitOptions, Plan};
use privsynth::privacy_audit::{count_value, neighbour_runs, synth_linked, synth_table};
use privsynth::schema::Schema;
use privsynth_privacy::audit::epsilon_lower_bound;
use rand::{RngExt, SeedableRng};

const DELTA: f64 = 1e-9;

const TABLE: &str = "version: 1
tables:
  - name: t
    privacy_unit: pid
    rows_per_unit: 2
    columns:
      - {name: pid, type: identifier, role: identifier}
      - {name: a, type: categorical, domain: {categories: [a0, a1, a2, rare]}}
      - {name: b, type: categorical, domain: {categories: [b0, b1, b2]}}
      - {name: c, type: categorical, domain: {categories: [c0, c1]}}
";

const LINKED: &str = "version: 1
person: {table: persons, key: pid}
tables:
  - name: persons
    primary_key: pid
    columns:
      - {name: pid, type: identifier, role: identifier}
      - {name: sex, type: categorical, domain: {categories: [F, M]}}
  - name: events
    foreign_keys: [{column: pid, references: persons}]
    events: {rows_per_person: 5, time: day, count_bins: 5}
    columns:
      - {name: pid, type: identifier, role: identifier}
      - {name: day, type: date, out_of_domain: clip, domain: {bounds: ['2020-01-01', '2020-12-31'], granularity: month}}
      - {name: kind, type: categorical, domain: {categories: [k0, k1, k2, rare]}}
";

fn table(units: usize, canary_rows: usize) -> RawTable {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let (mut pid, mut a, mut b, mut c) = (vec![], vec![], vec![], vec![]);
    for u in 0..units {
        for _ in 0..rng.random_range(1..=2) {
            pid.push(format!("p{u}"));
            a.push(format!("a{}", rng.random_range(0..3)));
            b.push(format!("b{}", rng.random_range(0..3)));
            c.push(format!("c{}", rng.random_range(0..2)));
        }
    }
    for _ in 0..canary_rows {
        pid.push("canary".into());
        a.push("rare".into());
        b.push("b0".into());
        c.push("c0".into());
    }
    RawTable::in_memory("t.csv", df!["pid" => pid, "a" => a, "b" => b, "c" => c].unwrap())
}

/// Persons with 1..=8 events each; the canary has `canary_events` events, all of the rare kind.
fn linked_folder(dir: &std::path::Path, persons: usize, canary_events: usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    std::fs::create_dir_all(dir).unwrap();
    let mut p = String::from("pid,sex\n");
    let mut e = String::from("pid,day,kind\n");
    for i in 0..persons {
        p.push_str(&format!("p{i},{}\n", ["F", "M"][rng.random_range(0..2)]));
        for _ in 0..rng.random_range(1..=8) {
            e.push_str(&format!(
                "p{i},2020-{:02}-{:02},k{}\n",
                rng.random_range(1..=12),
                rng.random_range(1..=28),
                rng.random_range(0..3)
            ));
        }
    }
    if canary_events > 0 {
        p.push_str("canary,F\n");
        for j in 0..canary_events {
            e.push_str(&format!("canary,2020-06-{:02},rare\n", 1 + j % 28));
        }
    }
    std::fs::write(dir.join("persons.csv"), p).unwrap();
    std::fs::write(dir.join("events.csv"), e).unwrap();
}

fn report(case: &str, claim: f64, without: &[f64], with: &[f64], seconds: f64) {
    let b95 = epsilon_lower_bound(without, with, DELTA, 0.05);
    let b6 = epsilon_lower_bound(without, with, DELTA, 1e-6);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "| {case} | {claim} | {} + {} | {:.3} | {:.3} | {:.1} / {:.1} | {:.1} ms |",
        without.len(),
        with.len(),
        b95.epsilon,
        b6.epsilon,
        mean(without),
        mean(with),
        1000.0 * seconds / (without.len() + with.len()) as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    let run = |case: &str| only.as_deref().is_none_or(|o| o == case);
    println!(
        "| case | claimed epsilon | runs (D + D') | lower bound, 95% | lower bound, 1-1e-6 | mean score D / D' | time per run |"
    );
    println!("|---|---|---|---|---|---|---|");
    let schema = Schema::from_yaml(TABLE, "table.yaml").unwrap();
    let (d, d1) = (table(300, 0), table(300, 150));
    let cases = [(Mechanism::Mst, 1.0), (Mechanism::Mst, 4.0), (Mechanism::Aim, 1.0), (Mechanism::Aim, 4.0)];
    for (mech, eps) in cases.into_iter().filter(|_| run("table")) {
        let plan = Plan::new(
            &schema,
            schema.tables[0].clone(),
            FitOptions { mechanism: mech, ..Default::default() },
            "table.yaml",
        )
        .unwrap();
        let t = Instant::now();
        let (w, v) = neighbour_runs(runs, &d, &d1, |data, i| {
            count_value(&synth_table(&plan, data, eps, DELTA, None, 500, i as u64)?, "a", "rare")
        })
        .unwrap();
        report(
            &format!("{} single table, canary 150 rows in a rare cell, rows_per_unit 2", mech.name().to_uppercase()),
            eps,
            &w,
            &v,
            t.elapsed().as_secs_f64(),
        );
    }
    // The bug the suite guards against, for scale: the privacy unit ignored.
    if run("ignored") {
        let ignored =
            Schema::from_yaml(&TABLE.replace("    privacy_unit: pid\n    rows_per_unit: 2\n", ""), "t.yaml").unwrap();
        let plan = Plan::new(
            &ignored,
            ignored.tables[0].clone(),
            FitOptions { mechanism: Mechanism::Mst, ..Default::default() },
            "t.yaml",
        )
        .unwrap();
        let t = Instant::now();
        let (w, v) = neighbour_runs(runs, &d, &d1, |data, i| {
            count_value(&synth_table(&plan, data, 1.0, DELTA, None, 500, i as u64)?, "a", "rare")
        })
        .unwrap();
        report("MST, privacy unit ignored (the old bug)", 1.0, &w, &v, t.elapsed().as_secs_f64());
    }
    if !run("linked") {
        return;
    }

    // Linked tables: a person with many events of a rare kind; rows_per_person 5 keeps five.
    let dir = tempfile::tempdir().unwrap();
    let (d, d1) = (dir.path().join("d"), dir.path().join("d1"));
    linked_folder(&d, 200, 0);
    linked_folder(&d1, 200, 40);
    let schema = Schema::from_yaml(LINKED, "linked.yaml").unwrap();
    let read = |p: &std::path::Path| {
        ehr::Tables::read(&schema, &ehr::Inputs::resolve(&schema, &[p.display().to_string()]).unwrap()).unwrap()
    };
    let (td, td1) = (read(&d), read(&d1));
    for eps in [1.0, 4.0] {
        let plan =
            LinkedPlan::new(&schema, FitOptions { mechanism: Mechanism::Mst, ..Default::default() }, "linked.yaml")
                .unwrap();
        let t = Instant::now();
        let (w, v) = neighbour_runs(runs / 2, &td, &td1, |tables, i| {
            let out = synth_linked(&plan, tables, eps, DELTA, 200, i as u64)?;
            let events = &out
                .iter()
                .find(|(n, _)| n == "events")
                .ok_or_else(|| privsynth::error::Error::Internal("no events table".into()))?
                .1;
            count_value(events, "kind", "rare")
        })
        .unwrap();
        report(
            "MST linked, canary person with 40 rare events, rows_per_person 5",
            eps,
            &w,
            &v,
            t.elapsed().as_secs_f64(),
        );
    }
}
