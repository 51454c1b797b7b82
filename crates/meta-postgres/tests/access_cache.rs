//! The access cache's contract (`berth_testkit::cache`) over a fresh PostgreSQL database per
//! clause.

mod support;

berth_testkit::access_cache_contract!(postgres, support::open);
