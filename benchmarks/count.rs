//! Counting speed: all 1-way and 2-way marginals (15 + 105) of a 50,000 x 15 table (UCI Adult
//! resampled with a fixed seed, encoded with the bundled schema). Median of 21 runs.
//!
//! Run: cargo bench --bench count

use std::time::{Duration, Instant};

use polars::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use privsynth::codec::TableCodec;
use privsynth::data::{self, RawTable};
use privsynth::marginals::{count_many, subsets};
use privsynth::schema::Schema;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = Schema::load(&root.join("schemas/adult.yaml"))?;
    let table = schema.table(None)?.clone();
    let adult = data::read_for_table(&root.join("data/adult/adult.csv"), &table)?;
    let mut rng = StdRng::seed_from_u64(5);
    let idx: Vec<IdxSize> = (0..50_000).map(|_| rng.random_range(0..adult.df.height() as IdxSize)).collect();
    let df = adult.df.take(&IdxCa::from_vec("idx".into(), idx))?;
    let enc = TableCodec::new(&table)?.encode(&RawTable::for_tests("adult-50k", df))?;
    let d = enc.sizes().len();
    let sets: Vec<Vec<usize>> = subsets(d, 1).into_iter().chain(subsets(d, 2)).collect();
    let mut times: Vec<Duration> = (0..21)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(count_many(&enc, &sets));
            t.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "all {} one- and two-way marginals of {} x {d}: median {:.1} ms (min {:.1} ms), {} threads",
        sets.len(),
        enc.rows(),
        times[10].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        rayon::current_num_threads()
    );
    Ok(())
}
