//! The model file: everything `sample` needs and nothing private.
//!
//! Versioned JSON holding the public schema table, the released measurements with their noise
//! scales and costs, the compression of rare values, the selected structure, the fitted
//! potentials (post-processing of the measurements) and the privacy spent. It is written only
//! from a fit whose measurements are `Released` values; reading it back needs no real data.

use serde::{Deserialize, Serialize};

use privsynth_privacy::{Cost, Released};

use super::estimate::Measurement;
use super::factor::Factor;
use super::{GraphicalModel, JunctionTree};
use crate::error::{Error, Result};
use crate::mechanism::Fit;
use crate::schema::Table;

pub const FORMAT: &str = "privsynth-model";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Privacy {
    pub epsilon: f64,
    pub delta: f64,
    pub rho: f64,
    /// Every release that went into the model.
    pub releases: Vec<Cost>,
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
    /// Package a fit. `releases` are the budget's charges, `spent` its (epsilon, delta).
    pub fn from_fit(fit: &Fit, table: &Table, columns: Vec<String>, sizes: Vec<usize>, releases: &[Cost], spent: (f64, f64)) -> ModelFile {
        let measurements: Vec<Measurement> = fit.measurements.iter().map(Released::value).cloned().collect();
        ModelFile {
            format: FORMAT.into(),
            version: VERSION,
            tool: concat!("privsynth ", env!("CARGO_PKG_VERSION")).into(),
            mechanism: fit.mechanism.name().into(),
            table: table.clone(),
            columns,
            sizes,
            compression: fit.compression.clone(),
            measurements,
            structure: fit.selected.clone(),
            cliques: fit.model.tree.cliques.clone(),
            potentials: fit.model.potentials.iter().map(|p| p.values.clone()).collect(),
            total: fit.model.total,
            privacy: Privacy { epsilon: spent.0, delta: spent.1, rho: releases.iter().map(|c| c.rho).sum(), releases: releases.to_vec() },
        }
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::Internal(format!("cannot write the model: {e}")))
    }

    pub fn load(path: &std::path::Path) -> Result<ModelFile> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let m: ModelFile = serde_json::from_str(&text).map_err(|e| Error::data(&origin, format!("is not a privsynth model file: {e}")))?;
        if m.format != FORMAT {
            return Err(Error::data(&origin, format!("is a {:?} file, not a {FORMAT:?}", m.format)));
        }
        if m.version != VERSION {
            return Err(Error::data(&origin, format!("has model format version {}; this build reads version {VERSION}", m.version)));
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
        for (a, groups) in self.compression.iter().enumerate() {
            let mut seen: Vec<u32> = groups.iter().flatten().copied().collect();
            seen.sort_unstable();
            if seen != (0..self.sizes[a] as u32).collect::<Vec<_>>() {
                return bad(&format!("the compression of column {:?} does not cover its domain", self.columns[a]));
            }
        }
        if self.cliques.len() != self.potentials.len() {
            return bad("cliques and potentials differ in number");
        }
        if !(self.total.is_finite() && self.total >= 1.0) {
            return bad("the total is not a positive number");
        }
        Ok(())
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
                    return Err(Error::data(origin, format!("is inconsistent: the potential of clique {c:?} has the wrong size or non-finite values")));
                }
                Ok(Factor::new(c.clone(), shape, v.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GraphicalModel { tree, potentials, total: self.total })
    }
}
