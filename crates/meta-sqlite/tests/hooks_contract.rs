//! The hooks contract (`berth_testkit::hooks`) over a fresh SQLite database per clause.

mod support;

berth_testkit::hooks_contract!(sqlite, support::open);
