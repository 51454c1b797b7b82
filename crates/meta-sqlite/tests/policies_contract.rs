//! The storage-policy contract (`berth_testkit::policies`) on a fresh SQLite database per
//! clause.

mod support;

berth_testkit::policies_contract!(sqlite, support::open);
