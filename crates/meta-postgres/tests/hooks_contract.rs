//! The hooks contract (`berth_testkit::hooks`) over a fresh PostgreSQL database per clause.
//!
//! Off until `AccessStore` is implemented for `PgMetadataStore`: the contract's clauses
//! create their accounts, repository and package through it. Remove the `cfg` line below
//! then; until then `tests/hooks.rs` covers the same clauses with SQL fixtures.

mod support;

berth_testkit::hooks_contract!(postgres, support::open);
