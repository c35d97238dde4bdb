//! The graphical model behind synthesis: a junction tree over the measured attribute sets,
//! log-potentials per clique, belief propagation to calibrated clique marginals, and marginals
//! of any attribute set (variable elimination where no clique contains it).

pub mod estimate;
pub mod factor;
pub mod file;
pub mod sample;

use factor::{Factor, Proj, contract};

/// A junction tree over attributes `0..sizes.len()`.
#[derive(Debug, Clone)]
pub struct JunctionTree {
    pub sizes: Vec<usize>,
    /// Maximal cliques of the triangulated graph, attributes ascending.
    pub cliques: Vec<Vec<usize>>,
    /// Tree edges between cliques.
    pub edges: Vec<(usize, usize)>,
    /// Elimination order of the attributes; sampling visits it in reverse.
    pub order: Vec<usize>,
    /// Per attribute: the attribute and its neighbours when it was eliminated.
    pub elim_clique: Vec<Vec<usize>>,
    // Belief-propagation schedule from root 0: cliques in BFS order, parent of each, and per
    // clique the projections onto its separator with the parent, from itself and from the
    // parent (the root's: onto nothing, from itself).
    bfs: Vec<usize>,
    parent: Vec<Option<usize>>,
    to_sep: Vec<Proj>,
    parent_to_sep: Vec<Option<Proj>>,
}

fn cells(attrs: &[usize], sizes: &[usize]) -> f64 {
    attrs.iter().map(|&a| sizes[a] as f64).product()
}

/// Cells over the maximal cliques of the junction tree [`JunctionTree::build`] would make from
/// `sets`, without building it: what a model of those sets really costs, fill-in included.
pub fn tree_cells(sizes: &[usize], sets: &[Vec<usize>]) -> f64 {
    triangulate(sizes, sets).2.iter().map(|c| cells(c, sizes)).sum()
}

/// Greedy triangulation: the elimination order, each attribute's elimination clique, and the
/// maximal cliques (in elimination order).
fn triangulate(sizes: &[usize], sets: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let d = sizes.len();
    let mut adj = vec![vec![false; d]; d];
    for s in sets {
        for &a in s {
            for &b in s {
                adj[a][b] |= a != b;
            }
        }
    }
    let mut alive = vec![true; d];
    let mut order = Vec::with_capacity(d);
    let mut elim_clique = vec![vec![]; d];
    for _ in 0..d {
        // The live attribute whose elimination clique has the fewest cells (ties: lowest index).
        let cost = |v: usize| {
            (0..d).filter(|&u| alive[u] && adj[v][u]).map(|u| sizes[u] as f64).product::<f64>() * sizes[v] as f64
        };
        let v = (0..d)
            .filter(|&v| alive[v])
            .map(|v| (cost(v), v))
            .min_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)))
            .expect("an attribute is left")
            .1;
        let nb: Vec<usize> = (0..d).filter(|&u| alive[u] && adj[v][u]).collect();
        for &a in &nb {
            for &b in &nb {
                adj[a][b] |= a != b;
            }
        }
        alive[v] = false;
        let mut clique = nb;
        clique.push(v);
        clique.sort_unstable();
        elim_clique[v] = clique;
        order.push(v);
    }
    let mut cliques: Vec<Vec<usize>> = vec![];
    for &v in &order {
        let c = &elim_clique[v];
        if !elim_clique.iter().any(|o| o.len() > c.len() && c.iter().all(|a| o.contains(a))) && !cliques.contains(c) {
            cliques.push(c.clone());
        }
    }
    (order, elim_clique, cliques)
}

impl JunctionTree {
    /// Triangulate the graph in which each of `sets` is a clique (greedy: eliminate the attribute
    /// whose elimination clique has the fewest cells), keep the maximal cliques, and join them by
    /// a maximum spanning tree on separator size (which has the running-intersection property).
    pub fn build(sizes: &[usize], sets: &[Vec<usize>]) -> JunctionTree {
        let (order, elim_clique, cliques) = triangulate(sizes, sets);
        // Maximum spanning tree over |intersection| (Kruskal), connecting everything.
        let k = cliques.len();
        let mut pairs: Vec<(usize, usize, usize)> = vec![];
        for i in 0..k {
            for j in i + 1..k {
                let w = cliques[i].iter().filter(|a| cliques[j].contains(a)).count();
                pairs.push((w, i, j));
            }
        }
        pairs.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
        let mut comp: Vec<usize> = (0..k).collect();
        fn find(c: &mut [usize], x: usize) -> usize {
            let mut r = x;
            while c[r] != r {
                r = c[r];
            }
            c[x] = r;
            r
        }
        let mut edges = vec![];
        for (_, i, j) in pairs {
            let (ri, rj) = (find(&mut comp, i), find(&mut comp, j));
            if ri != rj {
                comp[ri] = rj;
                edges.push((i, j));
            }
        }
        let mut jt = JunctionTree {
            sizes: sizes.to_vec(),
            cliques,
            edges,
            order,
            elim_clique,
            bfs: vec![],
            parent: vec![],
            to_sep: vec![],
            parent_to_sep: vec![],
        };
        jt.schedule();
        jt
    }

    fn neighbours(&self, c: usize) -> Vec<usize> {
        self.edges
            .iter()
            .filter_map(|&(a, b)| {
                if a == c {
                    Some(b)
                } else if b == c {
                    Some(a)
                } else {
                    None
                }
            })
            .collect()
    }

    fn schedule(&mut self) {
        let k = self.cliques.len();
        let mut parent = vec![None; k];
        let mut seen = vec![false; k];
        let mut bfs = vec![0];
        seen[0] = true;
        let mut i = 0;
        while i < bfs.len() {
            let c = bfs[i];
            for n in self.neighbours(c) {
                if !seen[n] {
                    seen[n] = true;
                    parent[n] = Some(c);
                    bfs.push(n);
                }
            }
            i += 1;
        }
        let mut to_sep = Vec::with_capacity(k);
        let mut parent_to_sep = Vec::with_capacity(k);
        for c in 0..k {
            let s: Vec<usize> = match parent[c] {
                Some(p) => self.cliques[c].iter().copied().filter(|a| self.cliques[p].contains(a)).collect(),
                None => vec![],
            };
            to_sep.push(Proj::new(&self.cliques[c], &self.shape(c), &s));
            parent_to_sep.push(parent[c].map(|p| Proj::new(&self.cliques[p], &self.shape(p), &s)));
        }
        (self.bfs, self.parent, self.to_sep, self.parent_to_sep) = (bfs, parent, to_sep, parent_to_sep);
    }

    /// Belief propagation in place: log-potentials on this tree's cliques in, calibrated clique
    /// probabilities out, with no other copy of the model.
    ///
    /// Collect in log space, but keep each clique's `exp(acc - max)` with the max taken per
    /// separator cell (so no slice underflows that the log-space computation would keep). The
    /// message back from a parent only depends on separator cells: log sum over the parent's
    /// belief onto the separator minus the child's own upward message. So the distribute pass
    /// needs sums and products only, with `exp` on separator cells.
    pub fn probabilities_in_place(&self, f: &mut [Factor]) {
        let k = self.cliques.len();
        let mut max: Vec<Vec<f64>> = vec![vec![]; k];
        let mut up: Vec<Vec<f64>> = vec![vec![]; k];
        for &c in self.bfs.iter().rev() {
            let proj = &self.to_sep[c];
            let n = proj.small_len();
            let mut mx = vec![f64::NEG_INFINITY; n];
            proj.max_into(&f[c].values, &mut mx);
            let mut sum = vec![0.0; n];
            proj.exp_shift_sum(&mut f[c].values, &mx, &mut sum);
            if let (Some(p), Some(pp)) = (self.parent[c], &self.parent_to_sep[c]) {
                let msg: Vec<f64> =
                    mx.iter().zip(&sum).map(|(m, s)| if *s > 0.0 { m + s.ln() } else { f64::NEG_INFINITY }).collect();
                pp.add_from(&mut f[p].values, &msg, 1.0);
                up[c] = msg;
            }
            max[c] = mx;
        }
        // Distribute: f[c] = belief up to a factor exp(off[c]).
        let mut off = vec![0.0; k];
        for &c in &self.bfs {
            match (self.parent[c], &self.parent_to_sep[c]) {
                (Some(p), Some(pp)) => {
                    let n = up[c].len();
                    let mut sp = vec![0.0; n];
                    pp.sum_into(&f[p].values, &mut sp);
                    // log of the child's belief per separator cell, over its kept exp values.
                    let g: Vec<f64> = (0..n)
                        .map(|s| {
                            if sp[s] > 0.0 && max[c][s] > f64::NEG_INFINITY {
                                max[c][s] + sp[s].ln() + off[p] - up[c][s]
                            } else {
                                f64::NEG_INFINITY
                            }
                        })
                        .collect();
                    let o = g.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let scale: Vec<f64> =
                        g.iter().map(|&x| if x == f64::NEG_INFINITY { 0.0 } else { (x - o).exp() }).collect();
                    self.to_sep[c].mul_from(&mut f[c].values, &scale);
                    off[c] = o;
                }
                _ => off[c] = max[c][0],
            }
        }
        for fc in f.iter_mut() {
            let z: f64 = fc.values.iter().sum();
            if z > 0.0 {
                let inv = 1.0 / z;
                fc.values.iter_mut().for_each(|x| *x *= inv);
            }
        }
    }

    pub fn shape(&self, c: usize) -> Vec<usize> {
        self.cliques[c].iter().map(|&a| self.sizes[a]).collect()
    }

    /// Total cells over the maximal cliques (what memory and time scale with).
    pub fn total_cells(&self) -> f64 {
        self.cliques.iter().map(|c| cells(c, &self.sizes)).sum()
    }

    /// Index of the smallest clique containing every attribute of `attrs`, if one does.
    pub fn clique_containing(&self, attrs: &[usize]) -> Option<usize> {
        (0..self.cliques.len()).filter(|&c| attrs.iter().all(|a| self.cliques[c].contains(a))).min_by(|&x, &y| {
            cells(&self.cliques[x], &self.sizes).total_cmp(&cells(&self.cliques[y], &self.sizes)).then(x.cmp(&y))
        })
    }
}

/// A fitted model: log-potentials on the junction tree's cliques and the (estimated) total.
#[derive(Debug, Clone)]
pub struct GraphicalModel {
    pub tree: JunctionTree,
    pub potentials: Vec<Factor>,
    pub total: f64,
}

/// Calibrated clique marginals, as probabilities (each summing to 1).
#[derive(Debug, Clone)]
pub struct Beliefs(pub Vec<Factor>);

/// Projections of calibrated cliques, shared between the marginal queries of one set of
/// beliefs ([`GraphicalModel::marginals`]). Answering a query no clique holds reads every
/// clique on the subtree between its attributes and projects it onto the separators and the
/// query's attributes there; queries over the same path repeat those projections, and on a
/// large model the reads were most of AIM's candidate scoring. The cache holds at most as
/// many cells as the model (then projections are computed without keeping them).
#[derive(Debug, Default)]
struct ProjCache {
    map: std::sync::Mutex<(std::collections::HashMap<(usize, Vec<usize>), std::sync::Arc<Factor>>, f64)>,
    max_cells: f64,
}

impl ProjCache {
    /// Clique `c` of `beliefs` summed to `local` (ascending), from the cache when there.
    fn project(&self, beliefs: &Beliefs, c: usize, local: &[usize]) -> std::sync::Arc<Factor> {
        let key = (c, local.to_vec());
        if let Some(f) = self.map.lock().expect("no panic while holding the cache").0.get(&key) {
            return f.clone();
        }
        let f = std::sync::Arc::new(beliefs.0[c].sum_to(local));
        let mut guard = self.map.lock().expect("no panic while holding the cache");
        let (map, cells) = &mut *guard;
        let size = f.values.len() as f64;
        if *cells + size <= self.max_cells {
            *cells += size;
            map.insert(key, f.clone());
        }
        f
    }
}

impl GraphicalModel {
    /// The uniform model.
    pub fn uniform(tree: JunctionTree, total: f64) -> GraphicalModel {
        let potentials = tree.cliques.iter().map(|c| Factor::constant(c, &tree.sizes, 0.0)).collect();
        GraphicalModel { tree, potentials, total }
    }

    /// Belief propagation (collect to the root, distribute back): calibrated clique marginals.
    pub fn calibrate(&self) -> Beliefs {
        Beliefs(self.clique_probabilities())
    }

    /// Calibrated clique marginals as probabilities, with one `exp` per cell.
    pub fn clique_probabilities(&self) -> Vec<Factor> {
        let mut f = self.potentials.clone();
        self.tree.probabilities_in_place(&mut f);
        f
    }

    /// Expected counts (probabilities times the total) on each clique.
    pub fn clique_marginals(&self) -> Vec<Factor> {
        let mut mu = self.clique_probabilities();
        for m in &mut mu {
            m.values.iter_mut().for_each(|v| *v *= self.total);
        }
        mu
    }

    /// Expected counts over any attribute set (ascending), whether or not a clique contains it.
    pub fn marginal(&self, beliefs: &Beliefs, attrs: &[usize]) -> Factor {
        self.marginal_in(beliefs, attrs, None)
    }

    /// [`Self::marginal`] of each query, in parallel, sharing the clique projections that
    /// queries over the same part of the tree need (the same values as one query at a time).
    pub fn marginals(&self, beliefs: &Beliefs, queries: &[&[usize]]) -> Vec<Factor> {
        use rayon::prelude::*;
        let cache = ProjCache { max_cells: self.tree.total_cells(), ..Default::default() };
        queries.par_iter().map(|q| self.marginal_in(beliefs, q, Some(&cache))).collect()
    }

    fn marginal_in(&self, beliefs: &Beliefs, attrs: &[usize], cache: Option<&ProjCache>) -> Factor {
        let t = &self.tree;
        let mut m = if let Some(c) = t.clique_containing(attrs) {
            let f = &beliefs.0[c];
            let p = Proj::new(&f.attrs, &f.shape, attrs);
            let mut v = vec![0.0; p.small_len()];
            p.sum_into(&f.values, &mut v);
            Factor::new(attrs.to_vec(), attrs.iter().map(|&a| t.sizes[a]).collect(), v)
        } else {
            self.eliminate(beliefs, attrs, cache)
        };
        m.values.iter_mut().for_each(|v| *v *= self.total);
        m
    }

    /// The marginal of `attrs` when no clique holds them all, over the smallest subtree whose
    /// cliques cover them: p = product of clique beliefs / product of separator beliefs there,
    /// summed by collecting towards a clique that holds the widest attribute. Each kept clique is
    /// read once, projected onto its separators and the query's attributes in it; the products
    /// are then over separators and the query only, never over a whole clique. In linear space:
    /// each message is a conditional probability, so a product only underflows where the mass is
    /// negligible anyway, and a zero separator cell zeroes its cells (no 0/0).
    fn eliminate(&self, beliefs: &Beliefs, attrs: &[usize], cache: Option<&ProjCache>) -> Factor {
        let t = &self.tree;
        let k = t.cliques.len();
        let mut keep = vec![true; k];
        let needed: Vec<bool> = (0..k).map(|c| t.cliques[c].iter().any(|a| attrs.contains(a))).collect();
        // Prune leaves that hold none of the attributes.
        loop {
            let mut changed = false;
            for c in 0..k {
                if keep[c] && !needed[c] && t.neighbours(c).iter().filter(|&&n| keep[n]).count() <= 1 {
                    keep[c] = false;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Rooted at the widest attribute, so that the messages carry the narrower ones.
        let widest = *attrs.iter().max_by_key(|&&a| (t.sizes[a], std::cmp::Reverse(a))).expect("a query attribute");
        let root =
            (0..k).find(|&c| keep[c] && t.cliques[c].contains(&widest)).expect("a kept clique holds each attribute");
        let mut parent: Vec<Option<usize>> = vec![None; k];
        let mut order = vec![root];
        let mut i = 0;
        while i < order.len() {
            let c = order[i];
            for n in t.neighbours(c) {
                if keep[n] && n != root && parent[n].is_none() {
                    parent[n] = Some(c);
                    order.push(n);
                }
            }
            i += 1;
        }
        let mut msg: Vec<Option<Factor>> = vec![None; k];
        for &c in order.iter().rev() {
            let clique = &t.cliques[c];
            let children: Vec<usize> = order.iter().copied().filter(|&n| parent[n] == Some(c)).collect();
            let sep: Vec<usize> =
                parent[c].map_or(vec![], |p| clique.iter().copied().filter(|a| t.cliques[p].contains(a)).collect());
            let local: Vec<usize> = clique
                .iter()
                .copied()
                .filter(|a| {
                    sep.contains(a) || attrs.contains(a) || children.iter().any(|&ch| t.cliques[ch].contains(a))
                })
                .collect();
            let f = match cache {
                Some(cache) => cache.project(beliefs, c, &local),
                None => std::sync::Arc::new(beliefs.0[c].sum_to(&local)),
            };
            let sep_marginal = parent[c].map(|_| f.sum_to(&sep));
            let kids: Vec<Factor> =
                children.iter().map(|&ch| msg[ch].take().expect("children are collected first")).collect();
            let out: Vec<usize> = local.iter().copied().filter(|a| sep.contains(a) || attrs.contains(a)).collect();
            let mut f = contract(&f, &kids.iter().collect::<Vec<_>>(), &out, &t.sizes);
            if let Some(s) = sep_marginal {
                f.div_sub(&s);
            }
            msg[c] = Some(f);
        }
        let mut out = msg[root].take().expect("the root is collected");
        let z: f64 = out.values.iter().sum();
        if z > 0.0 {
            out.values.iter_mut().for_each(|v| *v /= z);
        }
        out
    }
}

/// Keep freed memory in the process instead of handing it back to the kernel at once (glibc's
/// allocator; elsewhere nothing). Estimation allocates and frees factor-sized buffers every
/// iteration; with glibc's defaults the top of the heap is trimmed and grown again each time,
/// and the page faults of the regrowth were about 13% of AIM's CPU on 32-bin Adult at epsilon 3
/// (4.3 of 32.8 CPU s a run in system time). A 1 GiB trim threshold and a 256 MiB top pad cut
/// that run to 26.6 CPU s at the same peak memory order (209 against 158 MB). Call once at the
/// start of a process, before threads start (the binary's and the benchmarks' `main`).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning parameters; called before any
    // thread is started.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::factor::index_map;
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// Brute-force joint of a small model: exp(sum of potentials), normalised.
    fn joint(m: &GraphicalModel) -> Factor {
        let all: Vec<usize> = (0..m.tree.sizes.len()).collect();
        let mut j = Factor::constant(&all, &m.tree.sizes, 0.0);
        for p in &m.potentials {
            let map = index_map(&j.attrs, &j.shape, &p.attrs);
            j.add_sub(p, &map);
        }
        let z = j.logsumexp();
        j.values.iter_mut().for_each(|v| *v -= z);
        j.exp()
    }

    fn random_model(sizes: &[usize], sets: &[Vec<usize>], seed: u64) -> GraphicalModel {
        let mut rng = StdRng::seed_from_u64(seed);
        let tree = JunctionTree::build(sizes, sets);
        let mut m = GraphicalModel::uniform(tree, 1.0);
        for p in &mut m.potentials {
            p.values.iter_mut().for_each(|v| *v = rng.random_range(-2.0..2.0));
        }
        m
    }

    #[test]
    fn junction_tree_is_valid() {
        // A 5-cycle needs fill-in; every input set must sit inside a clique, and the tree must
        // have the running-intersection property.
        let sizes = [2, 3, 2, 4, 3, 2];
        let sets = vec![vec![0, 1], vec![1, 2], vec![2, 3], vec![3, 4], vec![0, 4], vec![5]];
        let t = JunctionTree::build(&sizes, &sets);
        assert_eq!(t.edges.len(), t.cliques.len() - 1);
        for s in &sets {
            assert!(t.clique_containing(s).is_some(), "{s:?} in no clique of {:?}", t.cliques);
        }
        assert!(t.cliques.iter().any(|c| c.len() == 3), "the cycle was triangulated: {:?}", t.cliques);
        for a in 0..sizes.len() {
            // Cliques holding `a` form a connected subtree.
            let holding: Vec<usize> = (0..t.cliques.len()).filter(|&c| t.cliques[c].contains(&a)).collect();
            let inner = t.edges.iter().filter(|(x, y)| holding.contains(x) && holding.contains(y)).count();
            assert_eq!(inner, holding.len() - 1, "attribute {a}: {:?} / {:?}", t.cliques, t.edges);
        }
        let mut o = t.order.clone();
        o.sort();
        assert_eq!(o, (0..6).collect::<Vec<_>>());
    }

    /// A cell whose probability underflows to exactly 0 has log belief -inf in its clique and
    /// in the separator; eliminating over it must give 0 there, not -inf - (-inf) = NaN. Noisy
    /// measurements on small data drive potentials this far apart (AIM scores went NaN).
    #[test]
    fn elimination_survives_zero_probability_cells() {
        let sizes = [2, 3, 2];
        let mut m = random_model(&sizes, &[vec![0, 1], vec![1, 2]], 7);
        for p in &mut m.potentials {
            if p.attrs == [0, 1] {
                // B = 0 gets weight exp(-1000): 0 in f64.
                for a in 0..2 {
                    p.values[a * 3] = -1000.0;
                }
            }
        }
        let b = m.calibrate();
        let got = m.marginal(&b, &[0, 2]);
        let want = joint(&m).sum_to(&[0, 2]);
        for (x, y) in want.values.iter().zip(&got.values) {
            assert!(y.is_finite() && (x - y).abs() < 1e-10, "{:?} vs {:?}", got.values, want.values);
        }
    }

    #[test]
    fn belief_propagation_matches_brute_force() {
        let sizes = [2, 3, 2, 4, 3];
        for (seed, sets) in [
            (1, vec![vec![0, 1], vec![1, 2], vec![2, 3], vec![3, 4]]),
            (2, vec![vec![0, 1], vec![1, 2], vec![2, 3], vec![3, 4], vec![0, 4]]),
            (3, vec![vec![0, 1, 2], vec![2, 3], vec![4]]),
        ] {
            let m = random_model(&sizes, &sets, seed);
            let j = joint(&m);
            let b = m.calibrate();
            for (c, clique) in m.tree.cliques.iter().enumerate() {
                let want = j.sum_to(clique);
                let got = &b.0[c];
                for (x, y) in want.values.iter().zip(&got.values) {
                    assert!((x - y).abs() < 1e-10, "clique {clique:?}");
                }
            }
            // Marginals of sets no clique contains, by variable elimination.
            for q in [vec![0, 3], vec![0, 2, 4], vec![1, 4], vec![4]] {
                let want = j.sum_to(&q);
                let got = m.marginal(&b, &q);
                for (x, y) in want.values.iter().zip(&got.values) {
                    assert!((x - y).abs() < 1e-10, "query {q:?} on {:?}", m.tree.cliques);
                }
            }
        }
    }

    /// Many queries at once, sharing clique projections, give each query's own marginal: on a
    /// chain where most pairs span several cliques (so paths overlap and projections repeat),
    /// against the brute-force joint.
    #[test]
    fn shared_projections_give_each_querys_marginal() {
        let sizes = [2, 3, 2, 4, 3, 2];
        let sets: Vec<Vec<usize>> = (0..5).map(|a| vec![a, a + 1]).collect();
        let m = random_model(&sizes, &sets, 11);
        let j = joint(&m);
        let b = m.calibrate();
        let mut queries: Vec<Vec<usize>> = vec![];
        for a in 0..6 {
            for c in a + 1..6 {
                queries.push(vec![a, c]);
                queries.extend((c + 1..6).map(|e| vec![a, c, e]));
            }
        }
        // Twice over, so that the second copies are answered from the cache.
        let qs: Vec<&[usize]> = queries.iter().chain(&queries).map(Vec::as_slice).collect();
        let got = m.marginals(&b, &qs);
        assert_eq!(got.len(), qs.len());
        for (q, f) in qs.iter().zip(&got) {
            let want = j.sum_to(q);
            assert_eq!(f.attrs, *q);
            for (x, y) in want.values.iter().zip(&f.values) {
                assert!((x * m.total - y).abs() < 1e-10, "query {q:?}");
            }
        }
    }
}
