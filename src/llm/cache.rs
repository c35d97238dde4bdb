//! Response cache: answers stored under the SHA-256 of the canonical request (endpoint path and
//! JSON body with sorted keys; never the API key or the host), so a rerun with the same seed
//! sends nothing and reproduces the same output. Every answer the server returned is stored,
//! rejected ones included, so a rerun replays the same sequence of re-asks.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::data::write_atomic;
use crate::error::{Error, Result};

/// One stored answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub key: String,
    pub content: String,
    pub finish_reason: Option<String>,
    /// The model that answered, as the server named it.
    pub model: Option<String>,
    pub system_fingerprint: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// JSON with object keys sorted at every level, so equal requests hash equally whatever the
/// order in which their fields were built.
pub fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// The request hash: hex SHA-256 of the endpoint path and the canonical body.
pub fn request_hash(path: &str, body: &Value) -> String {
    let mut h = Sha256::new();
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(canonical(body).as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Cache {
    pub fn new(dir: &Path) -> Cache {
        Cache { dir: dir.to_path_buf() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2.min(key.len())]).join(format!("{key}.json"))
    }

    /// A stored answer; an unreadable or foreign file counts as a miss.
    pub fn get(&self, key: &str) -> Option<Entry> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        serde_json::from_str::<Entry>(&text).ok().filter(|e| e.key == key)
    }

    pub fn put(&self, entry: &Entry) -> Result<()> {
        let path = self.path(&entry.key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let text = serde_json::to_string(entry).map_err(|e| Error::Internal(e.to_string()))?;
        write_atomic(&path, |f| std::io::Write::write_all(f, text.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_hash_but_content_does() {
        let a = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": 1});
        let b: Value =
            serde_json::from_str(r#"{"seed": 1, "messages": [{"content": "x", "role": "user"}], "model": "m"}"#)
                .unwrap();
        assert_eq!(request_hash("/chat/completions", &a), request_hash("/chat/completions", &b));
        assert_ne!(
            request_hash("/chat/completions", &a),
            request_hash("/chat/completions", &json!({"model": "m", "messages": [], "seed": 2}))
        );
        assert_ne!(request_hash("/chat/completions", &a), request_hash("/completions", &a));
    }

    #[test]
    fn stores_and_reads_back() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::new(d.path());
        let e = Entry {
            key: "ab12".into(),
            content: "{}".into(),
            finish_reason: Some("stop".into()),
            model: None,
            system_fingerprint: None,
        };
        assert_eq!(c.get("ab12"), None);
        c.put(&e).unwrap();
        assert_eq!(c.get("ab12"), Some(e));
        std::fs::write(d.path().join("ab").join("ab12.json"), "garbage").unwrap();
        assert_eq!(c.get("ab12"), None, "a damaged entry is a miss, not an error");
    }
}
