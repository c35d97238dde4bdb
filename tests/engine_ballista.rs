//! The Ballista engine: a scheduler and two executors started by the test itself on
//! 127.0.0.1 (privsynth's own, which decode its counting plan), counting a generated table
//! and the bundled Synthea patients exactly as the local engine does under the same key; an
//! executor killed mid-query gives a clear error or the right counts (a retried task), never
//! a wrong count.
#![cfg(feature = "engine-ballista")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use privsynth::engine::Engine;
use privsynth::engine::datafusion::DataFusionCounter;
use privsynth::marginals::{self, Counter};
use privsynth::pipeline::{FitOptions, Plan};
use privsynth::schema::Schema;
use privsynth_privacy::bounding::SecretKey;

const SCHEMA: &str = r#"
version: 1
tables:
  - name: t
    privacy_unit: pid
    rows_per_unit: 3
    missing_values: ["?"]
    columns:
      - {name: pid, type: identifier, role: identifier}
      - {name: grp, type: categorical, domain: {categories: [u0, u1, u2, u3, u4, u5, u6, u7, u8, u9]}}
      - {name: age, type: integer, out_of_domain: clip, domain: {bounds: [0, 99], bins: 10}}
      - {name: kind, type: categorical, nullable: true, out_of_domain: null, domain: {categories: [a, b, c]}}
"#;

fn table_csv(path: &std::path::Path, n: usize) {
    use std::fmt::Write as _;
    let mut s = String::from("pid,grp,age,kind\n");
    for r in 0..n {
        let u = (r * 7919) % (n / 5).max(1);
        let age = if r % 31 == 3 { 150 } else { (r * 13) % 100 };
        writeln!(s, "p{u},u{},{age},{}", r % 10, ["a", "b", "c", "zz", "?"][r % 5]).unwrap();
    }
    std::fs::write(path, s).unwrap();
}

/// One cluster for this test binary: a scheduler and two executors in a runtime that lives
/// as long as the process.
fn cluster() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| {
        let rt = Box::leak(Box::new(tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()));
        rt.block_on(async {
            let addr = privsynth::engine::ballista::start_scheduler().await.unwrap();
            let at = format!("127.0.0.1:{}", addr.port());
            for _ in 0..2 {
                privsynth::engine::ballista::start_executor(&at, 1).await.unwrap();
            }
            at
        })
    })
}

fn compare(plan: &Plan, path: &std::path::Path, engine: &Engine) {
    let key = Arc::new(SecretKey::fresh().unwrap());
    let local = plan.rows_streamed_with_key(path, 1000, &key).unwrap().encoded;
    let remote =
        DataFusionCounter::open_with_key(&plan.table, &plan.codec, path, plan.rows_per_unit(), engine, key).unwrap();
    let d = local.sizes().len();
    let mut sets = marginals::subsets(d, 1);
    sets.extend(marginals::subsets(d, 2));
    let a = marginals::count_many(&local, &sets).disclose_to_data_holder();
    let b = remote.count_many(&sets).unwrap().disclose_to_data_holder();
    assert_eq!(a, b, "{}", path.display());
}

#[test]
fn ballista_counts_equal_local_counts() {
    let engine = Engine::Ballista(cluster().to_string());
    let schema = Schema::from_yaml(SCHEMA, "s.yaml").unwrap();
    let plan = Plan::new(&schema, schema.table(None).unwrap().clone(), FitOptions::default(), "s.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    table_csv(&csv, 30_000);
    compare(&plan, &csv, &engine);

    let root = common::root();
    let schema = Schema::load(&root.join("schemas/synthea-patients.yaml")).unwrap();
    let opts = FitOptions { allow_data_domains: true, ..Default::default() };
    let plan = Plan::new(&schema, schema.table(None).unwrap().clone(), opts, "s").unwrap();
    compare(&plan, &root.join("data/synthea/patients.csv"), &engine);
}

/// An executor in its own process, killed while a query runs: the count is either refused
/// with a clear error or (the scheduler re-ran the task elsewhere) exactly the local one.
#[test]
fn killed_executor_never_gives_a_wrong_count() {
    // A scheduler of its own, whose only executor is the child process.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let addr = rt.block_on(privsynth::engine::ballista::start_scheduler()).unwrap();
    let at = format!("127.0.0.1:{}", addr.port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_privsynth"))
        .args(["engine", "executor", "--scheduler", &at])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("registered"), "{line}");

    let schema = Schema::from_yaml(SCHEMA, "s.yaml").unwrap();
    let plan = Plan::new(&schema, schema.table(None).unwrap().clone(), FitOptions::default(), "s.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    table_csv(&csv, 400_000);
    let key = Arc::new(SecretKey::fresh().unwrap());
    let local = plan.rows_streamed_with_key(&csv, 100_000, &key).unwrap().encoded;
    let remote =
        DataFusionCounter::open_with_key(&plan.table, &plan.codec, &csv, 3, &Engine::Ballista(at.clone()), key)
            .unwrap()
            .with_timeout(Duration::from_secs(20))
            .unwrap();
    let sets = marginals::subsets(local.sizes().len(), 2);
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        child.kill().unwrap();
        child.wait().unwrap();
    });
    let got = remote.count_many(&sets);
    killer.join().unwrap();
    match got {
        Ok(counts) => {
            assert_eq!(counts.disclose_to_data_holder(), marginals::count_many(&local, &sets).disclose_to_data_holder())
        }
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("t.csv") && (e.contains("did not finish") || e.contains("query engine")), "{e}");
        }
    }
    drop(rt);
}
