//! The model file: everything `sample` needs and nothing private.
//!
//! Versioned JSON holding the public schema table, the released measurements with their noise
//! scales and costs, the compression of rare values, the selected structure, the fitted
//! potentials (post-processing of the measurements) and the privacy spent. It is written only
//! from a fit whose measurements are `Released` values; reading it back needs no real data.

use serde::{Deserialize, Serialize};

use privsynth_privacy::Cost;

use super::estimate::Measurement;
use super::factor::Factor;
use super::{GraphicalModel, JunctionTree};
use crate::error::{Error, Result};
use crate::schema::Table;

/// Most cells of one clique or measurement a model file may hold (2^27 doubles: 1 GiB).
const MAX_CLIQUE_CELLS: usize = 1 << 27;

/// Format name of a model file.
pub const FORMAT: &str = "privsynth-model";

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Privacy {
    pub epsilon: f64,
    pub delta: f64,
    pub rho: f64,
    /// Every release that went into the model.
    pub releases: Vec<Cost>,
    /// Column of the privacy unit (absent: one row is one unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Rows one unit contributed at most (the contribution bound every sensitivity scales by).
    #[serde(default = "one")]
    pub rows_per_unit: u32,
    /// What the guarantee does not cover (values read from the data allowed by override, strict
    /// out-of-domain policies). Empty for a release the guarantee covers whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outside_guarantee: Vec<String>,
    /// The DP inference that proposed the schema, when it was charged to the same data, and the
    /// guarantee of the model and that inference together (zCDP costs add).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_inference: Option<Spend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_schema_inference: Option<Spend>,
}

/// A (epsilon, delta) guarantee and its zCDP cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    pub epsilon: f64,
    pub delta: f64,
    pub rho: f64,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelFile {
    pub format: String,
    pub version: u32,
    pub tool: String,
    pub mechanism: String,
    /// The public schema of the table the model describes.
    pub table: Table,
    /// Modelled columns, in code order, with their (uncompressed) domain sizes.
    pub columns: Vec<String>,
    pub sizes: Vec<usize>,
    /// Per column: for each compressed code, the original codes it stands for.
    pub compression: Vec<Vec<Vec<u32>>>,
    /// Per column and compressed code: the share of each original code a merged code is
    /// expanded to (from the one-way releases; `mechanism::expansion`). Empty (files written
    /// before it existed, or a group whose counts were all at most zero): uniform.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expansion: Vec<Vec<Vec<f64>>>,
    /// The released measurements on the compressed domain (noisy values and noise scales).
    pub measurements: Vec<Measurement>,
    /// The attribute sets the mechanism selected (MST's tree edges, AIM's rounds in order).
    pub structure: Vec<Vec<usize>>,
    /// Junction-tree cliques and their fitted log-potentials, in the same order.
    pub cliques: Vec<Vec<usize>>,
    pub potentials: Vec<Vec<f64>>,
    /// DP estimate of the number of records.
    pub total: f64,
    pub privacy: Privacy,
}

impl ModelFile {
    /// Which columns' one-way distributions the noise outweighs (its expected L1 mass is above
    /// the estimated record count), as warnings, so nobody reads their synthetic distribution as
    /// data. Released values only: noise scales, public domain sizes and the DP total.
    pub fn noise_warnings(&self, scope: Option<&str>) -> Vec<String> {
        let scope = scope.map(|s| format!("{s}: ")).unwrap_or_default();
        let mut out = vec![];
        let uniform = self.uniform_columns();
        if !uniform.is_empty() {
            out.push(format!("warning: {scope}no value of {} stood out of the noise, so each is drawn over its schema domain from noisy counts shrunk toward uniform", uniform.join(", ")));
        }
        let flagged = self.noise_dominated(1.0);
        if !flagged.is_empty() {
            let list: Vec<String> = flagged.iter().take(8).map(|(c, r)| format!("{c} ({r:.1}x)")).collect();
            let more = if flagged.len() > 8 { format!(" and {} more", flagged.len() - 8) } else { String::new() };
            out.push(format!(
                "warning: {scope}the noise outweighs the data in the one-way marginals of {}{more} (expected noise mass over the ~{:.0} records): \
                 their synthetic distributions are close to arbitrary. A larger epsilon, coarser domains or more records would help.",
                list.join(", "),
                self.total
            ));
        }
        out
    }

    /// Warnings `sample` prints about the release's guarantee (public: from the model file).
    pub fn guarantee_warnings(&self) -> Vec<String> {
        self.privacy
            .outside_guarantee
            .iter()
            .map(|w| format!("warning: this model's DP guarantee does not cover everything: {w}"))
            .collect()
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::Internal(format!("cannot write the model: {e}")))
    }

    pub fn load(path: &std::path::Path) -> Result<ModelFile> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let m: ModelFile = serde_json::from_str(&text)
            .map_err(|e| Error::data(&origin, format!("is not a privsynth model file: {e}")))?;
        if m.format != FORMAT {
            return Err(Error::data(&origin, format!("is a {:?} file, not a {FORMAT:?}", m.format)));
        }
        if m.version != VERSION {
            return Err(Error::data(
                &origin,
                format!("has model format version {}; this build reads version {VERSION}", m.version),
            ));
        }
        m.check(&origin)?;
        Ok(m)
    }

    fn check(&self, origin: &str) -> Result<()> {
        let bad = |m: &str| Err(Error::data(origin, format!("is inconsistent: {m}")));
        let d = self.columns.len();
        if self.sizes.len() != d || self.compression.len() != d {
            return bad("column, size and compression lists differ in length");
        }
        if let Some(a) = (0..d).find(|&a| self.sizes[a] == 0 || self.sizes[a] > crate::schema::MAX_DOMAIN_SIZE) {
            return bad(&format!(
                "column {:?} has {} codes (1 to {} are possible)",
                self.columns[a],
                self.sizes[a],
                crate::schema::MAX_DOMAIN_SIZE
            ));
        }
        for (a, groups) in self.compression.iter().enumerate() {
            let mut seen: Vec<u32> = groups.iter().flatten().copied().collect();
            seen.sort_unstable();
            if seen != (0..self.sizes[a] as u32).collect::<Vec<_>>() {
                return bad(&format!("the compression of column {:?} does not cover its domain", self.columns[a]));
            }
        }
        if !self.expansion.is_empty() {
            let fits = self.expansion.len() == d
                && self.expansion.iter().zip(&self.compression).all(|(shares, groups)| {
                    shares.len() == groups.len()
                        && shares.iter().zip(groups).all(|(w, g)| {
                            w.is_empty() || (w.len() == g.len() && w.iter().all(|x| x.is_finite() && *x >= 0.0))
                        })
                });
            if !fits {
                return bad(
                    "the expansion shares do not match the compression, or are not finite non-negative numbers",
                );
            }
        }
        if self.cliques.len() != self.potentials.len() {
            return bad("cliques and potentials differ in number");
        }
        if !(self.total.is_finite() && self.total >= 1.0 && self.total <= super::sample::MAX_ROWS as f64) {
            return bad(&format!("the total is not a number of records between 1 and {}", super::sample::MAX_ROWS));
        }
        // The compressed domain every clique and measurement is laid out on.
        let sizes: Vec<usize> = self.compression.iter().map(Vec::len).collect();
        let set_ok = |attrs: &[usize]| attrs.iter().all(|&a| a < d) && attrs.windows(2).all(|w| w[0] < w[1]);
        let cells = |attrs: &[usize]| attrs.iter().try_fold(1usize, |acc, &a| acc.checked_mul(sizes[a]));
        for (c, v) in self.cliques.iter().zip(&self.potentials) {
            if !set_ok(c) {
                return bad(&format!("clique {c:?} names a column that does not exist, or repeats one"));
            }
            match cells(c) {
                Some(n) if n <= MAX_CLIQUE_CELLS && n == v.len() => {}
                _ => {
                    return bad(&format!(
                        "the potential of clique {c:?} has the wrong size or the clique is too large"
                    ));
                }
            }
            if v.iter().any(|x| !x.is_finite()) {
                return bad(&format!("the potential of clique {c:?} has non-finite values"));
            }
        }
        for m in &self.measurements {
            let ok = set_ok(&m.attrs)
                && cells(&m.attrs).is_some_and(|n| n <= MAX_CLIQUE_CELLS && n == m.y.len())
                && (m.weights.is_empty() || m.weights.len() == m.y.len())
                && m.y.iter().chain(&m.weights).all(|x| x.is_finite())
                && m.sigma.is_finite()
                && m.sigma > 0.0;
            if !ok {
                return bad(&format!("the measurement of columns {:?} does not fit the model's domain", m.attrs));
            }
        }
        if self.structure.iter().any(|s| !set_ok(s)) {
            return bad("the selected structure names a column that does not exist");
        }
        let p = &self.privacy;
        if ![p.epsilon, p.delta, p.rho].iter().all(|x| x.is_finite() && *x >= 0.0) {
            return bad("the privacy figures are not finite non-negative numbers");
        }
        crate::schema::Schema::single(self.table.clone(), origin)?;
        Ok(())
    }

    /// Columns whose one-way distribution the released measurements cannot pin down: the
    /// expected L1 mass of the noise on the column's marginal, combining every unweighted
    /// measurement that covers it (summing a measurement onto one column adds the variances of
    /// the cells it folds), exceeds `threshold` times the DP estimate of the records. Returned
    /// with that ratio, largest first. Reads released values and public sizes only.
    pub fn noise_dominated(&self, threshold: f64) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = (0..self.columns.len())
            .filter_map(|a| {
                let size = self.compression[a].len() as f64;
                let precision: f64 = self
                    .measurements
                    .iter()
                    .filter(|m| m.weights.is_empty() && m.attrs.contains(&a) && m.sigma > 0.0)
                    .map(|m| size / (m.sigma * m.sigma * m.y.len() as f64))
                    .sum();
                if precision <= 0.0 {
                    return None;
                }
                let l1 = (2.0 / std::f64::consts::PI).sqrt() * size / precision.sqrt();
                let ratio = l1 / self.total;
                (ratio > threshold).then(|| (self.columns[a].clone(), ratio))
            })
            .collect();
        out.sort_by(|x, y| y.1.total_cmp(&x.1));
        out
    }

    /// Columns of more than one value that compression merged into a single group (MST merges
    /// the values whose noisy counts stay under the noise): sampling draws them over their whole
    /// domain from their noisy counts shrunk toward uniform (`mechanism::expansion`).
    pub fn uniform_columns(&self) -> Vec<String> {
        (0..self.columns.len())
            .filter(|&a| self.sizes[a] > 1 && self.compression[a].len() == 1)
            .map(|a| self.columns[a].clone())
            .collect()
    }

    /// Rebuild the graphical model on the compressed domain.
    pub fn model(&self, origin: &str) -> Result<GraphicalModel> {
        let sizes: Vec<usize> = self.compression.iter().map(Vec::len).collect();
        let sets: Vec<Vec<usize>> = self.cliques.clone();
        let tree = JunctionTree::build(&sizes, &sets);
        if tree.cliques != self.cliques {
            return Err(Error::data(origin, "is inconsistent: its cliques do not form the stored junction tree"));
        }
        let potentials = self
            .cliques
            .iter()
            .zip(&self.potentials)
            .map(|(c, v)| {
                let shape: Vec<usize> = c.iter().map(|&a| sizes[a]).collect();
                if shape.iter().product::<usize>() != v.len() || v.iter().any(|x| !x.is_finite()) {
                    return Err(Error::data(
                        origin,
                        format!(
                            "is inconsistent: the potential of clique {c:?} has the wrong size or non-finite values"
                        ),
                    ));
                }
                Ok(Factor::new(c.clone(), shape, v.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GraphicalModel { tree, potentials, total: self.total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schema;

    fn model(sizes: &[usize], measurements: Vec<Measurement>, total: f64) -> ModelFile {
        let schema = Schema::from_yaml(
            "version: 1\ntables: [{name: t, columns: [{name: a, type: categorical, domain: {categories: [x, y]}}]}]",
            "t.yaml",
        )
        .unwrap();
        ModelFile {
            format: FORMAT.into(),
            version: VERSION,
            tool: String::new(),
            mechanism: "mst".into(),
            table: schema.tables[0].clone(),
            columns: (0..sizes.len()).map(|i| format!("c{i}")).collect(),
            sizes: sizes.to_vec(),
            compression: sizes.iter().map(|&n| (0..n as u32).map(|c| vec![c]).collect()).collect(),
            expansion: vec![],
            measurements,
            structure: vec![],
            cliques: vec![],
            potentials: vec![],
            total,
            privacy: Privacy {
                epsilon: 1.0,
                delta: 0.0,
                rho: 0.0,
                releases: vec![],
                unit: None,
                rows_per_unit: 1,
                outside_guarantee: vec![],
                schema_inference: None,
                with_schema_inference: None,
            },
        }
    }

    fn m(attrs: &[usize], cells: usize, sigma: f64) -> Measurement {
        Measurement { attrs: attrs.to_vec(), weights: vec![], y: vec![0.0; cells], sigma }
    }

    /// The noise-to-signal ratio is the expected L1 norm of the combined noise over the total:
    /// one measurement of 100 cells at sigma 10 on 1,000 records gives sqrt(2/pi) 10 100 / 1000.
    #[test]
    fn noise_dominated_columns_follow_the_noise_mass() {
        let k = (2.0 / std::f64::consts::PI).sqrt();
        let f = model(&[100, 2], vec![m(&[0], 100, 10.0), m(&[1], 2, 10.0)], 1000.0);
        let all = f.noise_dominated(0.0);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, "c0");
        assert!((all[0].1 - k * 10.0 * 100.0 / 1000.0).abs() < 1e-12, "{all:?}");
        assert!((all[1].1 - k * 10.0 * 2.0 / 1000.0).abs() < 1e-12, "{all:?}");
        // Only the wide column is flagged at ratio 0.5.
        assert_eq!(f.noise_dominated(0.5).iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["c0"]);
        // A second measurement of the same column halves the variance; a 2-way measurement
        // of 100 x 2 cells at sigma 10 adds a per-cell variance of 2 sigma^2 on column 0.
        let twice = model(&[100, 2], vec![m(&[0], 100, 10.0), m(&[0], 100, 10.0)], 1000.0);
        assert!((twice.noise_dominated(0.0)[0].1 - k * 10.0 * 100.0 / 2f64.sqrt() / 1000.0).abs() < 1e-12);
        let pair = model(&[100, 2], vec![m(&[0, 1], 200, 10.0)], 1000.0);
        let r = pair.noise_dominated(0.0);
        assert!(
            (r.iter().find(|x| x.0 == "c0").unwrap().1 - k * 10.0 * 2f64.sqrt() * 100.0 / 1000.0).abs() < 1e-12,
            "{r:?}"
        );
        // Weighted (workload) measurements are not marginals of the column and are not counted.
        let weighted =
            model(&[3], vec![Measurement { attrs: vec![0], weights: vec![1.0; 3], y: vec![0.0; 3], sigma: 1.0 }], 10.0);
        assert!(weighted.noise_dominated(0.0).is_empty());
        // A column merged into one group is drawn (nearly) uniformly and flagged; a one-value column is not flagged.
        let mut merged = model(&[4, 1, 3], vec![], 10.0);
        merged.compression[0] = vec![vec![0, 1, 2, 3]];
        assert_eq!(merged.uniform_columns(), ["c0"]);
    }

    /// Expansion shares must match the compression and be finite and non-negative; a file
    /// without them (written before they existed) still loads and expands uniformly.
    #[test]
    fn expansion_shares_are_checked() {
        let mut f = model(&[4, 2], vec![], 10.0);
        f.compression[0] = vec![vec![0], vec![1, 2, 3]];
        assert!(f.check("m").is_ok());
        let text = f.to_json().unwrap();
        assert!(!text.contains("expansion"), "no shares, no field");
        f.expansion = vec![vec![vec![], vec![2.0, 0.0, 1.0]], vec![vec![], vec![]]];
        assert!(f.check("m").is_ok());
        let back: ModelFile = serde_json::from_str(&f.to_json().unwrap()).unwrap();
        assert_eq!(back.expansion, f.expansion);
        for bad in [
            vec![vec![vec![], vec![2.0, 1.0]], vec![vec![], vec![]]],
            vec![vec![vec![], vec![2.0, -1.0, 1.0]], vec![vec![], vec![]]],
            vec![vec![vec![], vec![2.0, f64::NAN, 1.0]], vec![vec![], vec![]]],
            vec![vec![vec![], vec![2.0, 0.0, 1.0]]],
        ] {
            f.expansion = bad;
            let e = f.check("m").unwrap_err().to_string();
            assert!(e.contains("expansion shares"), "{e}");
        }
    }
}
