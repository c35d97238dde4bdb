//! Shadow-model membership inference in the style of TAPAS (Houssiau, Jordon, Cohen, Daniel,
//! Elliott, Geddes, Mole, Rangel-Smith and Szpruch, "TAPAS: a toolbox for adversarial privacy
//! auditing of synthetic data", NeurIPS 2022 workshop): can an attacker who knows the generator
//! and holds auxiliary data from the same population tell whether a given real person was in
//! the generator's training data?
//!
//! Threat model (echoed in the report): the attacker knows the mechanism and its budget (the
//! model file's), and has the holdout as auxiliary data. For each target record:
//! 1. shadow datasets of the release's size are drawn from the auxiliary data (without the
//!    target), and the target is added to half of them; each is fitted with the model's own
//!    mechanism at its epsilon and delta (the in-process pipeline of `synth`), and sampled;
//! 2. each synthetic output gets a score for the target: for every column and every pair of
//!    columns, ln((synthetic count of the target's value + 1) / (count expected from the
//!    auxiliary data + 1)), summed (a marginal-query attack: how much more the output holds the
//!    target's values than the population does);
//! 3. a threshold is trained on one half of the shadows and tested on fresh shadows (AUC, and
//!    advantage = TPR - FPR at the trained threshold);
//! 4. the trained attack is applied to the real synthetic table.
//!
//! Targets: half the most unusual train records (largest sum of -ln auxiliary frequency of
//! their values), half random train records; the same number of holdout records are the
//! control (not in the release: the real release's advantage is the share of train targets
//! flagged "in" minus the share of holdout targets flagged "in").

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;

use crate::codec::EncodedTable;
use crate::data::RawTable;
use crate::error::{Error, Result};
use crate::pipeline::Plan;

#[derive(Debug, Clone)]
pub struct Options {
    /// Train targets (and as many holdout controls).
    pub targets: usize,
    /// Shadow fits per target for training the threshold, and as many fresh ones for testing
    /// (each half with the target, half without).
    pub shadows: usize,
    /// Rows of each shadow dataset (default: the train table's size, at most the holdout's - 1).
    pub shadow_rows: Option<usize>,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { targets: 3, shadows: 20, shadow_rows: None, seed: 0 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// "train" (a member of the real release) or "holdout" (the control).
    pub side: String,
    /// "outlier" or "random".
    pub kind: String,
    /// On fresh shadows: AUC of the score, and TPR - FPR at the trained threshold.
    pub auc: f64,
    pub advantage: f64,
    /// The score of the real synthetic table and whether the attack says "in".
    pub release_score: f64,
    pub flagged_in: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub auc: f64,
    pub advantage: f64,
    /// Share of this side's targets the attack flags as members of the real release.
    pub flagged_in: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Membership {
    pub threat_model: String,
    pub mechanism: String,
    pub epsilon: f64,
    pub delta: f64,
    pub shadows_per_target: usize,
    pub shadow_rows: usize,
    pub seed: u64,
    /// Means over the train targets (shadow experiments on people of the release).
    pub train: Side,
    /// The same on holdout targets: the control.
    pub holdout: Side,
    /// On the real release: train targets flagged "in" minus holdout targets flagged "in".
    pub release_advantage: f64,
    pub targets: Vec<Target>,
    pub seconds: f64,
}

/// AUC of scores `pos` against `neg` (ties count 1/2).
pub fn auc(pos: &[f64], neg: &[f64]) -> f64 {
    if pos.is_empty() || neg.is_empty() {
        return 0.5;
    }
    let mut s = 0.0;
    for &p in pos {
        for &n in neg {
            s += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    s / (pos.len() * neg.len()) as f64
}

/// The threshold (score > t means "in") with the best accuracy on the training shadows.
fn train_threshold(pos: &[f64], neg: &[f64]) -> f64 {
    let mut all: Vec<f64> = pos.iter().chain(neg).copied().collect();
    all.sort_by(f64::total_cmp);
    all.dedup();
    let mut best = (f64::INFINITY, -1.0);
    let mut cuts: Vec<f64> = all.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
    cuts.push(all.first().copied().unwrap_or(0.0) - 1.0);
    for t in cuts {
        let acc = pos.iter().filter(|&&x| x > t).count() + neg.iter().filter(|&&x| x <= t).count();
        if acc as f64 > best.1 {
            best = (t, acc as f64);
        }
    }
    best.0
}

/// The attack's features of the population: per column and per pair, the auxiliary data's
/// frequency of each cell.
struct Population {
    single: Vec<Vec<f64>>,
    sizes: Vec<usize>,
}

impl Population {
    fn new(aux: &EncodedTable) -> Population {
        let n = aux.rows().max(1) as f64;
        let sizes = aux.sizes().to_vec();
        let single = (0..sizes.len())
            .map(|a| {
                let mut f = vec![0.0; sizes[a]];
                for c in aux.codes(a) {
                    f[c as usize] += 1.0 / n;
                }
                f
            })
            .collect();
        Population { single, sizes }
    }
}

/// The score of one synthetic output (code columns) for a target (codes): how much more it
/// holds the target's values and value pairs than the population predicts.
fn score(synth: &[Vec<u32>], target: &[u32], pop: &Population, aux: &EncodedTable) -> f64 {
    let d = target.len();
    let n = synth.first().map_or(0, Vec::len) as f64;
    let m = aux.rows().max(1) as f64;
    let hit: Vec<Vec<bool>> = (0..d).map(|a| synth[a].iter().map(|&c| c == target[a]).collect()).collect();
    let aux_hit: Vec<Vec<bool>> = (0..d).map(|a| aux.codes(a).iter().map(|&c| c == target[a]).collect()).collect();
    let mut s = 0.0;
    for a in 0..d {
        let k = hit[a].iter().filter(|&&h| h).count() as f64;
        s += ((k + 1.0) / (n * pop.single[a][target[a] as usize] + 1.0)).ln();
        for b in a + 1..d {
            let k = hit[a].iter().zip(&hit[b]).filter(|(x, y)| **x && **y).count() as f64;
            let e = aux_hit[a].iter().zip(&aux_hit[b]).filter(|(x, y)| **x && **y).count() as f64 / m;
            s += ((k + 1.0) / (n * e + 1.0)).ln();
        }
    }
    let _ = &pop.sizes;
    s
}

/// Rows of `raw` at `idx` (all as text) plus optionally one more row taken from `extra`.
fn shadow_table(aux: &RawTable, idx: &[usize], target: Option<&RawTable>) -> Result<RawTable> {
    let mut t = aux.take(idx, "shadow".into())?;
    t.df = crate::audit_privacy::as_text(&t.df)?;
    if let Some(x) = target {
        let mut row = crate::audit_privacy::as_text(&x.df)?;
        // The target is a unit of its own.
        row = row.select(t.df.get_column_names_owned()).map_err(|e| Error::Internal(e.to_string()))?;
        t.df.vstack_mut(&row).map_err(|e| Error::Internal(e.to_string()))?;
    }
    Ok(t)
}

/// Run the attack. `train`, `holdout`: the real tables; `synthetic`: the released table;
/// `plan`: the model's table and mechanism; (epsilon, delta): the model's budget.
pub fn attack(
    plan: &Plan,
    train: &RawTable,
    holdout: &RawTable,
    synthetic: &RawTable,
    epsilon: f64,
    delta: f64,
    opts: &Options,
) -> Result<Membership> {
    let started = std::time::Instant::now();
    if opts.targets == 0 || opts.shadows < 4 {
        return Err(Error::Usage("the membership attack needs at least 1 target and 4 shadows per target".into()));
    }
    if plan.table.privacy_unit.is_some() {
        return Err(Error::Usage(
            "the membership attack treats one row as one person: it does not run on tables with a privacy_unit yet"
                .into(),
        ));
    }
    let codec = &plan.codec;
    let tr = codec.encode_all(train)?;
    let ho = codec.encode_all(holdout)?;
    let tr_valid = tr.valid_rows();
    let ho_valid = ho.valid_rows();
    if ho_valid.len() < 2 * opts.targets + 10 {
        return Err(Error::Usage(format!(
            "the membership attack needs a holdout of at least {} rows that fit the schema",
            2 * opts.targets + 10
        )));
    }
    let aux_all = codec.encode(holdout)?;
    let pop = Population::new(&aux_all);
    let rarity = |t: &EncodedTable, i: usize| -> f64 {
        (0..pop.single.len()).map(|a| -(pop.single[a][t.code(a, i) as usize].max(1e-9)).ln()).sum()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed ^ 0x7A9A5);
    let trt = codec.encode(&train.take(&tr_valid, "train".into())?)?;
    let hot = codec.encode(&holdout.take(&ho_valid, "holdout".into())?)?;
    // Targets: the most unusual half and a random half, per side.
    let pick = |t: &EncodedTable, rng: &mut rand::rngs::StdRng| -> Vec<(usize, &'static str)> {
        let mut order: Vec<usize> = (0..t.rows()).collect();
        order.sort_by(|&a, &b| rarity(t, b).total_cmp(&rarity(t, a)));
        let outliers = opts.targets.div_ceil(2);
        let mut chosen: Vec<(usize, &'static str)> = order.iter().take(outliers).map(|&i| (i, "outlier")).collect();
        let mut rest: Vec<usize> = order[outliers..].to_vec();
        rest.shuffle(rng);
        chosen.extend(rest.into_iter().take(opts.targets - outliers).map(|i| (i, "random")));
        chosen
    };
    let train_targets = pick(&trt, &mut rng);
    let hold_targets = pick(&hot, &mut rng);
    let n = opts.shadow_rows.unwrap_or(tr_valid.len()).min(ho_valid.len() - 1).max(10);
    let synth_codes = codec.encode(synthetic)?;
    let synth_cols: Vec<Vec<u32>> = (0..codec.columns.len()).map(|a| synth_codes.codes(a).to_vec()).collect();
    let rows_out = synth_codes.rows().max(1);
    // Every (target, shadow) pair: (side, target index, shadow index).
    let mut jobs = vec![];
    for (side, list) in [(0usize, &train_targets), (1, &hold_targets)] {
        for (t, _) in list.iter().enumerate() {
            for s in 0..2 * opts.shadows {
                jobs.push((side, t, s));
            }
        }
    }
    let base = opts.seed;
    let results: Vec<f64> = jobs
        .par_iter()
        .map(|&(side, t, s)| -> Result<f64> {
            let (table, enc, list, valid) = if side == 0 {
                (train, &trt, &train_targets, &tr_valid)
            } else {
                (holdout, &hot, &hold_targets, &ho_valid)
            };
            let target_row = valid[list[t].0];
            let target_codes: Vec<u32> = (0..enc.sizes().len()).map(|a| enc.code(a, list[t].0)).collect();
            let mut r = rand::rngs::StdRng::seed_from_u64(base ^ ((side as u64) << 40) ^ ((t as u64) << 20) ^ s as u64);
            // Auxiliary rows, never the target itself.
            let mut pool: Vec<usize> = ho_valid.iter().copied().filter(|&i| !(side == 1 && i == target_row)).collect();
            pool.shuffle(&mut r);
            let with = s % 2 == 1;
            let take = if with { n - 1 } else { n };
            let target = if with { Some(table.take(&[target_row], "target".into())?) } else { None };
            let shadow = shadow_table(holdout, &pool[..take], target.as_ref())?;
            let (_, codes) =
                crate::audit_privacy::synth_codes(plan, &shadow, epsilon, delta, Some(rows_out), r.random())?;
            Ok(score(&codes, &target_codes, &pop, &aux_all))
        })
        .collect::<Result<_>>()?;
    let mut targets = vec![];
    let mut k = 0;
    for (side, list, enc) in [(0usize, &train_targets, &trt), (1, &hold_targets, &hot)] {
        for &(i, kind) in list.iter() {
            let sc = &results[k..k + 2 * opts.shadows];
            k += 2 * opts.shadows;
            // Shadows 0..shadows train the threshold, the rest test it (odd = with target).
            let (tr_s, te_s) = sc.split_at(opts.shadows);
            let split = |v: &[f64], off: usize| -> (Vec<f64>, Vec<f64>) {
                let pos = v.iter().enumerate().filter(|(j, _)| !(j + off).is_multiple_of(2)).map(|(_, x)| *x).collect();
                let neg = v.iter().enumerate().filter(|(j, _)| (j + off).is_multiple_of(2)).map(|(_, x)| *x).collect();
                (pos, neg)
            };
            let (tp, tn) = split(tr_s, 0);
            let (ep, en) = split(te_s, opts.shadows);
            let thr = train_threshold(&tp, &tn);
            let tpr = ep.iter().filter(|&&x| x > thr).count() as f64 / ep.len().max(1) as f64;
            let fpr = en.iter().filter(|&&x| x > thr).count() as f64 / en.len().max(1) as f64;
            let target_codes: Vec<u32> = (0..enc.sizes().len()).map(|a| enc.code(a, i)).collect();
            let release_score = score(&synth_cols, &target_codes, &pop, &aux_all);
            targets.push(Target {
                side: if side == 0 { "train" } else { "holdout" }.into(),
                kind: kind.into(),
                auc: auc(&ep, &en),
                advantage: tpr - fpr,
                release_score,
                flagged_in: release_score > thr,
            });
        }
    }
    let side = |name: &str| -> Side {
        let v: Vec<&Target> = targets.iter().filter(|t| t.side == name).collect();
        let m = v.len().max(1) as f64;
        Side {
            auc: v.iter().map(|t| t.auc).sum::<f64>() / m,
            advantage: v.iter().map(|t| t.advantage).sum::<f64>() / m,
            flagged_in: v.iter().filter(|t| t.flagged_in).count() as f64 / m,
        }
    };
    let (tr_side, ho_side) = (side("train"), side("holdout"));
    Ok(Membership {
        threat_model: format!(
            "shadow-model attack (TAPAS style): the attacker knows the mechanism ({}) and its budget, and holds the holdout as auxiliary data; \
             {} shadow datasets of {n} rows per target, half with the target, {} to train a threshold on a marginal-query score and {} fresh ones to test it",
            plan.opts.mechanism.name(),
            2 * opts.shadows,
            opts.shadows,
            opts.shadows
        ),
        mechanism: plan.opts.mechanism.name().into(),
        epsilon,
        delta,
        shadows_per_target: 2 * opts.shadows,
        shadow_rows: n,
        seed: opts.seed,
        release_advantage: tr_side.flagged_in - ho_side.flagged_in,
        train: tr_side,
        holdout: ho_side,
        targets,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_and_threshold() {
        assert_eq!(auc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(auc(&[1.0], &[1.0]), 0.5);
        assert_eq!(auc(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        let t = train_threshold(&[3.0, 4.0], &[1.0, 2.0]);
        assert!(t > 2.0 && t < 3.0, "{t}");
    }
}

/// What the attack runs on and how large it is (`privsynth audit --membership-*`).
#[derive(Debug, Clone)]
pub struct Args {
    /// The model file the synthetic table was sampled from: the attack's shadows use its
    /// mechanism and budget. `None`: no attack. Costs 4 x targets x shadows fits.
    pub membership_model: Option<std::path::PathBuf>,
    /// Train targets of the attack (and as many holdout controls).
    pub membership_targets: usize,
    /// Shadow fits per target to train the attack (and as many fresh ones to test it).
    pub membership_shadows: usize,
    /// Rows of each shadow dataset (default: the train table's, at most the holdout's - 1).
    pub membership_rows: Option<usize>,
}

/// The attack when `--membership-model` asks for it: the model file's own table, mechanism and
/// budget.
pub fn run_if_asked(
    a: &Args,
    train: &RawTable,
    holdout: &RawTable,
    synthetic: &RawTable,
    seed: u64,
) -> Result<Option<Membership>> {
    let Some(path) = &a.membership_model else { return Ok(None) };
    let origin = path.display().to_string();
    let model = crate::model::file::ModelFile::load(path)?;
    let mechanism = match model.mechanism.as_str() {
        "aim" => crate::mechanism::Mechanism::Aim,
        "mst" => crate::mechanism::Mechanism::Mst,
        m => return Err(Error::data(&origin, format!("names an unknown mechanism {m:?}"))),
    };
    // The shadows mimic the release: its table as the model file holds it (values read from
    // the data included, if the release allowed them).
    let fit = crate::pipeline::FitOptions { mechanism, allow_data_domains: true, ..Default::default() };
    let schema =
        crate::schema::Schema { version: 1, person: None, dp_inference: None, tables: vec![model.table.clone()] };
    let plan = Plan::new(&schema, model.table.clone(), fit, &origin)?;
    let opts =
        Options { targets: a.membership_targets, shadows: a.membership_shadows, shadow_rows: a.membership_rows, seed };
    Ok(Some(attack(&plan, train, holdout, synthetic, model.privacy.epsilon, model.privacy.delta, &opts)?))
}
