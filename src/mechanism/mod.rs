//! Mechanisms that select and measure marginals under the budget, then estimate a model from
//! them: [`mst`] (a spanning tree of pairs) and [`aim`] (workload-adaptive rounds). Both return
//! a [`Fit`], whose every part is a DP release or post-processing of one.

pub mod aim;
pub mod mst;

use privsynth_privacy::{Cost, Released};
use rand::Rng;
use rand::RngExt;

use crate::codec::TableCodec;
use crate::model::GraphicalModel;
use crate::model::estimate::{self, Measurement};
use crate::model::file::{self, ModelFile};
use crate::schema::Table;

/// Which mechanism to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Aim,
    Mst,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Aim => "aim",
            Mechanism::Mst => "mst",
        }
    }
}

/// A fitted model and what it was fitted from.
pub struct Fit {
    pub mechanism: Mechanism,
    /// The contribution bound of the rows it was fitted on (every sensitivity scaled by it).
    pub bound: privsynth_privacy::bounding::ContributionBound,
    /// Per attribute: for each (compressed) code, the original codes it stands for. Identity
    /// when the mechanism does not compress.
    pub compression: Vec<Vec<Vec<u32>>>,
    /// Measurements on the (compressed) domain, as released.
    pub measurements: Vec<Released<Measurement>>,
    /// The attribute sets the mechanism selected (MST's tree edges; AIM's rounds in order).
    pub selected: Vec<Vec<usize>>,
    pub model: GraphicalModel,
    pub stats: estimate::Stats,
}

impl Fit {
    /// Package the fit as a model file: the public table, the codec's columns and domain sizes,
    /// the released measurements and what they cost (`charges`, and `spent` as (epsilon,
    /// delta)).
    pub fn model_file(&self, table: &Table, codec: &TableCodec, charges: &[Cost], spent: (f64, f64)) -> ModelFile {
        let measurements: Vec<Measurement> = self.measurements.iter().map(Released::value).cloned().collect();
        ModelFile {
            format: file::FORMAT.into(),
            version: file::VERSION,
            tool: concat!("privsynth ", env!("CARGO_PKG_VERSION")).into(),
            mechanism: self.mechanism.name().into(),
            table: table.clone(),
            columns: codec.names(),
            sizes: codec.sizes(),
            compression: self.compression.clone(),
            measurements,
            structure: self.selected.clone(),
            cliques: self.model.tree.cliques.clone(),
            potentials: self.model.potentials.iter().map(|p| p.values.clone()).collect(),
            total: self.model.total,
            privacy: file::Privacy {
                epsilon: spent.0,
                delta: spent.1,
                rho: charges.iter().map(|c| c.rho).sum(),
                releases: charges.to_vec(),
                unit: None,
                rows_per_unit: self.bound.rows_per_unit(),
                outside_guarantee: vec![],
                schema_inference: None,
                with_schema_inference: None,
            },
        }
    }

    /// Number of measured marginals of each order (index 0: one-way).
    pub fn measured_by_order(&self) -> Vec<usize> {
        let mut n = vec![];
        for m in &self.measurements {
            let k = m.value().attrs.len();
            if n.len() < k {
                n.resize(k, 0);
            }
            n[k - 1] += 1;
        }
        n
    }
}

/// Undo domain compression: a merged code becomes a uniform draw among its original codes.
pub fn expand(compression: &[Vec<Vec<u32>>], codes: Vec<Vec<u32>>, rng: &mut impl Rng) -> Vec<Vec<u32>> {
    codes
        .into_iter()
        .zip(compression)
        .map(|(col, groups)| {
            if groups.iter().all(|g| g.len() == 1) {
                return col.into_iter().map(|c| groups[c as usize][0]).collect();
            }
            col.into_iter()
                .map(|c| {
                    let g = &groups[c as usize];
                    if g.len() == 1 { g[0] } else { g[rng.random_range(0..g.len())] }
                })
                .collect()
        })
        .collect()
}

/// MST's domain compression, as post-processing of one-way releases: per attribute, the values
/// whose noisy count is at least `3 sigma` are kept, the others merged into one rare value
/// (when more than one). Returns per attribute the groups (compressed code -> original codes)
/// and the map (original code -> compressed code), and the one-way measurements on the
/// compressed domain: a merged cell is the sum of its k noisy cells over sqrt(k), with query
/// weight 1/sqrt(k), so its noise stays that of one cell.
pub(crate) fn compress(
    one_way: &[Released<Measurement>],
) -> (Vec<Vec<Vec<u32>>>, Vec<Vec<u32>>, Vec<Released<Measurement>>) {
    let mut compression = Vec::with_capacity(one_way.len());
    let mut maps = Vec::with_capacity(one_way.len());
    let mut measurements = Vec::with_capacity(one_way.len());
    for m in one_way {
        let (y, s1) = (&m.value().y, m.value().sigma);
        let keep: Vec<u32> = (0..y.len() as u32).filter(|&i| y[i as usize] >= 3.0 * s1).collect();
        let rare: Vec<u32> = (0..y.len() as u32).filter(|&i| y[i as usize] < 3.0 * s1).collect();
        let mut groups: Vec<Vec<u32>> = keep.iter().map(|&i| vec![i]).collect();
        if !rare.is_empty() {
            groups.push(rare.clone());
        }
        let mut map = vec![0u32; y.len()];
        for (g, members) in groups.iter().enumerate() {
            for &o in members {
                map[o as usize] = g as u32;
            }
        }
        let merged = rare.len() > 1;
        let groups_for_m = groups.clone();
        measurements.push(m.clone().map(move |m| {
            let mut ys = Vec::with_capacity(groups_for_m.len());
            let mut ws = Vec::with_capacity(groups_for_m.len());
            for g in &groups_for_m {
                let k = g.len() as f64;
                ys.push(g.iter().map(|&o| m.y[o as usize]).sum::<f64>() / k.sqrt());
                ws.push(1.0 / k.sqrt());
            }
            Measurement { attrs: m.attrs, weights: if merged { ws } else { vec![] }, y: ys, sigma: m.sigma }
        }));
        compression.push(groups);
        maps.push(map);
    }
    (compression, maps, measurements)
}

/// The identity compression for the given domain sizes.
pub fn no_compression(sizes: &[usize]) -> Vec<Vec<Vec<u32>>> {
    sizes.iter().map(|&k| (0..k as u32).map(|c| vec![c]).collect()).collect()
}
