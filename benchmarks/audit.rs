//! Audit speed: the whole `privsynth audit` work (read the three files, every measure, the
//! JSON and HTML reports) on
//! - Adult 16k x 15: bundled UCI Adult split 50/50 into train and holdout, the synthetic table
//!   = 10% copied train rows + 90% independently resampled columns (the design note's hardest
//!   calibration set); and
//! - 50k x 50: a seeded generator of mixed data (25 numeric, 25 categorical columns from 40
//!   latent groups), train, holdout and synthetic drawn independently.
//!
//! `cargo bench --bench audit [-- REPEATS]`; prints the median wall time of each step and the
//! CPU seconds of the whole run (both threads).
//! Set PRIVSYNTH_AUDIT_KEEP=DIR to keep the generated files (for the Python peers' script).

use std::path::Path;
use std::time::Instant;

use privsynth::data;
use privsynth::evaluate::{self, frame::Frames};
use privsynth::report::{Report, gates, html};
use privsynth::schema::Schema;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

fn adult(dir: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("data/adult/adult.csv")).expect("bundled Adult");
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let mut rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    rows.shuffle(&mut rng);
    let h = rows.len() / 2;
    let (train, hold) = (&rows[..h], &rows[h..2 * h]);
    let cells: Vec<Vec<&str>> = train.iter().map(|r| r.split(',').collect()).collect();
    let d = cells[0].len();
    let k = train.len() / 10;
    let mut synth: Vec<String> = train[..k].iter().map(|s| s.to_string()).collect();
    synth.extend(
        (k..train.len())
            .map(|_| (0..d).map(|c| cells[rng.random_range(0..cells.len())][c]).collect::<Vec<_>>().join(",")),
    );
    let w =
        |n: &str, r: Vec<String>| std::fs::write(dir.join(n), format!("{header}\n{}\n", r.join("\n"))).expect("write");
    w("train.csv", train.iter().map(|s| s.to_string()).collect());
    w("holdout.csv", hold.iter().map(|s| s.to_string()).collect());
    w("synthetic.csv", synth);
    root.join("schemas/adult.yaml").display().to_string()
}

/// `rows` x (`nnum` + `ncat`) mixed table from 40 latent groups (50k x 25 + 25 by default).
fn wide(dir: &Path, rows: usize, nnum: usize, ncat: usize) -> String {
    let groups = 40usize;
    let mut g = rand::rngs::StdRng::seed_from_u64(99);
    let means: Vec<Vec<f64>> = (0..groups).map(|_| (0..nnum).map(|_| g.random_range(0.0..100.0)).collect()).collect();
    let cards: Vec<usize> = (0..ncat).map(|c| 2 + (c * 7) % 29).collect();
    let prefs: Vec<Vec<usize>> = (0..groups).map(|_| cards.iter().map(|&k| g.random_range(0..k)).collect()).collect();
    let mut schema = String::from("version: 1\ntables:\n  - name: wide\n    columns:\n");
    for c in 0..nnum {
        let role = if c < 3 { "quasi_identifier" } else { "attribute" };
        schema += &format!(
            "      - {{name: x{c}, type: float, role: {role}, precision: 1, domain: {{bounds: [-100, 200], bins: 30, source: public}}}}\n"
        );
    }
    for (c, &k) in cards.iter().enumerate() {
        let role = match c {
            0 | 1 => "quasi_identifier",
            2 => "sensitive",
            _ => "attribute",
        };
        let cats: Vec<String> = (0..k).map(|i| format!("v{i}")).collect();
        schema += &format!(
            "      - {{name: c{c}, type: categorical, role: {role}, domain: {{categories: [{}], source: public}}}}\n",
            cats.join(", ")
        );
    }
    std::fs::write(dir.join("wide.yaml"), &schema).expect("write");
    let header: Vec<String> = (0..nnum).map(|c| format!("x{c}")).chain((0..ncat).map(|c| format!("c{c}"))).collect();
    for (name, seed) in [("train.csv", 1u64), ("holdout.csv", 2), ("synthetic.csv", 3)] {
        let mut r = rand::rngs::StdRng::seed_from_u64(seed);
        let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join(name)).expect("create"));
        use std::io::Write;
        writeln!(out, "{}", header.join(",")).expect("write");
        for _ in 0..rows {
            let grp = r.random_range(0..groups);
            let mut f: Vec<String> =
                (0..nnum).map(|c| format!("{:.1}", means[grp][c] + 8.0 * (r.random::<f64>() - 0.5) * 2.0)).collect();
            f.extend(cards.iter().enumerate().map(|(c, &k)| {
                let v = if r.random_bool(0.7) { prefs[grp][c] } else { r.random_range(0..k) };
                format!("v{v}")
            }));
            writeln!(out, "{}", f.join(",")).expect("write");
        }
    }
    dir.join("wide.yaml").display().to_string()
}

/// CPU seconds (user + system) of this process so far, from /proc/self/stat (100 ticks a
/// second): on a shared machine, wall time measures the load as much as the audit.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn run(dir: &Path, schema: &str, repeats: usize, label: &str) {
    let schema = Schema::load(Path::new(schema)).expect("schema");
    let table = schema.table(None).expect("table").clone();
    let mut synth_table = table.clone();
    synth_table.columns.retain(|c| c.is_modelled());
    let mut rows: Vec<Vec<(String, f64)>> = Vec::new();
    for _ in 0..repeats {
        let mut steps = Vec::new();
        let t0 = Instant::now();
        let c0 = cpu_seconds();
        let tr = data::read_for_table(&dir.join("train.csv"), &table).expect("read");
        let ho = data::read_for_table(&dir.join("holdout.csv"), &table).expect("read");
        let sy = data::read_for_table(&dir.join("synthetic.csv"), &synth_table).expect("read");
        let frames = Frames::load(&table, &tr, &ho, &sy).expect("load");
        steps.push(("read + load".to_string(), t0.elapsed().as_secs_f64()));
        let audit = evaluate::run(&frames, &evaluate::Options::default()).expect("audit");
        for t in &audit.timings {
            steps.push((t.step.to_string(), t.seconds));
        }
        let t1 = Instant::now();
        let (g, src) = gates::load(None).expect("gates");
        let report = Report::new(audit, &g, src).expect("report");
        let json = report.to_json().expect("json");
        let page = html::render(&report);
        std::hint::black_box((json.len(), page.len()));
        steps.push(("reports".to_string(), t1.elapsed().as_secs_f64()));
        steps.push(("TOTAL".to_string(), t0.elapsed().as_secs_f64()));
        steps.push(("TOTAL CPU seconds".to_string(), cpu_seconds() - c0));
        rows.push(steps);
    }
    println!("{label} ({} run(s), median wall seconds on {} threads):", repeats, rayon::current_num_threads());
    for i in 0..rows[0].len() {
        let mut v: Vec<f64> = rows.iter().map(|r| r[i].1).collect();
        v.sort_by(f64::total_cmp);
        println!("  {:<20} {:>7.3}", rows[0][i].0, v[v.len() / 2]);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.first().map(String::as_str) == Some("scale") {
        // `cargo bench --bench audit -- scale ROWS`: one run on generated ROWS x 20 (10 numeric,
        // 10 categorical), train, holdout and synthetic each (issue 19: 1M x 20 in minutes).
        let rows: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = wide(tmp.path(), rows, 10, 10);
        run(tmp.path(), &s, 1, &format!("generated {rows} x 20 (train, holdout, synthetic each)"));
        return;
    }
    let repeats: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(3);
    let keep = std::env::var("PRIVSYNTH_AUDIT_KEEP").ok();
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = keep.as_deref().map(Path::new).unwrap_or(tmp.path());
    let (a, w) = (base.join("adult16k"), base.join("wide50k"));
    std::fs::create_dir_all(&a).expect("dir");
    std::fs::create_dir_all(&w).expect("dir");
    let sa = adult(&a);
    run(&a, &sa, repeats, "Adult 16,280 x 15 (train, holdout, synthetic each)");
    let sw = wide(&w, 50_000, 25, 25);
    run(&w, &sw, repeats, "generated 50,000 x 50 (train, holdout, synthetic each)");
}
