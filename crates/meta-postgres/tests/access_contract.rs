//! The access contract (`berth_testkit::access`) on a fresh PostgreSQL database per clause.
//! What only a database shared by several nodes has is in `access_nodes.rs`.

mod support;

berth_testkit::access_contract!(postgres, support::open);
