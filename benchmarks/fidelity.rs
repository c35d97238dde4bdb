//! Fidelity and speed of MST or AIM on private-pgm's coded Adult (48,842 x 14), the peers'
//! benchmark.
//!
//! For each epsilon and seed: fit (delta 1e-9), sample as many rows as the real table, and
//! report the mean total variation distance over all 2-way and 3-way marginals, CPU time and
//! peak memory. `benchmarks/run_mst.sh` and `run_aim.sh` run this beside the peers.
//!
//! Usage: cargo bench --bench fidelity -- [--aim] [EPSILONS (comma list, default 1)] [SEEDS (default 5)]
//!        cargo bench --bench fidelity -- --score FILE...
//! Environment: PRIVSYNTH_ITERS (final estimation iterations), PRIVSYNTH_ROUND_ITERS and
//! PRIVSYNTH_MAX_MB, PRIVSYNTH_COLD (AIM: refit from scratch each round) and
//! PRIVSYNTH_NO_SETTLE (AIM: always PRIVSYNTH_ROUND_ITERS per round) and PRIVSYNTH_SETTLE
//! (AIM: the settling fraction), for sweeps.

use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;

use privsynth::codec::{EncodedTable, TableCodec};
use privsynth::data;
use privsynth::marginals::{mean_tvd, subsets};
use privsynth::mechanism::{self, aim, mst};
use privsynth::model::{estimate, sample};
use privsynth::propose::from_domain::from_domain_file;
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let all_args: Vec<String> = std::env::args().skip(1).collect();
    // `--score FILE...`: score synthetic CSVs (e.g. a peer's) with the same TVD code and exit.
    if let Some(i) = all_args.iter().position(|a| a == "--score") {
        let files: Vec<String> = all_args[i + 1..].iter().filter(|a| !a.starts_with("--")).cloned().collect();
        return score(&files);
    }
    let use_aim = all_args.iter().any(|a| a == "--aim");
    let args: Vec<String> = all_args.iter().filter(|a| !a.starts_with("--")).cloned().collect();
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    let epsilons: Vec<f64> =
        args.first().map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect()).unwrap_or(vec![1.0]);
    let seeds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let (_, _, real) = load_real()?;
    let d = real.sizes().len();
    let (two, three) = (subsets(d, 2), subsets(d, 3));
    println!("mechanism: {}", if use_aim { "aim" } else { "mst" });
    println!(
        "| epsilon | seed | 2-way TVD | 3-way TVD | fit CPU s | fit+sample CPU s | wall s | iterations | rounds | model MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &eps in &epsilons {
        let mut sums = (0.0, 0.0, 0.0, 0.0);
        for seed in 0..seeds {
            let (c0, w0) = (cpu_seconds(), Instant::now());
            let mut budget = Budget::from_epsilon_delta(eps, 1e-9)?;
            let iters = env("PRIVSYNTH_ITERS").map_or(estimate::Options::default().max_iters, |v| v as usize);
            let final_fit = estimate::Options { max_iters: iters, ..Default::default() };
            let (fit, rounds) = if use_aim {
                let d = aim::Options::default();
                let opts = aim::Options {
                    round_iters: env("PRIVSYNTH_ROUND_ITERS").map_or(d.round_iters, |v| v as usize),
                    max_model_mb: env("PRIVSYNTH_MAX_MB").unwrap_or(d.max_model_mb),
                    warm_start: std::env::var_os("PRIVSYNTH_COLD").is_none(),
                    settle: if std::env::var_os("PRIVSYNTH_NO_SETTLE").is_some() {
                        None
                    } else {
                        env("PRIVSYNTH_SETTLE").or(d.settle)
                    },
                    estimate: estimate::Options { settle: env("PRIVSYNTH_SETTLE"), ..final_fit },
                    ..d
                };
                let workload = aim::default_workload(real.sizes(), 2, 10_000.0);
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
            } else {
                (mst::fit(&real, &mut budget, final_fit)?, 0)
            };
            let c_fit = cpu_seconds() - c0;
            let mut rng = StdRng::seed_from_u64(seed);
            let codes = sample::sample(&fit.model, real.rows(), &mut rng);
            let codes = mechanism::expand(&fit.compression, codes, &mut rng);
            let (c_all, wall) = (cpu_seconds() - c0, w0.elapsed().as_secs_f64());
            let synth = EncodedTable::from_synthetic(real.names().to_vec(), real.sizes().to_vec(), codes);
            let (t2, t3) = (mean_tvd(&real, &synth, &two), mean_tvd(&real, &synth, &three));
            let mb = fit.model.tree.total_cells() * 8.0 / (1 << 20) as f64;
            println!(
                "| {eps} | {seed} | {t2:.4} | {t3:.4} | {c_fit:.2} | {c_all:.2} | {wall:.2} | {} | {rounds} | {mb:.1} |",
                fit.stats.iterations
            );
            sums = (sums.0 + t2, sums.1 + t3, sums.2 + c_all, sums.3 + wall);
        }
        let n = seeds as f64;
        println!(
            "| **{eps}** | mean | **{:.4}** | **{:.4}** | | **{:.2}** | {:.2} | | | |",
            sums.0 / n,
            sums.1 / n,
            sums.2 / n,
            sums.3 / n
        );
    }
    println!("peak memory: {:.0} MB", peak_rss_mb());
    Ok(())
}

fn load_real() -> Result<(privsynth::schema::Table, TableCodec, EncodedTable), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = from_domain_file(&root.join("data/private-pgm/adult-domain.json"), "adult")?;
    let table = schema.table(None)?.clone();
    let codec = TableCodec::new(&table)?;
    let raw = data::read_for_table(&root.join("data/private-pgm/adult.csv"), &table)?;
    let real = codec.encode(&raw)?;
    Ok((table, codec, real))
}

fn score(files: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let (table, codec, real) = load_real()?;
    let d = real.sizes().len();
    let (two, three) = (subsets(d, 2), subsets(d, 3));
    for f in files {
        let raw = data::read_for_table(std::path::Path::new(f), &table)?;
        let synth = codec.encode(&raw)?;
        println!("SCORE {f} {:.4} {:.4}", mean_tvd(&real, &synth, &two), mean_tvd(&real, &synth, &three));
    }
    Ok(())
}
