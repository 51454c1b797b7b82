//! The storage-policy contract (`berth_testkit::policies`) over a fresh PostgreSQL database
//! per clause.

mod support;

berth_testkit::policies_contract!(postgres, support::open);
