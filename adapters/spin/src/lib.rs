//! Portcullis on Fermyon Spin: a spin-sdk 7 HTTP component for wasm32-wasip2. Spin SQLite is
//! the system of record, Spin key-value the cache, Spin variables the configuration, Spin
//! outbound HTTP the fetcher. The adapter only translates types and bindings: the host layer
//! (settings, request handling) and everything OAuth is `portcullis-core`.

pub mod runtime;

#[cfg(target_arch = "wasm32")]
mod component;
#[cfg(target_arch = "wasm32")]
pub mod fetcher;
#[cfg(target_arch = "wasm32")]
pub mod store_kv;
#[cfg(target_arch = "wasm32")]
pub mod store_sqlite;
