//! Counting engines (issue 21): one AIM fit of a Parquet/CSV table with its marginals counted
//! by the local engine (streamed read, encode, bound, compact-code counts in this process) or
//! by DataFusion (encode + bound + count in one plan over the file). Prints the time of the
//! counting step and of the whole fit, the queries the engine ran and the process's peak
//! resident memory; run each engine in its own process for the memory figure.
//!
//! Tables: `cargo bench --bench scale -- ROWS OUT.parquet` (Adult resampled; schemas/adult.yaml).
//! Usage: cargo bench --bench engine --features engine-datafusion -- ENGINE FILE [ROUNDS]
//! (ENGINE: local or datafusion; ROUNDS of AIM, default 8.) Nothing is recorded in a ledger;
//! the noise is drawn as in a release and only timings are printed.

use std::path::PathBuf;
use std::time::Instant;

use privsynth::engine::Engine;
use privsynth::marginals::Counter;
use privsynth::pipeline::{FitOptions, Plan};
use privsynth::schema::Schema;
use privsynth_privacy::Budget;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let (engine, file, rounds) = match args.as_slice() {
        [e, f] => (e, f, 8),
        [e, f, r] => (e, f, r.parse()?),
        _ => {
            return Err("usage: cargo bench --bench engine --features engine-datafusion -- ENGINE FILE [ROUNDS]".into());
        }
    };
    let engine = Engine::parse(engine)?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let schema = Schema::load(&root.join("schemas/adult.yaml"))?;
    let table = schema.table(None)?.clone();
    let opts = FitOptions { rounds: Some(rounds), engine: engine.clone(), ..Default::default() };
    let plan = Plan::new(&schema, table, opts, "adult.yaml")?;
    let path = PathBuf::from(file);
    let mut budget = Budget::from_epsilon_delta(1.0, 1e-9)?;
    let started = Instant::now();
    let (counter, queries): (Box<dyn Counter>, Box<dyn Fn() -> usize>) = match &engine {
        Engine::Local => (Box::new(plan.rows_streamed(&path, privsynth::data::BATCH_ROWS)?.encoded), Box::new(|| 0)),
        _ => {
            let c = std::sync::Arc::new(privsynth::engine::datafusion::DataFusionCounter::open(
                &plan.table,
                &plan.codec,
                &path,
                plan.rows_per_unit(),
                &engine,
            )?);
            let q = c.clone();
            (Box::new(ArcCounter(c)), Box::new(move || q.queries()))
        }
    };
    // The counting work: everything AIM will ask for (the local engine counts on demand, so
    // its figure here is the read, encode and bound).
    let d = counter.sizes().len();
    let mut wanted: Vec<Vec<usize>> = (0..d).map(|a| vec![a]).collect();
    wanted.extend(
        privsynth::mechanism::aim::candidates(plan.workload.as_ref().ok_or("AIM workload")?).into_iter().map(|c| c.0),
    );
    counter.prefetch(&wanted)?;
    let counted = started.elapsed().as_secs_f64();
    let fitted = plan.fit(&*counter, &mut budget)?;
    let total = started.elapsed().as_secs_f64();
    println!(
        "engine {} file {} rounds {}: read+count {counted:.2} s, whole fit {total:.2} s, {} quer(ies), {} marginals \
         measured, peak RSS {:.0} MB",
        engine.name(),
        path.display(),
        fitted.aim.as_ref().map_or(0, |t| t.rounds.len()),
        queries(),
        fitted.fit.measurements.len(),
        peak_rss_mb()
    );
    Ok(())
}

/// A shared DataFusion counter (the benchmark keeps a handle for its query count).
struct ArcCounter(std::sync::Arc<privsynth::engine::datafusion::DataFusionCounter>);

impl Counter for ArcCounter {
    fn names(&self) -> &[String] {
        self.0.names()
    }
    fn sizes(&self) -> &[usize] {
        self.0.sizes()
    }
    fn bound(&self) -> privsynth_privacy::bounding::ContributionBound {
        self.0.bound()
    }
    fn count_many(&self, s: &[Vec<usize>]) -> privsynth::error::Result<privsynth_privacy::Sensitive<Vec<Vec<i64>>>> {
        self.0.count_many(s)
    }
    fn remap(&self, maps: &[Vec<u32>], sizes: &[usize]) -> Box<dyn Counter + '_> {
        self.0.remap(maps, sizes)
    }
    fn prefetch(&self, s: &[Vec<usize>]) -> privsynth::error::Result<()> {
        self.0.prefetch(s)
    }
}
