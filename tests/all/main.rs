//! Integration tests: the plugins are built from source for wasm32-wasip2
//! (by `flow-test-artifacts`, when a test first needs one) and the real
//! `flow` binary runs them.

mod http_server;
mod support;

mod cache;
mod cancel;
mod capabilities;
mod capability_files;
mod cli;
mod dashboard;
mod durability;
mod engine;
mod errors;
mod examples;
mod extensions;
mod hardening;
mod language;
mod languages;
mod limits;
mod map;
mod native;
mod observe;
mod plugins;
mod postgres;
mod retry;
mod run;
mod runs;
mod sandbox;
mod schedule;
mod serve;
mod subworkflow;
mod ui;
mod usability;
mod workers;
