//! The DataFusion counting engine gives exactly the local engine's counts: over random tables
//! (nulls, missing tokens, values outside the domain under each out-of-domain policy, values
//! of the wrong type, rows without a unit key, contribution bounds that bite), as CSV and as
//! Parquet, under the same bounding key; through a remapped (compressed) view; with every
//! subset of one fit counted in one query. Then `fit --engine datafusion` end to end, and the
//! combinations it refuses before any charge.
#![cfg(feature = "engine-datafusion")]

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use polars::prelude::*;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use privsynth::engine::Engine;
use privsynth::engine::datafusion::DataFusionCounter;
use privsynth::marginals::{self, Counter};
use privsynth::pipeline::{FitOptions, Plan};
use privsynth::schema::Schema;
use privsynth_privacy::bounding::SecretKey;

/// A schema of five modelled columns (policies and nullability chosen per case) and a unit.
fn schema_yaml(rows_per_unit: u32, unit: bool, pol: [&str; 4]) -> String {
    let nullable = |p: &str| if p == "null" { "true" } else { "false" };
    format!(
        r#"
version: 1
tables:
  - name: t
    {unit}
    missing_values: ["?", "NA"]
    columns:
      - {{name: pid, type: identifier, role: identifier}}
      - {{name: grp, type: categorical, nullable: {n0}, out_of_domain: {p0}, domain: {{categories: [u0, u1, u2, "4", u5]}}}}
      - {{name: age, type: integer, nullable: {n1}, out_of_domain: {p1}, domain: {{bounds: [0, 99], bins: 10}}}}
      - {{name: kind, type: categorical, nullable: true, out_of_domain: null, domain: {{categories: [a, b, c]}}}}
      - {{name: day, type: date, nullable: {n3}, out_of_domain: {p3}, domain: {{bounds: [2020-01-01, 2020-12-31], granularity: month}}}}
      - {{name: flag, type: boolean, nullable: {n2}, out_of_domain: {p2}}}
"#,
        unit = if unit { format!("privacy_unit: pid\n    rows_per_unit: {rows_per_unit}") } else { String::new() },
        p0 = pol[0],
        n0 = nullable(pol[0]),
        p1 = pol[1],
        n1 = nullable(pol[1]),
        p2 = pol[2],
        n2 = nullable(pol[2]),
        p3 = pol[3],
        n3 = nullable(pol[3]),
    )
}

/// Random rows as text cells: (pid, grp, age, kind, day, flag).
fn rows(seed: u64, n: usize, units: usize) -> Vec<[String; 6]> {
    let mut rng = StdRng::seed_from_u64(seed);
    let pick = |rng: &mut StdRng, xs: &[&str]| xs[rng.random_range(0..xs.len())].to_string();
    (0..n)
        .map(|_| {
            let u = rng.random_range(0..units);
            // Units of very different sizes, so that bounds bite on some and not others.
            let u = if rng.random_bool(0.5) { u % 3 } else { u };
            let pid = match rng.random_range(0..40) {
                0 => String::new(),
                1 => format!(" p{u} "),
                _ => format!("p{u}"),
            };
            let grp = pick(&mut rng, &["u0", "u1", "u2", "4", "4.0", "u5", "zz", "?", ""]);
            let age = match rng.random_range(0..12) {
                0 => "-5".into(),
                1 => "150".into(),
                2 => "abc".into(),
                3 => "NA".into(),
                4 => "12.5".into(),
                _ => rng.random_range(0..100).to_string(),
            };
            let kind = pick(&mut rng, &["a", "b", "c", "zz", "?", ""]);
            let day = match rng.random_range(0..10) {
                0 => "2019-05-01".into(),
                1 => "2020-13-45".into(),
                2 => String::new(),
                _ => format!("2020-{:02}-{:02}", rng.random_range(1..13), rng.random_range(1..29)),
            };
            let flag = pick(&mut rng, &["true", "false", "yes", "0", "maybe", ""]);
            [pid, grp, age, kind, day, flag]
        })
        .collect()
}

fn write_csv(path: &Path, rows: &[[String; 6]]) {
    let mut s = String::from("pid,grp,age,kind,day,flag\n");
    for r in rows {
        writeln!(s, "{}", r.join(",")).unwrap();
    }
    std::fs::write(path, s).unwrap();
}

/// The same rows as Parquet with typed columns where a cell parses (age as Int64, day as Date,
/// flag as Boolean; a cell that does not parse is stored as null), text otherwise.
fn write_parquet(path: &Path, rows: &[[String; 6]]) {
    let text = |i: usize| rows.iter().map(|r| r[i].clone()).collect::<Vec<String>>();
    let age: Vec<Option<i64>> = rows.iter().map(|r| r[2].parse().ok()).collect();
    let day: Vec<Option<i32>> = rows
        .iter()
        .map(|r| {
            chrono::NaiveDate::parse_from_str(&r[4], "%Y-%m-%d")
                .ok()
                .map(|d| (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32)
        })
        .collect();
    let flag: Vec<Option<bool>> = rows
        .iter()
        .map(|r| match r[5].as_str() {
            "true" | "yes" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        })
        .collect();
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("pid".into(), text(0)),
        Column::new("grp".into(), text(1)),
        Column::new("age".into(), age),
        Column::new("kind".into(), text(3)),
        Column::new("day".into(), Series::new("day".into(), day).cast(&DataType::Date).unwrap()),
        Column::new("flag".into(), flag),
    ])
    .unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap()).finish(&mut df).unwrap();
}

/// Every subset the checks count: the whole table, all one- and two-way marginals, two
/// three-way marginals (one in reverse attribute order).
fn subsets(d: usize) -> Vec<Vec<usize>> {
    let mut s = vec![vec![]];
    s.extend(marginals::subsets(d, 1));
    s.extend(marginals::subsets(d, 2));
    s.push(vec![0, 1, 2]);
    s.push(vec![4, 2, 1]);
    s
}

/// Local and DataFusion counts of `path` under one key, compared (also through a remapped
/// view). Returns the number of rows the local path counted.
fn compare(plan: &Plan, path: &Path, batch_rows: usize) -> Result<usize, String> {
    compare_as(plan, path, path, batch_rows)
}

/// [`compare`] with the local engine reading `path` and DataFusion `engine_path` (the same
/// table as a folder of parts).
fn compare_as(plan: &Plan, path: &Path, engine_path: &Path, batch_rows: usize) -> Result<usize, String> {
    let key = Arc::new(SecretKey::fresh().unwrap());
    let local = plan.rows_streamed_with_key(path, batch_rows, &key).map_err(|e| format!("local: {e}"))?;
    let notes = local.notes.disclose_to_data_holder();
    let local = local.encoded;
    let df = DataFusionCounter::open_with_key(
        &plan.table,
        &plan.codec,
        engine_path,
        plan.rows_per_unit(),
        &Engine::DataFusion,
        key.clone(),
    )
    .map_err(|e| format!("datafusion open: {e}"))?;
    assert_eq!(df.sizes(), local.sizes());
    assert_eq!(df.bound(), local.bound());
    let sets = subsets(local.sizes().len());
    df.prefetch(&sets).map_err(|e| format!("datafusion: {e}"))?;
    // Every subset of these small domains fits one query's cells: one scan.
    assert_eq!(df.queries(), 1, "one scan for {} subsets", sets.len());
    let a = marginals::count_many(&local, &sets).disclose_to_data_holder();
    let b = df.count_many(&sets).map_err(|e| format!("datafusion: {e}"))?.disclose_to_data_holder();
    for ((s, x), y) in sets.iter().zip(&a).zip(&b) {
        assert_eq!(x, y, "subset {s:?} of {}", path.display());
    }
    // A compressed view: codes folded as AIM's compression folds them.
    let maps: Vec<Vec<u32>> = local.sizes().iter().map(|&k| (0..k as u32).map(|c| c / 2).collect()).collect();
    let small: Vec<usize> = local.sizes().iter().map(|&k| k.div_ceil(2)).collect();
    let (lv, dv) = (Counter::remap(&local, &maps, &small), df.remap(&maps, &small));
    let again = df.queries();
    for s in &sets {
        assert_eq!(
            lv.count(s).unwrap().disclose_to_data_holder(),
            dv.count(s).unwrap().disclose_to_data_holder(),
            "remapped {s:?}"
        );
    }
    assert_eq!(df.queries(), again, "a remapped view counts from the cache");
    // --private-diagnostics: the rows the engine left out are the ones the local path did.
    let mut want: Vec<String> = notes
        .encode
        .columns
        .iter()
        .filter(|c| c.3 > 0)
        .map(|(n, _, _, d)| format!("column {n:?}: {d} row(s) dropped by its out_of_domain policy"))
        .collect();
    if notes.encode.rows_dropped > 0 {
        want.push(format!("{} row(s) left out of the fit in all (out_of_domain policy)", notes.encode.rows_dropped));
    }
    if notes.no_unit > 0 {
        want.push(format!("{} row(s) without a privacy-unit key were left out", notes.no_unit));
    }
    if notes.bounded > 0 {
        want.push(format!("{} row(s) beyond rows_per_unit were left out by contribution bounding", notes.bounded));
    }
    let mut got = df.left_out_lines().map_err(|e| format!("datafusion left out: {e}"))?.disclose_to_data_holder();
    assert!(
        got.pop().is_some_and(|l| l.contains("cells clipped or made missing")),
        "the engine says what it leaves out"
    );
    assert_eq!(got, want, "left-out rows of {}", path.display());
    Ok(local.rows())
}

const POLICIES: [&str; 3] = ["drop", "clip", "null"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// Random tables, schemas and bounds: DataFusion's counts equal the local ones exactly.
    #[test]
    fn datafusion_counts_equal_local_counts(
        seed in any::<u64>(),
        n in 0usize..12_000,
        units in 1usize..60,
        k in 1u32..5,
        unit in any::<bool>(),
        pol in proptest::array::uniform4(0usize..3),
        batch in prop_oneof![Just(97usize), Just(4096), Just(100_000)],
    ) {
        // `clip` applies to binned columns; categories and booleans take drop or null.
        let p = |i: usize, binned: bool| if !binned && POLICIES[pol[i]] == "clip" { "drop" } else { POLICIES[pol[i]] };
        let yaml = schema_yaml(k, unit, [p(0, false), p(1, true), p(2, false), p(3, true)]);
        let schema = Schema::from_yaml(&yaml, "s.yaml").unwrap();
        let plan = Plan::new(&schema, schema.table(None).unwrap().clone(), FitOptions::default(), "s.yaml").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = rows(seed, n, units);
        let csv = dir.path().join("t.csv");
        write_csv(&csv, &data);
        let parquet = dir.path().join("t.parquet");
        write_parquet(&parquet, &data);
        for path in [&csv, &parquet] {
            compare(&plan, path, batch).map_err(TestCaseError::fail)?;
        }
        // The same rows as three Parquet parts of a folder (cut at random rows): the counts of
        // the whole file.
        let parts = dir.path().join("parts");
        let mut rng = StdRng::seed_from_u64(seed ^ 1);
        let mut cuts = [rng.random_range(0..=n), rng.random_range(0..=n)];
        cuts.sort_unstable();
        write_parts(&parts, &data, &cuts);
        compare_as(&plan, &parquet, &parts, batch).map_err(TestCaseError::fail)?;
    }
}

/// `rows` as Parquet part files of the folder `dir`, cut before each row in `cuts`: parts named
/// so that their file-name order is the rows' order (written in reverse, so the order on disk
/// is not), and a writer's `_SUCCESS` marker beside them.
fn write_parts(dir: &Path, rows: &[[String; 6]], cuts: &[usize]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(rows.len());
    for (i, w) in bounds.windows(2).enumerate().rev() {
        write_parquet(&dir.join(format!("part-{i:05}.parquet")), &rows[w[0]..w[1]]);
    }
    std::fs::write(dir.join("_SUCCESS"), "").unwrap();
}

/// A folder of parts with bounds that bite and units spread over every part: the ordinal runs
/// over the parts in name order (`part-00010` after `part-00002`, as the names sort), equal to
/// the local engine on the concatenation.
#[test]
fn a_folder_of_parts_counts_as_its_concatenation() {
    let yaml = schema_yaml(2, true, ["drop", "clip", "null", "drop"]);
    let schema = Schema::from_yaml(&yaml, "s.yaml").unwrap();
    let plan = Plan::new(&schema, schema.table(None).unwrap().clone(), FitOptions::default(), "s.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = rows(11, 30_000, 2_000);
    let whole = dir.path().join("t.parquet");
    write_parquet(&whole, &data);
    let parts = dir.path().join("parts");
    write_parts(&parts, &data, &[7_000, 7_001, 19_000]);
    // Zero-padded names: a part named 10 sorts after 2 only with padding, as writers pad.
    let counted = compare_as(&plan, &whole, &parts, 5_000).unwrap();
    assert!(counted < 4_500, "{counted} rows counted: bounding must bite");
    // Names sort as bytes: renaming the parts so that the name order is another order than
    // the rows' gives other counts (the ordinal follows the names), unless bounding does not
    // bite. Checked as: the reversed folder equals the local engine on the reversed file.
    let reversed: Vec<[String; 6]> =
        [&data[19_000..], &data[7_001..19_000], &data[7_000..7_001], &data[..7_000]].concat();
    let rev_whole = dir.path().join("rev.parquet");
    write_parquet(&rev_whole, &reversed);
    let rev_parts = dir.path().join("rev");
    std::fs::create_dir_all(&rev_parts).unwrap();
    for (from, to) in [(0, 3), (1, 2), (2, 1), (3, 0)] {
        std::fs::copy(parts.join(format!("part-{from:05}.parquet")), rev_parts.join(format!("part-{to:05}.parquet")))
            .unwrap();
    }
    compare_as(&plan, &rev_whole, &rev_parts, 5_000).unwrap();
}

/// Wide domains: a pair past the dense cap (2000 x 3000 cells) is counted into the aggregate
/// function's sparse map (and carried through its partial state), and queries are cut by
/// cells, not by sets; the counts are the local engine's.
#[test]
fn wide_subsets_count_sparse_and_split_queries() {
    let yaml = r#"
version: 1
tables:
  - name: t
    columns:
      - {name: a, type: integer, domain: {bounds: [0, 1999], bins: 2000}}
      - {name: b, type: integer, domain: {bounds: [0, 2999], bins: 3000}}
      - {name: c, type: categorical, domain: {categories: [x, y]}}
"#;
    let schema = Schema::from_yaml(yaml, "s.yaml").unwrap();
    let plan = Plan::new(&schema, schema.table(None).unwrap().clone(), FitOptions::default(), "s.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let mut text = String::from("a,b,c\n");
    for _ in 0..20_000 {
        // Few distinct a values, so that some pair cells hold several rows.
        let a = rng.random_range(0..40) * 50;
        writeln!(text, "{a},{},{}", rng.random_range(0..3000), ["x", "y"][rng.random_range(0..2)]).unwrap();
    }
    let path = dir.path().join("t.csv");
    std::fs::write(&path, text).unwrap();
    let key = Arc::new(SecretKey::fresh().unwrap());
    let local = plan.rows_streamed_with_key(&path, 4096, &key).unwrap().encoded;
    let open = || {
        DataFusionCounter::open_with_key(
            &plan.table,
            &plan.codec,
            &path,
            plan.rows_per_unit(),
            &Engine::DataFusion,
            key.clone(),
        )
        .unwrap()
    };
    // The empty subset alone (no code column is an argument then): the number of rows.
    let total = open().count_many(&[vec![]]).unwrap().disclose_to_data_holder();
    assert_eq!(total, vec![vec![local.rows() as i64]]);
    let df = open();
    assert!(local.sizes()[0] * local.sizes()[1] > 1 << 20, "{:?}", local.sizes());
    let sets: Vec<Vec<usize>> = vec![vec![], vec![0], vec![1], vec![0, 1], vec![1, 0, 2], vec![2, 1]];
    let a = marginals::count_many(&local, &sets).disclose_to_data_holder();
    let b = df.count_many(&sets).unwrap().disclose_to_data_holder();
    for ((s, x), y) in sets.iter().zip(&a).zip(&b) {
        assert_eq!(x, y, "subset {s:?}");
    }
    // In sorted order [] [0] [0,1] [0,1,2] [1] [1,2]: the two sparse subsets are charged 2^20
    // cells each, so the second one starts another query (2^21 cells a query).
    assert_eq!(df.queries(), 2);
}

/// What a folder must be: Parquet parts only; a sub-folder (a partitioned table), another file
/// or no part is a usage error naming it.
#[test]
fn a_folder_that_is_not_a_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = rows(5, 50, 10);
    let parts = dir.path().join("parts");
    write_parts(&parts, &data, &[20]);
    assert_eq!(privsynth::engine::table_parts(&parts).unwrap().len(), 2);
    std::fs::write(parts.join("notes.csv"), "a\n").unwrap();
    let e = privsynth::engine::table_parts(&parts).unwrap_err().to_string();
    assert!(e.contains("notes.csv") && e.contains("not a .parquet file"), "{e}");
    std::fs::remove_file(parts.join("notes.csv")).unwrap();
    std::fs::create_dir(parts.join("year=2020")).unwrap();
    let e = privsynth::engine::table_parts(&parts).unwrap_err().to_string();
    assert!(e.contains("year=2020") && e.contains("sub-folder"), "{e}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = privsynth::engine::table_parts(&empty).unwrap_err().to_string();
    assert!(e.contains("no .parquet part files"), "{e}");
}

/// A large table in several DataFusion batches and Parquet row groups, bounds that bite on
/// most units: the file-order ordinal must survive batching.
#[test]
fn bounded_counts_equal_across_batches() {
    let yaml = schema_yaml(2, true, ["drop", "clip", "null", "drop"]);
    let schema = Schema::from_yaml(&yaml, "s.yaml").unwrap();
    let plan = Plan::new(&schema, schema.table(None).unwrap().clone(), FitOptions::default(), "s.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = rows(7, 60_000, 4_000);
    let csv = dir.path().join("t.csv");
    write_csv(&csv, &data);
    let parquet = dir.path().join("t.parquet");
    write_parquet(&parquet, &data);
    for path in [&csv, &parquet] {
        let counted = compare(&plan, path, 5_000).unwrap();
        // Bounding must have bitten: about 4,000 units keep at most 2 rows each.
        assert!(counted < 9_000, "{counted} rows counted");
    }
}

/// The bundled Synthea patients (a real schema: dates, categories, bins, a unit column).
#[test]
fn synthea_counts_equal_local_counts() {
    let root = common::root();
    let schema = Schema::load(&root.join("schemas/synthea-patients.yaml")).unwrap();
    let table = schema.table(None).unwrap().clone();
    let plan = Plan::new(&schema, table, FitOptions { allow_data_domains: true, ..Default::default() }, "s").unwrap();
    let data = root.join("data/synthea/patients.csv");
    compare(&plan, &data, 50).unwrap();
}

/// A strict (`error`) column stops both engines on a cell outside the domain; the engine's
/// message names the file and column and quotes no value.
#[test]
fn strict_policy_stops_the_query() {
    let yaml = schema_yaml(1, false, ["drop", "error", "null", "drop"]);
    let schema = Schema::from_yaml(&yaml, "s.yaml").unwrap();
    let plan = Plan::new(&schema, schema.table(None).unwrap().clone(), FitOptions::default(), "s.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    std::fs::write(&csv, "pid,grp,age,kind,day,flag\np1,u0,7,a,2020-01-02,true\np2,u1,4242,b,2020-02-03,false\n")
        .unwrap();
    assert!(plan.rows_streamed(&csv, 10).is_err());
    let df = DataFusionCounter::open(&plan.table, &plan.codec, &csv, 1, &Engine::DataFusion).unwrap();
    let e = df.count(&[1]).err().expect("the strict column stops the query").to_string();
    assert!(e.contains("\"age\"") && e.contains("t.csv") && e.contains("`error`"), "{e}");
    assert!(!e.contains("4242"), "{e}");
    // A column the file lacks is named before anything runs.
    std::fs::write(&csv, "pid,grp,kind,day,flag\np1,u0,a,2020-01-02,true\n").unwrap();
    let e = DataFusionCounter::open(&plan.table, &plan.codec, &csv, 1, &Engine::DataFusion).err().unwrap().to_string();
    assert!(e.contains("age") && e.contains("not in the file"), "{e}");
}

/// `fit --engine datafusion` end to end (the ledger records the engine), and what it refuses
/// before the ledger is touched.
#[test]
fn fit_with_the_datafusion_engine() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = schema_yaml(2, true, ["drop", "clip", "null", "drop"]);
    let schema_path = dir.path().join("s.yaml");
    std::fs::write(&schema_path, &yaml).unwrap();
    let data = dir.path().join("t.parquet");
    write_parquet(&data, &rows(3, 3_000, 300));
    let ledger = dir.path().join("ledger.jsonl");
    let (s, l, d) = (common::path_str(&schema_path), common::path_str(&ledger), common::path_str(&data));
    let out = dir.path().join("m.json");
    let o = common::path_str(&out);
    let fit = |data: &str, more: &[&str]| {
        let mut args = vec!["fit", data, "--schema", s, "--epsilon", "1", "--ledger", l, "--engine", "datafusion"];
        args.extend(more);
        args.extend(["-o", o]);
        common::privsynth(&args)
    };
    let run = fit(d, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read_to_string(&ledger).unwrap().contains("--engine datafusion"));
    assert!(
        !run.stderr.contains("left out of the fit"),
        "no exact count without --private-diagnostics: {}",
        run.stderr
    );
    // The data holder's diagnostics: the engine's exact left-out counts, on request only.
    let run = fit(d, &["--private-diagnostics"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("row(s) left out of the fit in all"), "{}", run.stderr);
    // Refused before any charge: an audit holdout, an IPC file.
    let before = std::fs::read_to_string(&ledger).unwrap();
    let run = common::privsynth(&[
        "synth",
        d,
        "--schema",
        s,
        "--epsilon",
        "1",
        "--ledger",
        l,
        "--engine",
        "datafusion",
        "--audit-holdout",
        "0.2",
        "-o",
        common::path_str(&dir.path().join("x.csv")),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--audit-holdout"), "{}", run.stderr);
    let run = common::privsynth(&["fit", d, "--schema", s, "--epsilon", "1", "--ledger", l, "--engine", "spark"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("ballista://HOST:PORT"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&ledger).unwrap(), before, "nothing charged");
    // A folder of parts: counted by the engine, known to the ledger by its parts' contents (the
    // same folder again is the same dataset); the local engine refuses it before any charge.
    let parts = dir.path().join("parts");
    write_parts(&parts, &rows(3, 3_000, 300), &[1_000, 2_000]);
    let p = common::path_str(&parts);
    for _ in 0..2 {
        let run = fit(p, &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let text = std::fs::read_to_string(&ledger).unwrap();
    let fingerprints: Vec<&str> =
        text.lines().filter(|l| l.contains(p)).filter_map(|l| l.split("\"sha256:").nth(1)).map(|f| &f[..16]).collect();
    assert_eq!(fingerprints.len(), 2, "{text}");
    assert_eq!(fingerprints[0], fingerprints[1], "the same folder is the same dataset");
    let before = std::fs::read_to_string(&ledger).unwrap();
    let run = common::privsynth(&["fit", p, "--schema", s, "--epsilon", "1", "--ledger", l, "-o", o]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("folder of Parquet part files") && run.stderr.contains("--engine datafusion"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&ledger).unwrap(), before, "nothing charged");
}
