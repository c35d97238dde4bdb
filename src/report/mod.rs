//! Audit reports: a versioned JSON document (schema: `schemas/audit-report.schema.json`) for
//! pipelines, JUnit XML with one test case per gate for CI systems, and a self-contained HTML
//! page with plots for people. All three say that they describe real data and are for the data
//! holder, not for release with the synthetic table.

pub mod gates;
pub mod html;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::evaluate::Audit;
use gates::{GateResult, Status};

pub const FORMAT: &str = "privsynth-audit-report";
pub const VERSION: u32 = 1;

pub const NOTICE: &str = "This audit reads the real (train and holdout) data and its numbers describe them. It is for \
     the data holder's release decision: do not release it with the synthetic data.";

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub version: u32,
    pub privsynth: &'static str,
    pub created: String,
    pub notice: &'static str,
    /// `pass` when no gate failed.
    pub verdict: &'static str,
    pub gates_source: String,
    pub gates: Vec<GateResult>,
    #[serde(flatten)]
    pub audit: Audit,
}

impl Report {
    /// Evaluate the gates on the audit and assemble the report.
    pub fn new(audit: Audit, gate_list: &[gates::Gate], gates_source: String) -> Result<Report> {
        let value = serde_json::to_value(&audit).map_err(|e| Error::Internal(e.to_string()))?;
        let results = gates::evaluate(gate_list, &value, &gates_source)?;
        let failed = results.iter().any(|g| g.status == Status::Fail);
        Ok(Report {
            format: FORMAT,
            version: VERSION,
            privsynth: env!("CARGO_PKG_VERSION"),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            notice: NOTICE,
            verdict: if failed { "fail" } else { "pass" },
            gates_source,
            gates: results,
            audit,
        })
    }

    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }

    pub fn to_json(&self) -> Result<String> {
        let mut v = serde_json::to_value(self).map_err(|e| Error::Internal(e.to_string()))?;
        clean_floats(&mut v);
        serde_json::to_string_pretty(&v).map_err(|e| Error::Internal(e.to_string()))
    }

    /// JUnit XML: one test suite named after the audited `table`, one test case per gate. The
    /// suite and class names carry the table, so that the reports of a linked run (one per
    /// table) stay apart when a CI server merges them.
    pub fn to_junit(&self, table: &str) -> String {
        let total: f64 = self.audit.timings.iter().map(|t| t.seconds).sum();
        let count = |s: Status| self.gates.iter().filter(|g| g.status == s).count();
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x += &format!(
            "<testsuites name=\"privsynth audit: {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{total:.3}\">\n",
            xml(table),
            self.gates.len(),
            count(Status::Fail),
            count(Status::Skipped)
        );
        x += &format!(
            "  <testsuite name=\"privsynth-audit.{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{total:.3}\" timestamp=\"{}\">\n",
            xml(table),
            self.gates.len(),
            count(Status::Fail),
            count(Status::Skipped),
            xml(&self.created)
        );
        x += &format!(
            "    <properties><property name=\"synthetic\" value=\"{}\"/><property name=\"seed\" value=\"{}\"/></properties>\n",
            xml(&self.audit.inputs.synthetic.file),
            self.audit.inputs.seed
        );
        for g in &self.gates {
            let rel = match g.gate.direction {
                gates::Direction::AtMost => "<=",
                gates::Direction::AtLeast => ">=",
            };
            x += &format!(
                "    <testcase classname=\"privsynth.audit.{}.gates\" name=\"{}\" time=\"0\">",
                xml(table),
                xml(&format!("{} {rel} {}", g.gate.metric, g.gate.threshold))
            );
            match g.status {
                Status::Pass => {}
                Status::Fail => {
                    x += &format!(
                        "\n      <failure message=\"{}\" type=\"gate\">{}</failure>\n    ",
                        xml(&g.message),
                        xml(g.gate.why.as_deref().unwrap_or(""))
                    )
                }
                Status::Skipped => x += &format!("\n      <skipped message=\"{}\"/>\n    ", xml(&g.message)),
            }
            x += "</testcase>\n";
        }
        x += "  </testsuite>\n</testsuites>\n";
        x
    }
}

/// JSON has no NaN or infinity: serde writes them as null, which is what the report means
/// ("undefined"); round tiny float noise so the report reads cleanly.
fn clean_floats(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Array(a) => a.iter_mut().for_each(clean_floats),
        serde_json::Value::Object(m) => m.values_mut().for_each(clean_floats),
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(x) = n.as_f64() {
                let r = (x * 1e9).round() / 1e9;
                if let Some(m) = serde_json::Number::from_f64(r) {
                    *n = m;
                }
            }
        }
        _ => {}
    }
}

/// Escape text for XML and HTML.
pub fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// A plain-text summary for the terminal: the verdict, each gate, the headline numbers.
pub fn summary(r: &Report) -> String {
    let a = &r.audit;
    let f = &a.fidelity;
    let m = &a.memorization;
    let opt = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.4}"));
    let mut s = format!(
        "privsynth audit: {} (train {} rows, holdout {}, synthetic {})\n",
        if r.passed() { "PASS" } else { "FAIL" },
        a.inputs.train.rows,
        a.inputs.holdout.rows,
        a.inputs.synthetic.rows
    );
    if !a.inputs.columns_left_out.is_empty() {
        s += &format!(
            "not compared (the synthetic output left them out: drawn missing for every row): {}\n",
            a.inputs.columns_left_out.join(", ")
        );
    }
    for g in &r.gates {
        let mark = match g.status {
            Status::Pass => "pass   ",
            Status::Fail => "FAIL   ",
            Status::Skipped => "skipped",
        };
        s += &format!("  {mark} {:<48} {}\n", g.gate.metric, g.message);
    }
    s += &format!(
        "fidelity (synthetic | holdout ceiling): 2-way TVD {} | {}, 3-way TVD {} | {}, detection AUC {} | {}, column shapes {} | {}\n",
        opt(f.tvd2.synthetic),
        opt(f.tvd2.holdout),
        opt(f.tvd3.synthetic),
        opt(f.tvd3.holdout),
        opt(f.detection_auc.synthetic),
        opt(f.detection_auc.holdout),
        opt(f.column_shapes_mean.synthetic),
        opt(f.column_shapes_mean.holdout)
    );
    s += &format!(
        "memorization: exact matches {:.4} in train vs {:.4} in holdout; closer to train {:.4} [{:.4}, {:.4}] (expected {:.4}); median DCR {:.4} vs holdout->train {:.4}; rare values re-emitted {:.4} vs {:.4}\n",
        m.exact_match.synthetic_in_train,
        m.exact_match.synthetic_in_holdout,
        m.dcr.closer_to_train,
        m.dcr.ci_low,
        m.dcr.ci_high,
        m.dcr.expected,
        m.dcr.median_synthetic_to_train,
        m.dcr.median_holdout_to_train,
        m.rare_values.rate_train,
        m.rare_values.rate_holdout
    );
    if m.dcr.sampling.synthetic_measured < m.dcr.sampling.synthetic_rows
        || m.dcr.sampling.holdout_measured < m.dcr.sampling.holdout_rows
    {
        s += &format!("memorization: {}\n", m.dcr.sampling.method);
    }
    let re = &a.reidentification;
    let risk = |r: &crate::evaluate::risk::AttackResult| match (r.risk, r.risk_ci_low, r.risk_ci_high) {
        (Some(v), Some(lo), Some(hi)) => format!("{v:.3} [{lo:.3}, {hi:.3}]"),
        _ => "not computed".to_string(),
    };
    let mut risks = Vec::new();
    if let Some(l) = &re.linkage {
        risks.push(format!("linkage {} ({} targets)", risk(&l.result), l.result.attack.attempts));
    }
    if let Some(i) = &re.inference {
        risks.push(format!("inference of {} {} ({} targets)", i.secret, risk(&i.result), i.result.attack.attempts));
    }
    let (u, m) = (&re.singling_out_univariate, &re.singling_out_multivariate);
    risks.push(format!(
        "singling out univariate {} ({} predicates), multivariate {} ({} of {} predicates)",
        risk(&u.result),
        u.predicates,
        risk(&m.result),
        m.predicates,
        m.requested
    ));
    s += &format!("re-identification (residual risk vs holdout, 95% interval): {}\n", risks.join("; "));
    s
}
