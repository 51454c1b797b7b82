-- Counters the nodes share, each counted in a window of time: the API rate limits and the
-- failed-login limit, which every node counts in memory and adds here in batches.

-- `count` may go below zero for a moment (a batch giving back more than the row held); every
-- statement reads it as zero then. A row whose window ended (`ends_at` has passed) is as good
-- as none: the next count begins a new window, and the cleanup deletes it in time.
CREATE TABLE shared_counters (
    key        TEXT   COLLATE "C" PRIMARY KEY,
    count      BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL
);

CREATE INDEX shared_counters_by_end ON shared_counters (ends_at);
