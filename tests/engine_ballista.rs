//! The Ballista engine: a scheduler and two executors started by the test itself on
//! 127.0.0.1 (privsynth's own, which decode its counting plan), counting a generated table
//! and the bundled Synthea patients exactly as the local engine does under the same key (also
//! when the partial counts pass Ballista's default 16 MB message); an executor killed
//! mid-query gives a clear error or the right counts (a retried task), never a wrong count.
#![cfg(feature = "engine-ballista")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use polars::prelude::SerReader as _;
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

/// A free port on 127.0.0.1 (free when asked; the OS does not hand it out again at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A privsynth process, killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `privsynth ARGS` and return it with the first line it prints (its address).
fn serve(args: &[&str]) -> (Child, String) {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_privsynth"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    if line.is_empty() {
        let _ = child.0.wait();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
        panic!("privsynth {args:?} printed nothing: {err}");
    }
    (child, line)
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

/// Partial counts past Ballista's default 16 MB gRPC message: two subsets of 4096^4 and
/// 4096^3 cells over 3M random rows have about 3M distinct cells each, one varint blob of
/// about 27 MB as the query's result. With the 16 MB default this query failed ("the query
/// engine failed: Arrow error: External error"); with privsynth's cap it counts, and the
/// counts, folded through a compressed view (codes / 64), are the local engine's.
#[test]
fn partial_counts_past_16_mb_travel() {
    use polars::prelude::{Column, DataFrame, ParquetWriter};
    use rand::{RngExt, SeedableRng};
    let yaml = r#"
version: 1
tables:
  - name: t
    columns:
      - {name: a, type: integer, domain: {bounds: [0, 4095], bins: 4096}}
      - {name: b, type: integer, domain: {bounds: [0, 4095], bins: 4096}}
      - {name: c, type: integer, domain: {bounds: [0, 4095], bins: 4096}}
      - {name: d, type: integer, domain: {bounds: [0, 4095], bins: 4096}}
      - {name: e, type: categorical, domain: {categories: [x, y]}}
"#;
    let schema = Schema::from_yaml(yaml, "s.yaml").unwrap();
    let plan = Plan::new(&schema, schema.table(None).unwrap().clone(), FitOptions::default(), "s.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let n = 3_000_000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut col =
        |name: &str| Column::new(name.into(), (0..n).map(|_| rng.random_range(0..4096i64)).collect::<Vec<_>>());
    let mut df = DataFrame::new_infer_height(vec![
        col("a"),
        col("b"),
        col("c"),
        col("d"),
        Column::new("e".into(), vec!["x"; n]),
    ])
    .unwrap();
    let path = dir.path().join("t.parquet");
    ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
    drop(df);
    let key = Arc::new(SecretKey::fresh().unwrap());
    let local = plan.rows_streamed_with_key(&path, 1 << 20, &key).unwrap().encoded;
    let engine = Engine::Ballista(cluster().to_string());
    let remote =
        DataFusionCounter::open_with_key(&plan.table, &plan.codec, &path, plan.rows_per_unit(), &engine, key).unwrap();
    let wide = [vec![0, 1, 2, 3], vec![1, 2, 3]];
    remote.prefetch(&wide).unwrap();
    assert_eq!(remote.queries(), 1);
    let maps: Vec<Vec<u32>> = local.sizes().iter().map(|&k| (0..k as u32).map(|c| c / 64).collect()).collect();
    let small: Vec<usize> = local.sizes().iter().map(|&k| k.div_ceil(64)).collect();
    let (lv, rv) = (Counter::remap(&local, &maps, &small), remote.remap(&maps, &small));
    for s in &wide {
        assert_eq!(lv.count(s).unwrap().disclose_to_data_holder(), rv.count(s).unwrap().disclose_to_data_holder());
    }
    assert_eq!(remote.queries(), 1, "the view folds the cached counts");
}

/// An executor in its own process, killed while a query runs: the count is either refused
/// with a clear error or (the scheduler re-ran the task elsewhere) exactly the local one.
#[test]
fn killed_executor_never_gives_a_wrong_count() {
    // A scheduler of its own, whose only executor is the child process.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let addr = rt.block_on(privsynth::engine::ballista::start_scheduler()).unwrap();
    let at = format!("127.0.0.1:{}", addr.port());
    let bind = format!("127.0.0.1:{}", free_port());
    let (mut child, line) = serve(&["engine", "executor", "--scheduler", &at, "--bind", &bind]);
    assert!(line.contains("serving the scheduler"), "{line}");

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
        child.0.kill().unwrap();
        child.0.wait().unwrap();
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

/// A cluster as on several machines: `privsynth engine scheduler` and two `privsynth engine
/// executor` processes on explicit ports (one advertised by name), counting a wide file (a
/// column the schema does not model) and the same rows as one Parquet file, with bounds that
/// bite: the counts equal the local engine's.
#[test]
fn scheduler_and_executors_as_separate_processes() {
    let at = format!("127.0.0.1:{}", free_port());
    let (_scheduler, line) = serve(&["engine", "scheduler", "--bind", &at]);
    assert!(line.contains(&format!("ballista://{at}")), "{line}");
    let mut executors = vec![];
    for external in [None, Some("localhost")] {
        let bind = format!("127.0.0.1:{}", free_port());
        let mut args = vec!["engine", "executor", "--scheduler", &at, "--bind", &bind];
        args.extend(external.map(|h| ["--external-host", h]).into_iter().flatten());
        let (child, line) = serve(&args);
        assert!(line.contains(&bind), "{line}");
        executors.push(child);
    }
    let schema = Schema::from_yaml(SCHEMA, "s.yaml").unwrap();
    let plan = Plan::new(&schema, schema.table(None).unwrap().clone(), FitOptions::default(), "s.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    table_csv_padded(&csv, 60_000, 48);
    compare(&plan, &csv, &Engine::Ballista(at.clone()));
    // The same rows as one Parquet file, and as three Parquet parts.
    let whole = polars::prelude::CsvReadOptions::default()
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(csv.clone()))
        .unwrap()
        .finish()
        .unwrap();
    let one = dir.path().join("t.parquet");
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    let write = |path: std::path::PathBuf, mut df: polars::prelude::DataFrame| {
        polars::prelude::ParquetWriter::new(std::fs::File::create(path).unwrap()).finish(&mut df).unwrap();
    };
    write(one.clone(), whole.clone());
    for (i, (from, len)) in [(0, 9_999), (9_999, 30_001), (40_000, 20_000)].into_iter().enumerate() {
        write(parts.join(format!("part-{i:05}.parquet")), whole.slice(from, len));
    }
    compare(&plan, &one, &Engine::Ballista(at.clone()));
    // A folder of the same rows as parts is refused on Ballista (counted by DataFusion only,
    // see `engine::table_parts_for`), never counted differently.
    let e = DataFusionCounter::open(&plan.table, &plan.codec, &parts, 3, &Engine::Ballista(at.clone()))
        .err()
        .expect("a folder on Ballista")
        .to_string();
    assert!(e.contains("--engine datafusion only"), "{e}");
}

/// [`table_csv`] with a column of `pad` characters the schema does not model (a wide file).
fn table_csv_padded(path: &std::path::Path, n: usize, pad: usize) {
    let plain = path.with_extension("plain");
    table_csv(&plain, n);
    let text = std::fs::read_to_string(&plain).unwrap();
    std::fs::remove_file(&plain).unwrap();
    let filler = "x".repeat(pad);
    let mut out = String::with_capacity(text.len() + n * (pad + 1));
    for (i, l) in text.lines().enumerate() {
        out.push_str(l);
        out.push(',');
        out.push_str(if i == 0 { "pad" } else { &filler });
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

/// A scheduler address where none runs: the executor exits with an error naming it, and a
/// fit's engine is refused when it opens, each within the probe's wait (10 s), not a hang.
/// The same for a port that accepts connections but is not a scheduler.
#[test]
fn wrong_scheduler_address_is_a_clear_error() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let not_a_scheduler = format!("127.0.0.1:{}", silent.local_addr().unwrap().port());
    let nobody = format!("127.0.0.1:{}", free_port());
    let schema = Schema::from_yaml(SCHEMA, "s.yaml").unwrap();
    let plan = Plan::new(&schema, schema.table(None).unwrap().clone(), FitOptions::default(), "s.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    table_csv(&csv, 100);
    for addr in [&nobody, &not_a_scheduler] {
        let t = std::time::Instant::now();
        let bind = format!("127.0.0.1:{}", free_port());
        let out = Command::new(env!("CARGO_BIN_EXE_privsynth"))
            .args(["engine", "executor", "--scheduler", addr, "--bind", &bind])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("no Ballista scheduler answers at") && err.contains(addr.as_str()), "{err}");
        assert!(t.elapsed() < Duration::from_secs(40), "{:?}", t.elapsed());

        let t = std::time::Instant::now();
        let e = DataFusionCounter::open(&plan.table, &plan.codec, &csv, 3, &Engine::Ballista(addr.clone()))
            .err()
            .expect("no scheduler")
            .to_string();
        assert!(e.contains("no Ballista scheduler answers at") && e.contains(addr.as_str()), "{e}");
        assert!(t.elapsed() < Duration::from_secs(40), "{:?}", t.elapsed());
    }
    drop(silent);
}
