//! How each backend wants structured output asked for: one internal request ([`ChatRequest`]:
//! messages, JSON Schema, token limit, temperature) mapped to each server's fields.

use serde_json::{Value, json};

use crate::llm::prompt::ChatRequest;

/// How a backend wants structured output asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `response_format: {type: json_schema, json_schema: {name, strict: true, schema}}`
    /// (OpenAI; also accepted by vLLM, llama.cpp and Ollama >= 0.5). Keywords outside OpenAI's
    /// strict subset (minLength, maxLength) are left to validation.
    Openai,
    /// vLLM >= 0.12: `structured_outputs: {json: schema}` (guided_json was removed).
    Vllm,
    /// llama.cpp `llama-server`: `response_format: {type: json_object, schema}` (a GBNF grammar
    /// is built from it), plus `cache_prompt`.
    LlamaCpp,
    /// Ollama's OpenAI endpoint: `response_format` json_schema, and the schema in the prompt as
    /// Ollama's docs advise (Ollama Cloud does not enforce it).
    Ollama,
    /// Servers without schema enforcement: the schema in `<response_schema>` tags and the answer
    /// in a json-fenced block.
    PromptOnly,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Openai => "openai",
            Dialect::Vllm => "vllm",
            Dialect::LlamaCpp => "llama-cpp",
            Dialect::Ollama => "ollama",
            Dialect::PromptOnly => "prompt-only",
        }
    }

    /// The request body in this dialect.
    pub fn body(self, model: &str, req: &ChatRequest, seed: u64) -> Value {
        let schema = req.schema().clone();
        let mut system = req.system().to_string();
        if matches!(self, Dialect::Ollama | Dialect::PromptOnly) {
            system += &format!(
                "\n\nThe answer must be valid against this JSON Schema:\n<response_schema>\n{schema}\n</response_schema>"
            );
        }
        if self == Dialect::PromptOnly {
            system += "\nReply with the JSON only, inside a ```json fenced block.";
        }
        let mut b = json!({
            "model": model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": req.user()}],
            "temperature": req.temperature(),
            "seed": seed,
            "stream": false,
        });
        let max = json!(req.max_tokens());
        match self {
            Dialect::Openai => {
                b["response_format"] = json!({"type": "json_schema", "json_schema": {"name": req.purpose().name(), "strict": true, "schema": openai_strict(&schema)}});
                b["max_completion_tokens"] = max;
            }
            Dialect::Vllm => {
                b["structured_outputs"] = json!({"json": schema});
                b["max_tokens"] = max;
            }
            Dialect::LlamaCpp => {
                b["response_format"] = json!({"type": "json_object", "schema": schema});
                b["max_tokens"] = max;
                b["cache_prompt"] = json!(true);
            }
            Dialect::Ollama => {
                b["response_format"] =
                    json!({"type": "json_schema", "json_schema": {"name": req.purpose().name(), "schema": schema}});
                b["max_tokens"] = max;
            }
            Dialect::PromptOnly => b["max_tokens"] = max,
        }
        b
    }
}

/// OpenAI's strict mode accepts a subset of JSON Schema: drop string-length keywords and turn
/// `const` into a one-value `enum`. Answers are still validated against the full schema.
fn openai_strict(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "minLength" | "maxLength"))
                .map(
                    |(k, x)| {
                        if k == "const" { ("enum".to_string(), json!([x])) } else { (k.clone(), openai_strict(x)) }
                    },
                )
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(openai_strict).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_strict_drops_length_keywords_and_const() {
        let s = json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 5, "minLength": 1}, "k": {"const": "order"}}});
        assert_eq!(
            openai_strict(&s),
            json!({"type": "object", "properties": {"a": {"type": "string"}, "k": {"enum": ["order"]}}})
        );
    }
}
