//! The data holder's audit of a synthetic table against the real rows it was fitted on and a
//! real holdout it never saw: the evaluation, the release gates and the report files. The
//! reports describe real data; they are for the data holder.

use std::path::{Path, PathBuf};

use super::{Observer, Step};
use crate::data::{self, RawTable};
use crate::ehr;
use crate::error::{Error, Result};
use crate::evaluate;
use crate::report::{self, Report, gates::Gate};
use crate::schema::{self, Schema, Table};

/// The audit's threat model and randomness.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Quasi-identifier columns (default: the schema's quasi_identifier roles).
    pub qi: Option<Vec<String>>,
    /// Secret column of the inference attack (default: the first sensitive column).
    pub secret: Option<String>,
    /// Column sets of the linkage attack (default: the quasi-identifiers against the rest).
    pub link_a: Option<Vec<String>>,
    pub link_b: Option<Vec<String>>,
    /// Targets per attack (train and holdout each).
    pub attacks: usize,
    /// Seed of every random choice of the audit.
    pub seed: u64,
    /// issue 17: the shadow-model membership-inference attack (`--membership-model`).
    pub membership: Option<crate::evaluate::membership::Args>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions { qi: None, secret: None, link_a: None, link_b: None, attacks: 2000, seed: 0, membership: None }
    }
}

/// Where to write the reports (none is required).
#[derive(Debug, Clone, Default)]
pub struct ReportFiles {
    pub json: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub junit: Option<PathBuf>,
}

impl ReportFiles {
    /// The files of one scope of a linked audit: the scope before the extension
    /// (`audit.person.json`, `audit.encounters.json`).
    pub fn scoped(&self, scope: &str) -> ReportFiles {
        let f = |p: &Option<PathBuf>| {
            p.as_ref().map(|p| {
                let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("out");
                p.with_extension(format!("{scope}.{ext}"))
            })
        };
        ReportFiles { json: f(&self.json), html: f(&self.html), junit: f(&self.junit) }
    }

    pub fn written(&self) -> Vec<String> {
        [&self.json, &self.html, &self.junit]
            .iter()
            .filter_map(|p| p.as_ref().map(|p| p.display().to_string()))
            .collect()
    }
}

/// Most attacks (targets, predicates) an audit runs: beyond this the intervals are far
/// narrower than the gates need, and the work (hundreds of tries per predicate) would run for
/// hours.
pub const MAX_ATTACKS: usize = 100_000;

/// The release gates and where they came from (`report::gates::load`).
pub type Gates = (Vec<Gate>, String);

/// The table restricted to its modelled columns: what a synthetic file holds.
pub fn modelled(table: &Table) -> Table {
    let mut t = table.clone();
    t.columns.retain(|c| c.is_modelled());
    t
}

/// Audit one table and write the reports asked for.
pub fn audit(
    table: &Table,
    train: &RawTable,
    holdout: &RawTable,
    synthetic: &RawTable,
    opts: &AuditOptions,
    gates: &Gates,
    files: &ReportFiles,
    obs: &dyn Observer,
) -> Result<Report> {
    audit_compared(table, (train, holdout, synthetic), vec![], opts, gates, files, obs)
}

/// [`audit`], naming in the report the modelled columns of the real tables that the synthetic
/// table does not have and that `table` therefore no longer lists (`left_out`).
fn audit_compared(
    table: &Table,
    (train, holdout, synthetic): (&RawTable, &RawTable, &RawTable),
    left_out: Vec<String>,
    opts: &AuditOptions,
    gates: &Gates,
    files: &ReportFiles,
    obs: &dyn Observer,
) -> Result<Report> {
    if opts.attacks == 0 || opts.attacks > MAX_ATTACKS {
        return Err(Error::Usage(format!(
            "--attacks must be between 1 and {MAX_ATTACKS} (the audit's work grows with it)"
        )));
    }
    let frames = evaluate::frame::Frames::load(table, train, holdout, synthetic)?;
    let eval = evaluate::Options {
        qi: opts.qi.clone(),
        secret: opts.secret.clone(),
        link_a: opts.link_a.clone(),
        link_b: opts.link_b.clone(),
        seed: opts.seed,
        attacks: opts.attacks,
        ..Default::default()
    };
    let result = {
        let _s = Step::start(obs, "auditing");
        let mut result = evaluate::run(&frames, &eval)?;
        if let Some(m) = &opts.membership {
            result.membership = evaluate::membership::run_if_asked(m, train, holdout, synthetic, opts.seed)?;
        }
        result.inputs.columns_left_out = left_out;
        result
    };
    let report = Report::new(result, &gates.0, gates.1.clone())?;
    let write = |p: &Option<PathBuf>, text: String| -> Result<()> {
        match p {
            Some(p) => data::write_atomic(p, |f| std::io::Write::write_all(f, text.as_bytes())),
            None => Ok(()),
        }
    };
    if files.json.is_some() {
        write(&files.json, report.to_json()?)?;
    }
    write(&files.html, report::html::render(&report))?;
    write(&files.junit, report.to_junit(&table.name))?;
    Ok(report)
}

/// Audit linked tables: each event table (its model columns) and the person level (each
/// person's record with the summaries of their events), against the holdout persons. A scope
/// without rows on one side is skipped (`None`).
pub fn audit_linked(
    schema: &Schema,
    (tr, ho, sy): (&ehr::Derived, &ehr::Derived, &ehr::Derived),
    opts: &AuditOptions,
    gates: &Gates,
    files: &ReportFiles,
    obs: &dyn Observer,
) -> Result<Vec<(String, Option<Report>)>> {
    if opts.membership.as_ref().is_some_and(|m| m.membership_model.is_some()) {
        return Err(Error::Usage(
            "--membership-model runs on single tables; linked schemas are not supported yet".into(),
        ));
    }
    let mut scopes: Vec<(String, Table, &RawTable, &RawTable, &RawTable)> = vec![];
    let pm = schema.person_model_table().ok_or_else(|| Error::Internal("person model".into()))?;
    scopes.push(("person".into(), pm, &tr.person, &ho.person, &sy.person));
    for (i, t) in schema.event_tables().into_iter().enumerate() {
        let m = schema.event_model_table(t).ok_or_else(|| Error::Internal("event model".into()))?;
        scopes.push((t.name.clone(), m, &tr.events[i].rows, &ho.events[i].rows, &sy.events[i].rows));
    }
    let mut out = vec![];
    for (scope, table, t, h, s) in scopes {
        if t.df.height() == 0 || h.df.height() == 0 || s.df.height() == 0 {
            out.push((scope, None));
            continue;
        }
        // The threat model's columns name person columns; event scopes use their defaults.
        let person = scope == "person";
        let o = AuditOptions {
            qi: if person { opts.qi.clone() } else { None },
            secret: if person { opts.secret.clone() } else { None },
            link_a: None,
            link_b: None,
            ..opts.clone()
        };
        // `synth` leaves out of its output a nullable column its draw made all-missing (a
        // death date on a small draw), and the model tables derived from that output then lack
        // the columns made from it. The two sides are compared on the columns both have; the
        // report names the others.
        let (table, left_out) = shared_columns(&table, s);
        let named = o.qi.iter().flatten().map(|n| ("--qi", n)).chain(o.secret.iter().map(|n| ("--secret", n)));
        if let Some((flag, n)) = named.into_iter().find(|(_, n)| left_out.contains(n)) {
            return Err(Error::Usage(format!(
                "{flag}: column {n:?} is not in the synthetic output (synth leaves out a column it drew missing for every row), so the audit cannot compare it"
            )));
        }
        let report = audit_compared(&table, (t, h, s), left_out, &o, gates, &files.scoped(&scope), obs)?;
        out.push((scope, Some(report)));
    }
    Ok(out)
}

/// `table` without the modelled columns `synthetic` does not have, and their names.
fn shared_columns(table: &Table, synthetic: &RawTable) -> (Table, Vec<String>) {
    let mut shared = table.clone();
    let mut left_out = vec![];
    shared.columns.retain(|c| {
        let keep = !c.is_modelled() || synthetic.df.column(&c.name).is_ok();
        if !keep {
            left_out.push(c.name.clone());
        }
        keep
    });
    (shared, left_out)
}

/// The model tables of a folder of real linked tables (unbounded: for the audit).
pub fn derive_real(schema: &Schema, dir: &Path) -> Result<ehr::Derived> {
    let inputs = ehr::Inputs::resolve(schema, &[dir.display().to_string()])?;
    Ok(ehr::derive(schema, &ehr::Tables::read(schema, &inputs)?, None, None)?.0)
}

/// The schema of what `synth` writes for a linked schema: identifiers without a generator
/// are left out; keys, modelled, fake and text columns stay.
pub fn output_schema(schema: &Schema) -> Schema {
    let mut s = schema.clone();
    let p = s.person.clone();
    for t in &mut s.tables {
        let keys: Vec<String> = t
            .primary_key
            .iter()
            .cloned()
            .chain(t.foreign_keys.iter().map(|f| f.column.clone()))
            .chain(p.as_ref().filter(|p| p.table == t.name).map(|p| p.key.clone()))
            .collect();
        t.columns.retain(|c| {
            c.is_modelled() || keys.contains(&c.name) || c.fake.is_some() || c.kind == schema::ColumnType::Text
        });
    }
    s
}

/// Read the synthetic linked tables `synth` wrote (a folder) and derive their model tables.
pub fn derive_synthetic(schema: &Schema, synthetic: &Path) -> Result<ehr::Derived> {
    // The schema `synth` wrote beside the tables says which columns it left out.
    let beside = synthetic.join(super::output::OUTPUT_SCHEMA);
    let out_schema = if beside.is_file() { Schema::load(&beside)? } else { output_schema(schema) };
    let inputs = ehr::Inputs::resolve(&out_schema, &[synthetic.display().to_string()])?;
    let synth = ehr::Tables::read(&out_schema, &inputs)?;
    Ok(ehr::derive(&out_schema, &synth, None, None)?.0)
}
