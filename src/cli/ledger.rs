//! `ledger show`: verify the hash chain and print the spending per dataset.

use privsynth_privacy::PrivacyError;
use privsynth_privacy::ledger::Ledger;

use super::args::LedgerShowArgs;
use crate::error::{Error, Result, exit};

pub fn show(a: LedgerShowArgs) -> Result<i32> {
    let opts = a.ledger.options();
    let ledger = Ledger::new(&opts.ledger);
    let policy = opts.policy()?;
    let entries = match ledger.entries() {
        Ok(e) => e,
        Err(e @ PrivacyError::Ledger { .. }) => {
            eprintln!("{e}");
            return Ok(exit::FINDINGS);
        }
        Err(e) => return Err(e.into()),
    };
    let spending = ledger.spending()?;
    if let Some(to) = &a.json {
        let rows: Vec<serde_json::Value> = spending
            .iter()
            .map(|(fp, s)| {
                let limit = policy.as_ref().and_then(|p| p.limit_for(fp));
                // The same figure the text prints: at the limit's delta, else at 1e-9 plus the
                // mechanisms' delta.
                let at = limit.map_or(1e-9 + s.delta, |l| l.delta);
                serde_json::json!({
                    "fingerprint": fp, "name": s.name, "releases": s.releases, "rho": s.rho, "delta": s.delta,
                    "limit": limit.map(|l| serde_json::json!({"epsilon": l.epsilon, "delta": l.delta})),
                    "epsilon_spent": s.epsilon_at(at),
                    "epsilon_spent_at_delta": at,
                })
            })
            .collect();
        let out = serde_json::json!({
            "ledger": ledger.path().display().to_string(), "entries": entries.len(), "verified": true,
            "head": entries.last().map(|e| e.hash.clone()), "capped": policy.is_some(), "datasets": rows,
        });
        let text = serde_json::to_string_pretty(&out).map_err(|e| Error::Internal(e.to_string()))? + "\n";
        super::output::emit(&text, to.as_deref())?;
        return Ok(exit::OK);
    }
    println!("ledger {}: {} release(s), hash chain verified", ledger.path().display(), entries.len());
    if let Some(head) = entries.last() {
        println!("head {} (keep a copy elsewhere to detect truncation)", head.hash);
    }
    match &opts.policy {
        None => println!("no policy given: spending is recorded but NOT capped (pass --policy FILE to cap it)"),
        Some(p) => println!("policy: {}", p.display()),
    }
    for (fp, s) in &spending {
        let limit = policy.as_ref().and_then(|p| p.limit_for(fp));
        let spent = match limit {
            Some(l) => format!(
                "epsilon {} of {} at delta {:e}",
                s.epsilon_at(l.delta).map_or("n/a".to_string(), |e| format!("{e:.4}")),
                l.epsilon,
                l.delta
            ),
            None => format!(
                "epsilon {:.4} at delta {:.1e} (no limit)",
                s.epsilon_at(1e-9 + s.delta).unwrap_or(f64::NAN),
                1e-9 + s.delta
            ),
        };
        println!(
            "  {} ({fp}): {} release(s), rho {:.6}, mechanism delta {:.1e}; {spent}",
            s.name, s.releases, s.rho, s.delta
        );
    }
    Ok(exit::OK)
}
