//! Berth end to end: one test binary that starts the real `berth serve` on 127.0.0.1:0 (see
//! [`common::Server`]) and drives it over HTTP, with real clients where it matters. One module
//! per surface; the harness, the fixture builder, the GitHub-API client and the storage
//! inspectors live in [`common`].

mod common;

mod access_leaks;
mod api;
mod api_errors;
mod api_limits;
mod auth;
mod clients;
mod cluster;
mod cluster_limits;
pub(crate) mod gc;
mod gh_cli;
mod github_api;
mod github_shapes;
mod hostile;
mod lifecycle;
mod linking;
mod manage;
mod matrix;
mod memory;
mod observe;
mod octokit;
mod ops;
mod packages;
mod policies;
mod postgres_faults;
mod quota;
mod recovery;
mod redirect;
mod s3_faults;
mod scanner;
mod tls;
mod web;
mod web_browser;
mod web_matrix;
mod web_packages;
mod web_settings;
pub(crate) mod webhooks;
