//! The audit: what a synthetic table preserved (fidelity), what it copied (memorization) and
//! what an adversary could learn from it (re-identification), each measured against train (the
//! rows the generator saw) and against a holdout (real rows it never saw), which is what
//! separates generalisation from memorization.
//!
//! The audit reads real data and its results describe it: it is for the data holder, never for
//! release with the synthetic data. Every random choice is seeded and the seed is echoed.

pub mod distance;
pub mod fidelity;
pub mod frame;
pub mod gbt;
pub mod memorization;
// issue 17: the shadow-model membership-inference attack (optional; `audit --membership-model`).
pub mod membership;
pub mod risk;

use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::schema::Role;
use frame::{Binned, Binning, Frames};

/// What to audit and how hard to attack.
#[derive(Debug, Clone)]
pub struct Options {
    /// Quasi-identifiers; default: the schema's `quasi_identifier` columns.
    pub qi: Option<Vec<String>>,
    /// The secret of attribute inference; default: the schema's first `sensitive` column.
    pub secret: Option<String>,
    /// Column sets of the linkage attack; default: the quasi-identifiers against the rest.
    pub link_a: Option<Vec<String>>,
    pub link_b: Option<Vec<String>>,
    pub seed: u64,
    /// Predicates for singling out, and the least number of targets per linkage or inference
    /// attack (train and holdout each): every row is a target when the tables allow.
    pub attacks: usize,
    /// Neighbours of the linkage attack.
    pub neighbours: usize,
    pub bootstrap: usize,
    /// Relative tolerance of a numeric secret guess.
    pub tolerance: f64,
    /// 3-way marginals scored at most (a seeded sample beyond).
    pub max_triples: usize,
    /// Synthetic and holdout rows whose nearest-neighbour distances are measured at most
    /// (a seeded random sample beyond; see [`memorization::Neighbours`]).
    pub max_queries: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            qi: None,
            secret: None,
            link_a: None,
            link_b: None,
            seed: 0,
            attacks: 2000,
            neighbours: 1,
            bootstrap: 1000,
            tolerance: 0.05,
            max_triples: 1000,
            max_queries: memorization::MAX_QUERIES,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TableInfo {
    pub file: String,
    pub rows: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub role: Role,
}

/// The threat model and settings, echoed so a reader knows what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    pub train: TableInfo,
    pub holdout: TableInfo,
    pub synthetic: TableInfo,
    pub columns: Vec<ColumnInfo>,
    pub quasi_identifiers: Vec<String>,
    pub secret: Option<String>,
    pub seed: u64,
    pub attacks: usize,
    pub neighbours: usize,
    pub bootstrap_replicates: usize,
    pub numeric_tolerance: f64,
    /// Bins: pair trends use 10 equal-width bins over train's range (open outer edges); k-way
    /// TVD, DiSCO and detection use train's deciles; missing values are a bin of their own.
    pub binning: String,
    pub distance: String,
    /// Modelled columns of the real tables that the synthetic table does not have (linked
    /// `synth` leaves out a nullable column it drew missing for every row): no measure covers
    /// them. Absent from the JSON when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns_left_out: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reidentification {
    pub linkage: Option<risk::Linkage>,
    pub inference: Option<risk::Inference>,
    pub singling_out_univariate: risk::SinglingOut,
    pub singling_out_multivariate: risk::SinglingOut,
    pub disco: Option<risk::Disco>,
    pub apparent_match: Option<risk::ApparentMatch>,
    /// Attacks not run, and why.
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub step: &'static str,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub inputs: Inputs,
    pub fidelity: fidelity::Fidelity,
    pub memorization: memorization::Memorization,
    pub reidentification: Reidentification,
    pub timings: Vec<Timing>,
    /// issue 17: the shadow-model membership-inference attack, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership: Option<membership::Membership>,
}

/// Run every measure on the loaded tables.
pub fn run(frames: &Frames, opts: &Options) -> Result<Audit> {
    let mut timings = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |step: &'static str, timings: &mut Vec<Timing>| {
        timings.push(Timing { step, seconds: clock.elapsed().as_secs_f64() });
        clock = Instant::now();
    };
    let d = frames.columns.len();
    let qi: Vec<usize> = match &opts.qi {
        Some(names) => frames.indices(names, "--qi")?,
        None => (0..d).filter(|&c| frames.columns[c].role == Role::QuasiIdentifier).collect(),
    };
    let secret: Option<usize> = match &opts.secret {
        Some(name) => Some(frames.indices(std::slice::from_ref(name), "--secret")?[0]),
        None => (0..d).find(|&c| frames.columns[c].role == Role::Sensitive),
    };
    let known: Vec<usize> = qi.iter().copied().filter(|&c| Some(c) != secret).collect();
    let link: Option<(Vec<usize>, Vec<usize>)> = match (&opts.link_a, &opts.link_b) {
        (Some(a), Some(b)) => Some((frames.indices(a, "--link-a")?, frames.indices(b, "--link-b")?)),
        (Some(_), None) | (None, Some(_)) => {
            return Err(crate::error::Error::Usage("--link-a and --link-b go together".into()));
        }
        (None, None) if !qi.is_empty() && qi.len() < d => {
            Some((qi.clone(), (0..d).filter(|c| !qi.contains(c)).collect()))
        }
        (None, None) => None,
    };
    if let Some((a, b)) = &link
        && (a.is_empty() || b.is_empty())
    {
        return Err(crate::error::Error::Usage("--link-a and --link-b each need at least one column".into()));
    }

    let wide = Binned::new(frames, frames.columns.iter().map(|c| Binning::equal_width(c, 10)).collect());
    let deciles = Binned::new(
        frames,
        frames.columns.iter().zip(&frames.train.cols).map(|(c, v)| Binning::deciles(c, v)).collect(),
    );
    lap("binning", &mut timings);
    let fid = fidelity::fidelity(frames, &wide, &deciles, opts.seed, opts.max_triples);
    lap("fidelity", &mut timings);
    let exact = memorization::exact_match(frames);
    let nb = memorization::neighbours(frames, opts.seed, opts.max_queries);
    lap("distances", &mut timings);
    let dcr = memorization::dcr(frames, &nb, opts.seed, opts.bootstrap);
    let rare = memorization::rare_values(frames);
    lap("memorization", &mut timings);

    let mut skipped = Vec::new();
    let linkage = match &link {
        Some((a, b)) => Some(risk::linkage(frames, a, b, opts.neighbours, opts.attacks, opts.seed)),
        None => {
            skipped.push(
                "linkage: no quasi-identifiers (declare roles in the schema or pass --qi, or --link-a/--link-b)".into(),
            );
            None
        }
    };
    lap("linkage", &mut timings);
    let inference = match secret {
        Some(s) if !known.is_empty() => {
            Some(risk::inference(frames, &known, s, opts.attacks, opts.seed, opts.tolerance))
        }
        Some(_) => {
            skipped.push("attribute inference: no quasi-identifiers besides the secret".into());
            None
        }
        None => {
            skipped
                .push("attribute inference, DiSCO: no secret (declare a `sensitive` column or pass --secret)".into());
            None
        }
    };
    lap("inference", &mut timings);
    let disco = match secret {
        Some(s) if !known.is_empty() => Some(risk::disco(frames, &deciles, &known, s)),
        _ => None,
    };
    let apparent = (!qi.is_empty()).then(|| risk::apparent_match(frames, &qi));
    if qi.is_empty() {
        skipped.push("apparent match: no quasi-identifiers".into());
    }
    lap("disco, apparent match", &mut timings);
    let so_u = risk::singling_out_univariate(frames, opts.attacks, opts.seed);
    let so_m = risk::singling_out_multivariate(frames, opts.attacks, opts.seed);
    lap("singling out", &mut timings);

    let info = |fr: &frame::Frame| TableInfo { file: fr.file.clone(), rows: fr.rows };
    Ok(Audit {
        inputs: Inputs {
            train: info(&frames.train),
            holdout: info(&frames.holdout),
            synthetic: info(&frames.synthetic),
            columns: frames
                .columns
                .iter()
                .map(|c| ColumnInfo { name: c.name.clone(), kind: c.kind.to_string(), role: c.role })
                .collect(),
            quasi_identifiers: qi.iter().map(|&c| frames.columns[c].name.clone()).collect(),
            secret: secret.map(|c| frames.columns[c].name.clone()),
            seed: opts.seed,
            attacks: opts.attacks,
            neighbours: opts.neighbours,
            bootstrap_replicates: opts.bootstrap,
            numeric_tolerance: opts.tolerance,
            binning: "pair trends: 10 equal-width bins over train's range, open outer edges; k-way TVD, DiSCO: \
                      train's deciles; detection: up to 254 quantile bins of the pooled rows; missing = own bin"
                .into(),
            distance: "Gower: numbers |a-b| / train's range, clipped at 1; categories 0/1; missing = missing 0, \
                       missing vs value 1; mean over columns"
                .into(),
            columns_left_out: vec![],
        },
        fidelity: fid,
        memorization: memorization::Memorization { exact_match: exact, dcr, rare_values: rare },
        reidentification: Reidentification {
            linkage,
            inference,
            singling_out_univariate: so_u,
            singling_out_multivariate: so_m,
            disco,
            apparent_match: apparent,
            skipped,
        },
        timings,
        membership: None,
    })
}
