//! The access cache's contract (`berth_testkit::cache`) over a fresh SQLite database per clause.

mod support;

berth_testkit::access_cache_contract!(sqlite, support::open);
