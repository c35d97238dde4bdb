//! Speed and memory of Private-PGM estimation (mirror descent on the junction tree): milliseconds
//! per iteration on fixed structures over private-pgm's coded Adult, from a small tree to models
//! of the size AIM reaches at large budgets; and the cost of one AIM scoring pass (belief
//! propagation, then the marginal of every pair).
//!
//! Usage: cargo bench --bench estimate -- [ITERATIONS (default 200)]

use std::time::Instant;

use privsynth::codec::TableCodec;
use privsynth::data;
use privsynth::marginals;
use privsynth::model::estimate::{self, Measurement};
use privsynth::model::{GraphicalModel, JunctionTree};
use privsynth::propose::from_domain::from_domain_file;
use privsynth_privacy::{Budget, mechanisms};

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
    let iters: usize =
        std::env::args().skip(1).find(|a| !a.starts_with("--")).and_then(|a| a.parse().ok()).unwrap_or(200);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = from_domain_file(&root.join("data/private-pgm/adult-domain.json"), "adult")?;
    let table = schema.table(None)?.clone();
    let real =
        TableCodec::new(&table)?.encode(&data::read_for_table(&root.join("data/private-pgm/adult.csv"), &table)?)?;
    let d = real.sizes().len();
    // Pairs: a spanning tree (MST-like), and AIM-like selections with cycles and fill-in.
    let tree: Vec<Vec<usize>> = vec![
        vec![4, 6],
        vec![6, 8],
        vec![6, 13],
        vec![3, 13],
        vec![3, 5],
        vec![1, 5],
        vec![0, 4],
        vec![0, 11],
        vec![9, 13],
        vec![10, 13],
        vec![7, 12],
        vec![7, 13],
        vec![2, 7],
    ];
    let aim: Vec<Vec<usize>> = tree
        .iter()
        .cloned()
        .chain([vec![0, 6], vec![5, 8], vec![0, 3], vec![11, 13], vec![8, 11], vec![0, 9], vec![3, 9], vec![5, 11]])
        .collect();
    let large: Vec<Vec<usize>> =
        aim.iter().cloned().chain([vec![4, 12], vec![6, 12], vec![1, 12], vec![10, 12], vec![2, 8]]).collect();
    println!(
        "| structure | cliques | model cells | MB | ms per iteration | scoring pass ms | peak RSS MB (after the fit / after scoring) | iterations | loss |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, pairs) in [("MST-like tree", tree), ("AIM-like (cycles, fill-in)", aim), ("AIM-like, large", large)] {
        let sets: Vec<Vec<usize>> = (0..d).map(|a| vec![a]).chain(pairs).collect();
        // Released at a large budget (noise std 10): timing does not depend on the values.
        let mut budget = Budget::from_rho(1e6)?;
        let ms: Vec<Measurement> = sets
            .iter()
            .map(|s| {
                let y = mechanisms::gaussian_counts(&mut budget, marginals::count(&real, s), 1, 10.0, "bench")
                    .expect("budget");
                Measurement {
                    attrs: s.clone(),
                    weights: vec![],
                    y: y.value().iter().map(|&v| v as f64).collect(),
                    sigma: 10.0,
                }
            })
            .collect();
        let tree = JunctionTree::build(real.sizes(), &sets);
        let (k, cells) = (tree.cliques.len(), tree.total_cells());
        let mut model = GraphicalModel::uniform(tree, real.rows() as f64);
        let t = Instant::now();
        let momentum = std::env::var("PRIVSYNTH_MOMENTUM").ok().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let settle = std::env::var("PRIVSYNTH_SETTLE").ok().and_then(|v| v.parse().ok());
        let stats = estimate::mirror_descent(
            &mut model,
            &ms,
            estimate::Options { max_iters: iters, tol: 0.0, settle, window: 25, momentum, ..Default::default() },
        );
        let ms_per = t.elapsed().as_secs_f64() * 1e3 / stats.iterations as f64;
        let fit_peak = peak_rss_mb();
        let t = Instant::now();
        let b = model.calibrate();
        let pairs = marginals::subsets(d, 2);
        let mass: f64 = pairs.iter().map(|p| model.marginal(&b, p).values.iter().sum::<f64>()).sum();
        let score_ms = t.elapsed().as_secs_f64() * 1e3;
        assert!((mass / pairs.len() as f64 - real.rows() as f64).abs() < 1e-6 * real.rows() as f64);
        println!(
            "| {name} | {k} | {cells:.0} | {:.1} | {ms_per:.2} | {score_ms:.0} | {fit_peak:.0} / {:.0} | {} | {:.6e} |",
            cells * 8.0 / (1 << 20) as f64,
            peak_rss_mb(),
            stats.iterations,
            stats.loss
        );
    }
    Ok(())
}
