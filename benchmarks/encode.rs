//! Read + encode throughput: 1M rows x 15 columns of UCI Adult (rows resampled with a fixed
//! seed), as CSV and as Parquet, against the bundled Adult schema.
//!
//! Run: `benchmarks/run_encode.sh` (this plus the pandas baseline on the same files), or
//! `cargo bench --bench encode` alone. Prints a Markdown table; figures go into
//! benchmarks/README.md.

use std::time::{Duration, Instant};

use polars::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use privsynth::codec::TableCodec;
use privsynth::data;
use privsynth::schema::Schema;

const ROWS: usize = 1_000_000;
const REPEATS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = Schema::load(&root.join("schemas/adult.yaml"))?;
    let table = schema.table(None)?.clone();
    let codec = TableCodec::new(&table)?;
    let adult = data::read_for_table(&root.join("data/adult/adult.csv"), &table)?;

    let mut rng = StdRng::seed_from_u64(2026);
    let idx: Vec<IdxSize> = (0..ROWS).map(|_| rng.random_range(0..adult.df.height() as IdxSize)).collect();
    let mut big = adult.df.take(&IdxCa::from_vec("idx".into(), idx))?;
    // The CSV was read as text; give Parquet real types, as a typed source would have them.
    for c in table.columns.iter().filter(|c| c.kind == privsynth::schema::ColumnType::Integer) {
        let typed = big.column(&c.name)?.cast(&DataType::Int64)?;
        big.with_column(typed)?;
    }
    // PRIVSYNTH_BENCH_DIR keeps the generated files (the pandas baseline reads the same ones).
    let dir = tempfile::tempdir()?;
    let out_dir = std::env::var_os("PRIVSYNTH_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().to_path_buf());
    let csv = out_dir.join("adult-1m.csv");
    let parquet = out_dir.join("adult-1m.parquet");
    data::write(&mut big, &csv, &table, data::Output::new(data::Format::Csv))?;
    data::write(&mut big, &parquet, &table, data::Output::new(data::Format::Parquet))?;
    let mb = std::fs::metadata(&csv)?.len() as f64 / 1e6;
    println!(
        "input: {ROWS} rows x {} columns, CSV {mb:.0} MB; median of {REPEATS} runs, {} threads",
        big.width(),
        rayon::current_num_threads()
    );
    println!("| stage | CSV | Parquet |");
    println!("|---|---|---|");

    let mut stages: Vec<(&str, Vec<Duration>, Vec<Duration>)> = vec![
        ("structure check (CSV only)", vec![], vec![]),
        ("read (Polars)", vec![], vec![]),
        ("encode", vec![], vec![]),
        ("read + encode", vec![], vec![]),
    ];
    for _ in 0..REPEATS {
        for (k, path) in [(0, &csv), (1, &parquet)] {
            let t0 = Instant::now();
            if k == 0 {
                data::scan_csv(path, &table.csv, data::Show::Nothing)?;
                stages[0].1.push(t0.elapsed());
            }
            let t0 = Instant::now();
            let raw = data::read_for_table(path, &table)?;
            let t_read = t0.elapsed();
            let t1 = Instant::now();
            let enc = codec.encode(&raw)?;
            let t_enc = t1.elapsed();
            assert_eq!(enc.rows(), ROWS);
            let push = |v: &mut (&str, Vec<Duration>, Vec<Duration>), d| if k == 0 { v.1.push(d) } else { v.2.push(d) };
            push(&mut stages[1], t_read);
            push(&mut stages[2], t_enc);
            push(&mut stages[3], t_read + t_enc);
        }
    }
    for (name, c, p) in stages {
        let fmt =
            |v: Vec<Duration>| if v.is_empty() { "-".to_string() } else { format!("{:.2} s", median(v).as_secs_f64()) };
        println!("| {name} | {} | {} |", fmt(c), fmt(p));
    }
    Ok(())
}
