//! The claim audit on linked tables (the person as privacy unit): D is the linked tables, D'
//! adds one canary person with the maximum events (`rows_per_person` rows in every event
//! table), whose every modelled value is the rarest in D's table (the decoded rarest code of
//! each column). Each run is the linked fit of `synth` ([`LinkedPlan::fit`]) and its sampler.
//!
//! White-box score: the canary's effect on every model's released measurements is read from
//! the model tables themselves: D and D' are derived once with one contribution-bounding key
//! (so the other persons' kept rows are the same on both sides), and for every measurement the
//! difference of the two count vectors on the compressed domain is the canary's contribution.
//! The likelihood-ratio statistic sums, over cells, contribution x (noisy value - D's count) /
//! sigma^2; standardised, it is N(0, 1) without the canary.
//!
//! Black-box score: synthetic rows (person and event tables) that carry the canary's value in
//! a categorical column, each weighted by 1 / (1 + D's count of that value).

use std::collections::HashMap;

use polars::prelude::*;
use rand::SeedableRng;
use rayon::prelude::*;

use privsynth_privacy::bounding::SecretKey;

use super::{CanaryInfo, Ceiling, Options, Report, as_text, ceiling, finish_with, gaussian_mu_at};
use crate::codec::{EncodedTable, TableCodec};
use crate::data::RawTable;
use crate::ehr::{self, LinkedModel};
use crate::error::{Error, Result};
use crate::model::file::ModelFile;
use crate::pipeline::linked::LinkedPlan;
use crate::schema::{ColumnType, Schema};

/// D, D' and what the audit knows about them.
pub struct LinkedPrepared {
    pub plan: LinkedPlan,
    pub d: ehr::Tables,
    pub d_prime: ehr::Tables,
    pub canary_info: CanaryInfo,
    /// Per model (person, then event tables in schema order): its codec and the model rows of
    /// D and of D' (derived under one bounding key).
    models: Vec<(TableCodec, EncodedTable, EncodedTable)>,
    /// Per output table: its canary values.
    black: Vec<(String, Vec<BlackValue>)>,
}

/// A categorical value of the canary: (column, value as text, weight 1 / (1 + D's count)).
type BlackValue = (String, String, f64);

/// The canary's values for one raw table: the rarest code of every modelled column, decoded
/// (one row, as text), and the weights of its categorical values.
fn rarest_row(table: &crate::schema::Table, raw: &RawTable) -> Result<(DataFrame, Vec<BlackValue>)> {
    let codec = TableCodec::new(table)?;
    let enc = codec.encode(raw)?;
    let mut codes = vec![];
    let mut counts_of = vec![];
    for a in 0..codec.columns.len() {
        let mut counts = vec![0usize; enc.sizes()[a]];
        for c in enc.codes(a) {
            counts[c as usize] += 1;
        }
        let min = counts.iter().copied().min().unwrap_or(0);
        let code = counts.iter().rposition(|&n| n == min).unwrap_or(0) as u32;
        codes.push(vec![code]);
        counts_of.push(min);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let row = as_text(&codec.decode(&codes, &mut rng)?)?;
    let mut black = vec![];
    for (a, c) in codec.columns.iter().enumerate() {
        let col = table.column(&c.name);
        let value = row.column(&c.name).ok().and_then(|s| s.str().ok().and_then(|s| s.get(0).map(str::to_string)));
        if let (true, Some(v)) =
            (col.is_some_and(|c| matches!(c.kind, ColumnType::Categorical | ColumnType::Boolean)), value)
        {
            black.push((c.name.clone(), v, 1.0 / (1.0 + counts_of[a] as f64)));
        }
    }
    Ok((row, black))
}

/// Check the schema and D, build the canary person and D'.
pub fn prepare(schema: &Schema, d: ehr::Tables, opts: &Options, origin: &str) -> Result<LinkedPrepared> {
    opts.check()?;
    let plan = LinkedPlan::new(schema, opts.fit.clone(), origin)?;
    let p = schema.person.clone().ok_or_else(|| Error::Usage(format!("{origin} names no `person` table")))?;
    let key = "audit-canary-person".to_string();
    let mut raw: HashMap<String, RawTable> = HashMap::new();
    let mut black = vec![];
    let mut values = vec![];
    let mut events = 0usize;
    for t in &schema.tables {
        let r = d.raw(&t.name).ok_or_else(|| Error::Internal(format!("table {} not read", t.name)))?;
        let rows = if t.name == p.table { 1 } else { t.events.as_ref().map_or(0, |e| e.rows_per_person as usize) };
        let text = as_text(&r.df)?;
        if rows == 0 {
            raw.insert(t.name.clone(), RawTable::in_memory(&r.file, text));
            continue;
        }
        events += if t.name == p.table { 0 } else { rows };
        let (row, b) = rarest_row(t, r)?;
        black.push((t.name.clone(), b));
        for c in row.get_column_names() {
            if let Some(v) = row.column(c).ok().and_then(|s| s.str().ok().and_then(|s| s.get(0).map(str::to_string))) {
                values.push((format!("{}.{c}", t.name), v));
            }
        }
        let person_fk: Vec<&str> =
            t.foreign_keys.iter().filter(|fk| fk.references == p.table).map(|fk| fk.column.as_str()).collect();
        let cols: Vec<Column> = text
            .columns()
            .iter()
            .map(|c| {
                let name = c.name().as_str();
                let v: Vec<Option<String>> = (0..rows)
                    .map(|i| {
                        if (t.name == p.table && name == p.key) || person_fk.contains(&name) {
                            Some(key.clone())
                        } else if t.primary_key.as_deref() == Some(name) {
                            Some(format!("audit-canary-{}-{i}", t.name))
                        } else {
                            row.column(name).ok().and_then(|s| s.str().ok().and_then(|s| s.get(0).map(str::to_string)))
                        }
                    })
                    .collect();
                Column::new(name.into(), v)
            })
            .collect();
        let extra = DataFrame::new(rows, cols).map_err(|e| Error::Internal(e.to_string()))?;
        let mut out = text;
        out.vstack_mut(&extra)
            .map_err(|e| Error::Internal(format!("cannot add the canary person to {}: {e}", t.name)))?;
        raw.insert(t.name.clone(), RawTable::in_memory(&format!("{} plus the canary person", r.file), out));
    }
    let d_prime = ehr::Tables::from_raw(raw);
    // One bounding key for both derivations: the other persons keep the same rows.
    let bkey = SecretKey::fresh().map_err(|e| Error::Internal(e.to_string()))?;
    let (dd, _) = ehr::derive(schema, &d, None, Some(&bkey))?;
    let (dp, _) = ehr::derive(schema, &d_prime, None, Some(&bkey))?;
    let mut models = vec![];
    let pm = schema.person_model_table().ok_or_else(|| Error::Internal("person model".into()))?;
    let pc = TableCodec::new(&pm)?;
    let (a, b) = (pc.encode(&dd.person)?, pc.encode(&dp.person)?);
    models.push((pc, a, b));
    for (i, t) in schema.event_tables().iter().enumerate() {
        let mt = schema.event_model_table(t).ok_or_else(|| Error::Internal("event model".into()))?;
        let c = TableCodec::new(&mt)?;
        let (a, b) = (c.encode(&dd.events[i].rows)?, c.encode(&dp.events[i].rows)?);
        models.push((c, a, b));
    }
    let canary_info = CanaryInfo {
        kind: format!(
            "worst case person: D's rarest value in every column, {events} event row(s) (the bound of every event table)"
        ),
        rows: 1 + events,
        values,
    };
    Ok(LinkedPrepared { plan, d, d_prime, canary_info, models, black })
}

/// Counts of `attrs` on the model's compressed domain.
fn counts(model: &ModelFile, enc: &EncodedTable, attrs: &[usize]) -> Vec<i64> {
    let (maps, sizes) = super::compression_maps(model);
    crate::marginals::count(&enc.remap(&maps, &sizes), attrs).disclose_to_data_holder()
}

/// The white-box statistic over the models of one linked release: (z, mu the releases allow).
fn white_box(p: &LinkedPrepared, m: &LinkedModel) -> (f64, f64) {
    let files: Vec<&ModelFile> = std::iter::once(&m.person).chain(m.events.iter().map(|e| &e.model)).collect();
    let (mut s, mut v) = (0.0, 0.0);
    for (file, (_, d, dp)) in files.iter().zip(&p.models) {
        for meas in &file.measurements {
            if meas.sigma <= 0.0 {
                continue;
            }
            let (x, x1) = (counts(file, d, &meas.attrs), counts(file, dp, &meas.attrs));
            let s2 = meas.sigma * meas.sigma;
            for c in 0..meas.y.len().min(x.len()) {
                let delta = (x1[c] - x[c]) as f64;
                if delta == 0.0 {
                    continue;
                }
                let w = if meas.weights.is_empty() { 1.0 } else { meas.weights[c] };
                s += w * delta * (meas.y[c] - w * x[c] as f64) / s2;
                v += w * w * delta * delta / s2;
            }
        }
    }
    if v <= 0.0 { (0.0, 0.0) } else { (s / v.sqrt(), v.sqrt()) }
}

fn black_box(p: &LinkedPrepared, tables: &[(String, DataFrame)]) -> f64 {
    let mut s = 0.0;
    for (name, cols) in &p.black {
        let Some((_, df)) = tables.iter().find(|(n, _)| n == name) else { continue };
        for (c, value, w) in cols {
            if let Ok(ca) = df.column(c).and_then(|x| x.cast(&DataType::String)).and_then(|x| x.str().cloned()) {
                s += w * ca.iter().filter(|v| *v == Some(value.as_str())).count() as f64;
            }
        }
    }
    s
}

/// Run the audit on linked tables.
pub fn run(p: &LinkedPrepared, opts: &Options, progress: &(dyn Fn(usize) + Sync)) -> Result<Report> {
    let started = std::time::Instant::now();
    let n = opts.runs;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let all: Vec<(f64, f64, f64)> = (0..2 * n)
        .into_par_iter()
        .map(|i| -> Result<(f64, f64, f64)> {
            let data = if i < n { &p.d } else { &p.d_prime };
            let fitted = p.plan.fit(data, opts.epsilon, opts.delta, None)?;
            let (w, mu) = white_box(p, &fitted.model);
            let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed.wrapping_add(i as u64));
            let out = ehr::sample::sample(&fitted.model, "the fitted model", opts.synthetic_rows, &mut rng)?;
            let b = black_box(p, &out.tables);
            progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
            Ok((w, b, mu))
        })
        .collect::<Result<_>>()?;
    let (without, with) = all.split_at(n);
    let alpha = opts.alpha / 2.0;
    let mk = |name: &str, description: &str, f: fn(&(f64, f64, f64)) -> f64| {
        super::score(name, description, (without, with), f, opts.delta, alpha)
    };
    let scores = vec![
        mk(
            "white-box",
            "likelihood-ratio statistic of every model's released noisy counts at the canary person's model rows, standardised (N(0,1) without the canary)",
            |r| r.0,
        ),
        mk(
            "black-box",
            "synthetic rows carrying the canary's categorical values, weighted by 1 / (1 + D's count of that value)",
            |r| r.1,
        ),
    ];
    let white_box_mu = with.iter().map(|r| r.2).sum::<f64>() / n as f64;
    let mu_claim = gaussian_mu_at(opts.epsilon, opts.delta);
    let c = ceiling(mu_claim, n, opts.delta, alpha, 25, opts.seed);
    let empirical = scores.iter().map(|s| s.bound.epsilon).fold(0.0, f64::max);
    Ok(finish_with(
        opts,
        (Some(p.plan.unit()), 1),
        p.canary_info.clone(),
        scores,
        empirical,
        mu_claim,
        Some(Ceiling { epsilon: c, replicates: 25, white_box_mu }),
        started,
        None,
    ))
}

/// Linked tables sampled from a linked model file (`persons`, default its DP total), as text.
pub fn sample_tables(
    model: &LinkedModel,
    origin: &str,
    persons: Option<usize>,
    seed: u64,
) -> Result<(ehr::Tables, String)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xDA7A);
    let out = ehr::sample::sample(model, origin, persons, &mut rng)?;
    let mut raw = HashMap::new();
    for (name, df) in out.tables {
        raw.insert(name.clone(), RawTable::in_memory(&format!("{name} sampled from {origin}"), as_text(&df)?));
    }
    Ok((ehr::Tables::from_raw(raw), format!("persons sampled from {origin}")))
}
