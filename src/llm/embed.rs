//! Text embeddings for Private Evolution's nearest-candidate votes.
//!
//! Real texts are only ever embedded inside the trusted boundary: by the local lexical
//! embedding (the default), or by an OpenAI-compatible `/embeddings` endpoint on this machine
//! (a loopback address; any other host is refused, because the real notes would leave it).
//!
//! The lexical embedding hashes word unigrams and character trigrams into a fixed number of
//! signed buckets (the hashing trick, Weinberger et al. 2009) and normalises to unit length, so
//! cosine similarity is a dot product. It sees words, not meaning: two notes about the same
//! thing in different words are far apart. A neural embedding model fixes that.

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// Buckets of the lexical embedding.
pub const HASHED_DIM: usize = 512;

/// FNV-1a, 64 bits: stable across runs and platforms (a std `Hasher` is not).
fn fnv(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The lexical embedding of one text: unit length (all zeros for a text without letters or
/// digits).
pub fn hashed(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; HASHED_DIM];
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let mut add = |feature: &[u8], weight: f32, seed: u64| {
        let h = fnv(feature, seed);
        let sign = if h >> 63 == 1 { -1.0 } else { 1.0 };
        v[(h % HASHED_DIM as u64) as usize] += sign * weight;
    };
    for w in &words {
        add(w.as_bytes(), 1.0, 1);
        let padded: Vec<char> = format!(" {w} ").chars().collect();
        for g in padded.windows(3) {
            add(g.iter().collect::<String>().as_bytes(), 0.5, 2);
        }
    }
    normalise(&mut v);
    v
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Dot product (cosine similarity of unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Where embeddings come from.
#[derive(Debug, Clone)]
pub enum Embedder {
    /// [`hashed`], in process.
    Hashed,
    /// `POST {base_url}/embeddings` on a loopback server.
    Server { base_url: String, model: String, timeout: std::time::Duration },
}

/// Whether a URL's host is this machine (127.0.0.0/8, localhost, [::1]).
pub fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |x| x.1);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |x| x.1);
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| &h[1..]).unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Embedder {
    /// An embedder for real texts: the lexical one, or a loopback server.
    pub fn new(url: Option<&str>, model: Option<&str>, timeout: std::time::Duration) -> Result<Embedder> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else { return Ok(Embedder::Hashed) };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::Usage(format!("--llm-pe-embed-url must start with http:// or https://, got {url:?}")));
        }
        if !is_loopback(url) {
            return Err(Error::Usage(format!(
                "--llm-pe-embed-url {url} is not on this machine: Private Evolution embeds the real texts, which may not leave the trusted boundary. \
                 Run an embedding server on 127.0.0.1 (e.g. llama-server --embeddings) or leave the option out for the local lexical embedding."
            )));
        }
        let model = model.map(str::to_owned).unwrap_or_else(|| "embedding".into());
        Ok(Embedder::Server { base_url: url.trim_end_matches('/').to_string(), model, timeout })
    }

    pub fn describe(&self) -> String {
        match self {
            Embedder::Hashed => {
                format!("local lexical embedding (hashed word and character-trigram features, {HASHED_DIM} dimensions)")
            }
            Embedder::Server { base_url, model, .. } => {
                format!("{base_url}/embeddings (model {model}, on this machine)")
            }
        }
    }

    /// Unit-length embeddings of `texts`, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        match self {
            Embedder::Hashed => Ok(texts.iter().map(|t| hashed(t)).collect()),
            Embedder::Server { base_url, model, timeout } => {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(*timeout))
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut out = Vec::with_capacity(texts.len());
                for chunk in texts.chunks(64) {
                    let body = json!({"model": model, "input": chunk});
                    let url = format!("{base_url}/embeddings");
                    let mut r = agent
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .send(body.to_string().as_str())
                        .map_err(|e| Error::Usage(format!("cannot reach the embedding server at {url}: {e}")))?;
                    let status = r.status().as_u16();
                    let text = r
                        .body_mut()
                        .with_config()
                        .limit(256 << 20)
                        .read_to_string()
                        .map_err(|e| Error::Usage(format!("{url}: {e}")))?;
                    // The server's message is not shown: it could echo an input text.
                    if status != 200 {
                        return Err(Error::Usage(format!("the embedding server at {url} answered HTTP {status}")));
                    }
                    let v: Value = serde_json::from_str(&text)
                        .map_err(|_| Error::Usage(format!("the embedding server at {url} did not answer JSON")))?;
                    let data = v
                        .get("data")
                        .and_then(Value::as_array)
                        .ok_or_else(|| Error::Usage(format!("the embedding server at {url} answered without data")))?;
                    let mut got: Vec<(usize, Vec<f32>)> = data
                        .iter()
                        .enumerate()
                        .map(|(i, d)| {
                            let idx = d.get("index").and_then(Value::as_u64).map_or(i, |x| x as usize);
                            let e: Vec<f32> = d
                                .get("embedding")
                                .and_then(Value::as_array)
                                .map(|a| a.iter().filter_map(Value::as_f64).map(|x| x as f32).collect())
                                .unwrap_or_default();
                            (idx, e)
                        })
                        .collect();
                    got.sort_by_key(|x| x.0);
                    if got.len() != chunk.len() || got.iter().any(|(_, e)| e.is_empty()) {
                        return Err(Error::Usage(format!(
                            "the embedding server at {url} answered {} embedding(s) for {} input(s)",
                            got.len(),
                            chunk.len()
                        )));
                    }
                    for (_, mut e) in got {
                        normalise(&mut e);
                        out.push(e);
                    }
                }
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_embedding_is_unit_length_and_sees_shared_words() {
        let a = hashed("Chest pain on exertion, referred to cardiology.");
        let b = hashed("Exertional chest pain; cardiology referral.");
        let c = hashed("Routine well child visit, vaccinations up to date.");
        assert!((dot(&a, &a) - 1.0).abs() < 1e-5);
        assert!(dot(&a, &b) > dot(&a, &c) + 0.2, "{} vs {}", dot(&a, &b), dot(&a, &c));
        assert_eq!(hashed("..."), vec![0f32; HASHED_DIM]);
        assert_eq!(hashed("Same text"), hashed("same TEXT"), "case-insensitive and deterministic");
    }

    #[test]
    fn only_loopback_embedding_servers_are_accepted() {
        for ok in [
            "http://127.0.0.1:8081/v1",
            "http://localhost/v1",
            "http://[::1]:9/v1",
            "https://127.1.2.3/x",
            "http://user@127.0.0.1:80/v1",
        ] {
            assert!(is_loopback(ok), "{ok}");
        }
        for bad in [
            "http://10.0.0.5/v1",
            "https://api.example.com/v1",
            "http://127.0.0.1.example.com/v1",
            "http://localhost.evil/v1",
        ] {
            assert!(!is_loopback(bad), "{bad}");
            assert!(Embedder::new(Some(bad), None, std::time::Duration::from_secs(1)).is_err());
        }
    }
}
