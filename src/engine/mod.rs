//! Counting engines: where the marginal counts of a fit are computed.
//!
//! Marginal-based synthesis needs the raw rows in one place only: the counting of the marginals
//! the mechanism asks for (after encoding and contribution bounding). Everything after the
//! counts (noise, selection, estimation, sampling) is small and stays in this process. So
//! scaling out is a counting backend behind [`crate::marginals::Counter`]:
//!
//! - [`Engine::Local`] (the default): the file is read in batches, encoded and bounded in this
//!   process ([`crate::pipeline::Plan::rows_streamed`]), and counted from compact code columns.
//! - [`Engine::DataFusion`] (cargo feature `engine-datafusion`): Apache DataFusion runs encode,
//!   bound and GROUP BY as one query plan over the Parquet/CSV file; only count vectors come
//!   back ([`datafusion`]).
//! - [`Engine::Ballista`] (cargo feature `engine-ballista`): the same plan on an Apache Ballista
//!   cluster (`ballista://HOST:PORT`).
//!
//! Every engine gives the same counts for the same key (the property tests in
//! `tests/engine.rs`), so the choice changes speed and where the data is read, not the release.

use crate::error::{Error, Result};

#[cfg(feature = "engine-ballista")]
pub mod ballista;
#[cfg(feature = "engine-datafusion")]
pub mod datafusion;
#[cfg(feature = "engine-datafusion")]
mod udf;

/// Which engine counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Engine {
    #[default]
    Local,
    DataFusion,
    /// A Ballista scheduler at `host:port`.
    Ballista(String),
}

impl Engine {
    /// `local`, `datafusion` or `ballista://HOST:PORT`.
    pub fn parse(s: &str) -> Result<Engine> {
        match s.trim() {
            "local" => Ok(Engine::Local),
            "datafusion" => Ok(Engine::DataFusion),
            s if s.starts_with("ballista://") => {
                let addr = &s["ballista://".len()..];
                let ok = addr
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && !h.contains('/') && p.parse::<u16>().is_ok_and(|p| p > 0));
                if !ok {
                    return Err(Error::Usage(format!("--engine {s}: expected ballista://HOST:PORT")));
                }
                Ok(Engine::Ballista(addr.to_string()))
            }
            other => Err(Error::Usage(format!(
                "--engine {other:?}: expected `local`, `datafusion` or `ballista://HOST:PORT`"
            ))),
        }
    }

    /// The name as `--engine` takes it.
    pub fn name(&self) -> String {
        match self {
            Engine::Local => "local".into(),
            Engine::DataFusion => "datafusion".into(),
            Engine::Ballista(a) => format!("ballista://{a}"),
        }
    }

    /// An error when this build cannot run the engine (its cargo feature is off).
    pub fn check_available(&self) -> Result<()> {
        let missing = match self {
            Engine::Local => None,
            Engine::DataFusion if cfg!(feature = "engine-datafusion") => None,
            Engine::DataFusion => Some("engine-datafusion"),
            Engine::Ballista(_) if cfg!(feature = "engine-ballista") => None,
            Engine::Ballista(_) => Some("engine-ballista"),
        };
        match missing {
            None => Ok(()),
            Some(f) => Err(Error::Usage(format!(
                "--engine {}: this privsynth was built without the `{f}` cargo feature (build it with `cargo build \
                 --release --features {f}`)",
                self.name()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_engine_names() {
        assert_eq!(Engine::parse("local").unwrap(), Engine::Local);
        assert_eq!(Engine::parse("datafusion").unwrap(), Engine::DataFusion);
        assert_eq!(Engine::parse("ballista://127.0.0.1:50050").unwrap(), Engine::Ballista("127.0.0.1:50050".into()));
        for bad in ["spark", "ballista://", "ballista://host", "ballista://:1", "ballista://h:0", "ballista://h:x"] {
            assert!(Engine::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Engine::parse("ballista://h:9").unwrap().name(), "ballista://h:9");
        if !cfg!(feature = "engine-datafusion") {
            let e = Engine::DataFusion.check_available().unwrap_err().to_string();
            assert!(e.contains("engine-datafusion"), "{e}");
        }
        assert!(Engine::Local.check_available().is_ok());
    }
}
