//! Generates the tables of the scale benchmark (issue 19): the bundled raw Adult (both splits,
//! 48,842 x 15) resampled with replacement (fixed seed) to N rows, written in batches of one
//! million rows (Parquet row groups), so that even 100M rows are generated in bounded memory.
//! The benchmark itself is the release binary's `synth` on the file, timed from outside
//! (commands and figures in benchmarks/README.md).
//!
//! Usage: cargo bench --bench scale -- ROWS OUT.parquet

use polars::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use privsynth::data;
use privsynth::schema::Schema;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let [rows, out] = args.as_slice() else {
        return Err("usage: cargo bench --bench scale -- ROWS OUT.parquet".into());
    };
    let rows: usize = rows.replace('_', "").parse()?;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let table = Schema::load(&root.join("schemas/adult.yaml"))?.table(None)?.clone();
    let mut base = data::read_for_table(&root.join("data/adult/adult.csv"), &table)?.df;
    base.vstack_mut(&data::read_for_table(&root.join("data/adult/adult_test.csv"), &table)?.df)?;
    let mut rng = StdRng::seed_from_u64(10);
    let mut left = rows;
    let started = std::time::Instant::now();
    let path = std::path::Path::new(out);
    let how = data::Output::new(data::Format::for_output(path, None)?);
    let (n, w) = data::write_batches(path, &table, how, || {
        if left == 0 {
            return Ok(None);
        }
        let b = left.min(1 << 20);
        left -= b;
        let idx =
            IdxCa::from_vec("idx".into(), (0..b).map(|_| rng.random_range(0..base.height()) as IdxSize).collect());
        base.take(&idx).map(Some).map_err(privsynth::error::Error::polars)
    })?;
    eprintln!("wrote {n} x {w} to {out} in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
