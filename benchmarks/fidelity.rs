//! Fidelity and speed of the mechanisms (AIM, MST, and the default `auto`) on the peers'
//! benchmark, private-pgm's coded Adult (48,842 x 14), and on other shapes built from the bundled
//! public data.
//!
//! For each epsilon and seed: fit (delta 1e-9), sample as many rows as the real table, and
//! report the mean total variation distance over all 1-, 2- and 3-way marginals (on the schema's
//! domain), CPU time, wall time and the run's peak memory. `benchmarks/run_mst.sh` and
//! `run_aim.sh` run this beside the peers.
//!
//! Usage: cargo bench --bench fidelity -- [--aim | --mech=aim|mst|auto] [--data=NAME]
//!        [EPSILONS (comma list, default 1)] [SEEDS (default 5)]
//!        cargo bench --bench fidelity -- --score FILE...
//! Data (`--data=`):
//! - `pgm` (default): private-pgm's coded Adult, `data/private-pgm/adult.csv`.
//! - `adult32`: the bundled raw Adult, both splits (48,842 x 15), with `schemas/adult.yaml`'s
//!   numeric columns cut into 32 equal-width bins between their public bounds (education_num
//!   keeps its 16 values).
//! - `adult10m`: the bundled raw Adult with `schemas/adult.yaml`, resampled with replacement to
//!   `--rows=N` rows (default 10,000,000; fixed seed).
//! - `heart`: the Cleveland heart table (303 x 14) with `schemas/heart.yaml`.
//! - `small`: 1,300 rows drawn from the raw Adult (fixed seed) with age and hours per week
//!   unbinned (74 and 99 values), education, occupation, native country (42), and 6 more.
//!
//! Environment: PRIVSYNTH_ITERS (final estimation iterations), PRIVSYNTH_ROUND_ITERS and
//! PRIVSYNTH_MAX_MB, PRIVSYNTH_ROUND_WORK (AIM: cell-iterations of a round's refit; 0: no
//! limit) and PRIVSYNTH_FINAL_WORK (of the final estimation), PRIVSYNTH_COLD (AIM: refit from scratch each round) and
//! PRIVSYNTH_NO_SETTLE (AIM: always PRIVSYNTH_ROUND_ITERS per round) and PRIVSYNTH_SETTLE
//! (AIM: the settling fraction; PRIVSYNTH_FINAL_SETTLE: of the final estimation only), for sweeps; PRIVSYNTH_TRACE prints AIM's rounds;
//! PRIVSYNTH_NO_3WAY skips the 3-way score (slow on 10M rows). AIM's defaults, for ablations:
//! PRIVSYNTH_ONE_WAY (share of the budget for the first one-way marginals; 0: AIM's own),
//! PRIVSYNTH_COMPRESS=1|0 (domain compression from them), PRIVSYNTH_SMALL_RATIO and
//! PRIVSYNTH_SMALL_SHARE (the small-data top-up; a ratio alone turns it off),
//! PRIVSYNTH_MOMENTUM (of the fits; 0: plain mirror descent), PRIVSYNTH_ANNEAL_CUT (let a round
//! whose refit the work limit cut short anneal, as before). PRIVSYNTH_MORE=100,300,...: continue
//! each fit's final estimation to that many more iterations and score each (paired, same seed).
//! PRIVSYNTH_EXPAND_AB: also score each run's sampled codes with merged values expanded
//! uniformly (as before `mechanism::expansion`), paired, on stderr.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use privsynth::codec::{EncodedTable, TableCodec};
use privsynth::data;
use privsynth::marginals::{mean_tvd, subsets};
use privsynth::mechanism::{self, Mechanism, aim, mst};
use privsynth::model::{estimate, sample};
use privsynth::propose::from_domain::from_domain_file;
use privsynth::schema::{Schema, Table};
use privsynth_privacy::Budget;

fn cpu_seconds() -> f64 {
    // user + system time of this process, from /proc/self/stat (clock ticks, 100 per second).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Reset the peak resident set size to the current one (Linux: `5` to clear_refs), so that
/// each run's peak is its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    privsynth::model::keep_freed_memory();
    let all_args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| all_args.iter().find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_string));
    // `--score FILE...`: score synthetic CSVs (e.g. a peer's) with the same TVD code and exit.
    if let Some(i) = all_args.iter().position(|a| a == "--score") {
        let files: Vec<String> = all_args[i + 1..].iter().filter(|a| !a.starts_with("--")).cloned().collect();
        return score(&files);
    }
    let mech = match flag("mech").as_deref() {
        Some("aim") => Mechanism::Aim,
        Some("mst") => Mechanism::Mst,
        Some(other) => return Err(format!("unknown --mech={other}").into()),
        None if all_args.iter().any(|a| a == "--aim") => Mechanism::Aim,
        None => Mechanism::Mst,
    };
    let data_name = flag("data").unwrap_or_else(|| "pgm".into());
    let rows: usize = flag("rows").and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let args: Vec<String> = all_args.iter().filter(|a| !a.starts_with("--")).cloned().collect();
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    let epsilons: Vec<f64> =
        args.first().map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect()).unwrap_or(vec![1.0]);
    let seeds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let (table, real) = load(&data_name, rows)?;
    let d = real.sizes().len();
    let (one, two, three) = (subsets(d, 1), subsets(d, 2), subsets(d, 3));
    let skip3 = std::env::var_os("PRIVSYNTH_NO_3WAY").is_some();
    println!(
        "mechanism: {}; data: {data_name} ({} x {d}, {} cells in the largest column)",
        mech.name(),
        real.rows(),
        real.sizes().iter().max().unwrap_or(&0)
    );
    println!(
        "| epsilon | seed | 2-way TVD | 3-way TVD | fit CPU s | fit+sample CPU s | wall s | iterations | rounds | model MB | 1-way TVD | peak MB | chosen |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &eps in &epsilons {
        let mut sums = [0.0; 6];
        for seed in 0..seeds {
            reset_peak();
            let (c0, w0) = (cpu_seconds(), Instant::now());
            let mut budget = Budget::from_epsilon_delta(eps, 1e-9)?;
            let iters = env("PRIVSYNTH_ITERS").map_or(estimate::Options::default().max_iters, |v| v as usize);
            let final_fit = estimate::Options { max_iters: iters, ..Default::default() };
            let dflt = aim::Options::default();
            let opts = aim::Options {
                round_iters: env("PRIVSYNTH_ROUND_ITERS").map_or(dflt.round_iters, |v| v as usize),
                max_model_mb: env("PRIVSYNTH_MAX_MB").unwrap_or(dflt.max_model_mb),
                // PRIVSYNTH_ROUND_WORK=0: no limit on a round's cell-iterations.
                round_work: env("PRIVSYNTH_ROUND_WORK").map_or(dflt.round_work, |w| (w > 0.0).then_some(w)),
                final_work: env("PRIVSYNTH_FINAL_WORK").map_or(dflt.final_work, |w| (w > 0.0).then_some(w)),
                warm_start: std::env::var_os("PRIVSYNTH_COLD").is_none(),
                settle: if std::env::var_os("PRIVSYNTH_NO_SETTLE").is_some() {
                    None
                } else {
                    env("PRIVSYNTH_SETTLE").or(dflt.settle)
                },
                estimate: estimate::Options {
                    settle: env("PRIVSYNTH_FINAL_SETTLE").or(env("PRIVSYNTH_SETTLE")),
                    ..final_fit
                },
                // PRIVSYNTH_ONE_WAY=0: AIM's own one-way budget.
                one_way_share: env("PRIVSYNTH_ONE_WAY").map_or(dflt.one_way_share, |f| (f > 0.0).then_some(f)),
                small_data: match (env("PRIVSYNTH_SMALL_RATIO"), env("PRIVSYNTH_SMALL_SHARE")) {
                    (Some(ratio), Some(share)) => Some(aim::SmallData { ratio, share }),
                    (Some(_), None) => None,
                    _ => dflt.small_data,
                },
                compress: std::env::var("PRIVSYNTH_COMPRESS").map_or(dflt.compress, |v| v == "1"),
                momentum: env("PRIVSYNTH_MOMENTUM").unwrap_or(dflt.momentum),
                anneal_cut: std::env::var_os("PRIVSYNTH_ANNEAL_CUT").is_some(),
                ..dflt
            };
            let workload = aim::default_workload(real.sizes(), 2, 10_000.0);
            let chosen = mech;
            let (fit, rounds) = match chosen {
                Mechanism::Mst => (mst::fit(&real, &mut budget, final_fit)?, 0),
                _ => {
                    let (fit, trace) = aim::fit(&real, &workload, &mut budget, opts)?;
                    if std::env::var_os("PRIVSYNTH_TRACE").is_some() {
                        for (i, r) in trace.rounds.iter().enumerate() {
                            eprintln!(
                                "round {i}: {:?} sigma {:.1} eps {:.4} eligible {} cells {:.0}/{:.0} iters {} annealed {}",
                                r.selected,
                                r.sigma,
                                r.epsilon,
                                r.eligible,
                                r.model_cells,
                                r.limit_cells,
                                r.iterations,
                                r.annealed
                            );
                        }
                        eprintln!(
                            "time: filter {:.2} s, scoring {:.2} s, estimation {:.2} s",
                            trace.filter_seconds, trace.score_seconds, trace.fit_seconds
                        );
                    }
                    (fit, trace.rounds.len())
                }
            };
            let c_fit = cpu_seconds() - c0;
            let mut rng = StdRng::seed_from_u64(seed);
            let codes = sample::sample(&fit.model, real.rows(), &mut rng);
            let synth_codes = std::env::var_os("PRIVSYNTH_EXPAND_AB").is_some().then(|| codes.clone());
            let codes = mechanism::expand(&fit.compression, &fit.expansion, codes, &mut rng);
            let (c_all, wall) = (cpu_seconds() - c0, w0.elapsed().as_secs_f64());
            let peak = peak_rss_mb();
            // PRIVSYNTH_EXPAND_AB: also score the same sampled codes with merged values expanded
            // uniformly (as before the one-way shares were used), paired.
            if let Some(synth_codes) = synth_codes {
                let mut r2 = StdRng::seed_from_u64(seed + 1_000_000);
                let uniform = mechanism::expand(&fit.compression, &[], synth_codes, &mut r2);
                let s = EncodedTable::from_synthetic(real.names().to_vec(), real.sizes().to_vec(), uniform);
                eprintln!(
                    "EXPAND {eps} {seed} uniform {:.5} {:.5} {:.5}",
                    mean_tvd(&real, &s, &one),
                    mean_tvd(&real, &s, &two),
                    if skip3 { f64::NAN } else { mean_tvd(&real, &s, &three) }
                );
            }
            let synth = EncodedTable::from_synthetic(real.names().to_vec(), real.sizes().to_vec(), codes);
            let (t1, t2) = (mean_tvd(&real, &synth, &one), mean_tvd(&real, &synth, &two));
            let t3 = if skip3 { f64::NAN } else { mean_tvd(&real, &synth, &three) };
            // PRIVSYNTH_MORE=100,300,...: continue the final fit to that many more iterations
            // (cumulative) and score each with the same sampling seed: a paired look at what
            // a longer final estimation buys on the same measurements.
            if let Ok(more) = std::env::var("PRIVSYNTH_MORE") {
                let ms: Vec<estimate::Measurement> = fit.measurements.iter().map(|m| m.value().clone()).collect();
                let mut model = fit.model.clone();
                let mut done = 0;
                for k in more.split(',').filter_map(|x| x.parse::<usize>().ok()) {
                    let c = cpu_seconds();
                    let st = estimate::mirror_descent(
                        &mut model,
                        &ms,
                        estimate::Options {
                            max_iters: k - done,
                            tol: 0.0,
                            momentum: aim::MOMENTUM,
                            step: Some(fit.stats.step),
                            ..Default::default()
                        },
                    );
                    done = k;
                    let mut rng = StdRng::seed_from_u64(seed);
                    let codes = sample::sample(&model, real.rows(), &mut rng);
                    let codes = mechanism::expand(&fit.compression, &fit.expansion, codes, &mut rng);
                    let s = EncodedTable::from_synthetic(real.names().to_vec(), real.sizes().to_vec(), codes);
                    let t3 = if skip3 { f64::NAN } else { mean_tvd(&real, &s, &three) };
                    eprintln!(
                        "MORE {eps} {seed} +{k} ({} run, {:.1} CPU s): {:.4} / {t3:.4}",
                        st.iterations,
                        cpu_seconds() - c,
                        mean_tvd(&real, &s, &two)
                    );
                }
            }
            let mb = fit.model.tree.total_cells() * 8.0 / (1 << 20) as f64;
            println!(
                "| {eps} | {seed} | {t2:.4} | {t3:.4} | {c_fit:.2} | {c_all:.2} | {wall:.2} | {} | {rounds} | {mb:.1} | {t1:.4} | {peak:.0} | {} |",
                fit.stats.iterations,
                chosen.name()
            );
            for (s, v) in sums.iter_mut().zip([t2, t3, c_all, wall, t1, peak]) {
                *s += v;
            }
        }
        let n = seeds as f64;
        println!(
            "| **{eps}** | mean | **{:.4}** | **{:.4}** | | **{:.2}** | {:.2} | | | | {:.4} | {:.0} | |",
            sums[0] / n,
            sums[1] / n,
            sums[2] / n,
            sums[3] / n,
            sums[4] / n,
            sums[5] / n
        );
    }
    println!("peak memory: {:.0} MB", peak_rss_mb());
    let _ = table;
    Ok(())
}

fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn encode_files(table: &Table, files: &[&str]) -> Result<EncodedTable, Box<dyn std::error::Error>> {
    let codec = TableCodec::new(table)?;
    let mut codes: Vec<Vec<u32>> = vec![vec![]; codec.columns.len()];
    let mut names = vec![];
    let mut sizes = vec![];
    for f in files {
        let e = codec.encode(&data::read_for_table(&root().join(f), table)?)?;
        for (i, col) in codes.iter_mut().enumerate() {
            col.extend(e.codes(i));
        }
        (names, sizes) = (e.names().to_vec(), e.sizes().to_vec());
    }
    Ok(EncodedTable::from_synthetic(names, sizes, codes))
}

fn adult_schema() -> Result<Table, Box<dyn std::error::Error>> {
    Ok(Schema::load(&root().join("schemas/adult.yaml"))?.table(None)?.clone())
}

const ADULT: [&str; 2] = ["data/adult/adult.csv", "data/adult/adult_test.csv"];

/// Rows `idx` of `t`.
fn rows_of(t: &EncodedTable, idx: &[usize]) -> EncodedTable {
    let codes = (0..t.sizes().len())
        .map(|a| {
            let col = t.codes(a);
            idx.iter().map(|&r| col[r]).collect()
        })
        .collect();
    EncodedTable::from_synthetic(t.names().to_vec(), t.sizes().to_vec(), codes)
}

fn load(name: &str, rows: usize) -> Result<(Table, EncodedTable), Box<dyn std::error::Error>> {
    match name {
        "pgm" => {
            let (table, _, real) = load_pgm()?;
            Ok((table, real))
        }
        "adult32" => {
            let mut table = adult_schema()?;
            for c in &mut table.columns {
                if let Some(d) = c.domain.as_mut().filter(|d| d.bounds.is_some())
                    && c.name != "education_num"
                {
                    d.edges = None;
                    d.bins = Some(32);
                }
            }
            let real = encode_files(&table, &ADULT)?;
            Ok((table, real))
        }
        "adult10m" => {
            let table = adult_schema()?;
            let base = encode_files(&table, &ADULT)?;
            let mut rng = StdRng::seed_from_u64(10);
            let idx: Vec<usize> = (0..rows).map(|_| rng.random_range(0..base.rows())).collect();
            Ok((table, rows_of(&base, &idx)))
        }
        "heart" => {
            let table = Schema::load(&root().join("schemas/heart.yaml"))?.table(None)?.clone();
            let real = encode_files(&table, &["data/uci-heart-disease/processed.cleveland.data"])?;
            Ok((table, real))
        }
        "small" => {
            let mut table = adult_schema()?;
            let keep = [
                "age",
                "workclass",
                "education",
                "marital_status",
                "occupation",
                "relationship",
                "race",
                "sex",
                "hours_per_week",
                "native_country",
                "income",
            ];
            table.columns.retain(|c| keep.contains(&c.name.as_str()));
            for c in &mut table.columns {
                if let Some(d) = c.domain.as_mut().filter(|d| d.bounds.is_some()) {
                    // One code per whole year / hour: 74 and 99 values.
                    d.edges = None;
                    d.bins = None;
                }
            }
            let base = encode_files(&table, &ADULT)?;
            let mut idx: Vec<usize> = (0..base.rows()).collect();
            let mut rng = StdRng::seed_from_u64(1300);
            for i in 0..1300 {
                let j = rng.random_range(i..idx.len());
                idx.swap(i, j);
            }
            idx.truncate(1300);
            Ok((table, rows_of(&base, &idx)))
        }
        other => Err(format!("unknown --data={other} (pgm, adult32, adult10m, heart, small)").into()),
    }
}

fn load_pgm() -> Result<(Table, TableCodec, EncodedTable), Box<dyn std::error::Error>> {
    let schema = from_domain_file(&root().join("data/private-pgm/adult-domain.json"), "adult")?;
    let table = schema.table(None)?.clone();
    let codec = TableCodec::new(&table)?;
    let raw = data::read_for_table(&root().join("data/private-pgm/adult.csv"), &table)?;
    let real = codec.encode(&raw)?;
    Ok((table, codec, real))
}

fn score(files: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let (table, codec, real) = load_pgm()?;
    let d = real.sizes().len();
    let (two, three) = (subsets(d, 2), subsets(d, 3));
    for f in files {
        let raw = data::read_for_table(std::path::Path::new(f), &table)?;
        let synth = codec.encode(&raw)?;
        println!("SCORE {f} {:.4} {:.4}", mean_tvd(&real, &synth, &two), mean_tvd(&real, &synth, &three));
    }
    Ok(())
}
