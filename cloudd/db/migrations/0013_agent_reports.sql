-- The agents' reports the conductor applied, by idempotency key (issue 19): an agent retries a
-- report whose reply it did not get (link lost, controller killed after the commit), and the
-- key makes the retry a no-op. Written in the transaction of the change it reports; rows are
-- pruned after a day (an agent that is away longer retries nothing: its queue died with it or
-- was delivered).
CREATE TABLE agent_reports (
    report_key TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX agent_reports_applied_at ON agent_reports (applied_at);
