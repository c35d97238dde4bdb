//! The `Released<T>` type: a value produced by a mechanism of this crate, carrying its cost.
//! Only this crate can construct one; model files, shared reports and LLM prompts accept nothing
//! else (besides the public schema). Filled by the DP-core issue.
