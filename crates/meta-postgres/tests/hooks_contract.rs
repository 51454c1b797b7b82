//! The hooks contract (`berth_testkit::hooks`) over a fresh PostgreSQL database per clause.

mod support;

berth_testkit::hooks_contract!(postgres, support::open);
