-- 002_bus: what the event relay (hcp-relay) and the subscribers need.
--
-- The outbox of 001 (events) gets its public order here. Writers insert
-- events in their own transactions; events.id is taken at INSERT, but rows
-- become visible at COMMIT, so a reader that followed id (or any number
-- taken at insert) could pass over id 10 while its transaction is still
-- open and never come back for it. Instead the single active relay stamps
-- events.seq AFTER commit, in one serialised step, from relay_state:
-- whatever it can see unstamped gets last_seq+1, last_seq+2, ... So seq
-- is gapless and a row is never given a number below one already public.
-- Subscribers read WHERE seq > last safely.
--
--   writers ──INSERT (any order of commits)──▶ events (seq NULL)
--        └── statement trigger: NOTIFY hcp_events ──▶ relay wakes up
--   relay ── SELECT * FROM hcp_relay_stamp(n) ──▶ seq stamped, returned
--        └── publishes [type][hcp.v1.Event] in seq order on the bus

-- ---------------------------------------------------------------------------
-- Wake-up: every writer wakes the relay without having to remember it.
-- ---------------------------------------------------------------------------
-- A statement-level trigger (one notification per INSERT statement, not per
-- row), and PostgreSQL folds identical notifications of one transaction
-- into one, delivered only at commit: a transaction of 1000 events costs
-- one notification. The payload is empty: the relay reads the table, the
-- notification only says "look now" (the relay also polls as a fallback,
-- since notifications are not durable).
--
-- But a NOTIFY is not free: PostgreSQL serialises the commits of all
-- transactions that notify (a cluster-wide lock held through the commit's
-- WAL flush), so they lose group commit. Measured on the (shared, noisy)
-- reference machine with pgbench, four connections committing one event
-- each, three alternating rounds: 256-434 commits/s with an unconditional
-- NOTIFY, 558-1,088 with the conditional one below, 604-1,262 with no
-- trigger at all. So the
-- trigger notifies only when the relay may be asleep:
--
--   - The active relay keeps relay_wakeup.awake true while it is working
--     (it will look at the table again without being told).
--   - Before it waits, it sets awake false, then makes sure that no writer
--     which skipped its NOTIFY is still committing, then looks once more.
--   - A writer (the trigger below) that reads awake = true takes the shared
--     transaction-level advisory lock 1919249527 ("relw") and reads the
--     flag again: still true, it skips the NOTIFY and holds the lock until
--     its commit. The relay's check is pg_try_advisory_xact_lock on the
--     same key: it succeeds only when no such writer is in flight.
--
-- Either the relay lowered the flag before the writer's second read (the
-- writer sees false and notifies), or the writer holds the lock before the
-- relay checks (the relay waits for its commit, then looks): no event waits
-- for the poll. That second read needs a fresh snapshot, which only READ
-- COMMITTED gives, so writers in stricter isolation always notify. No row
-- (a new database, or after a crash: the table is UNLOGGED) means "notify".
CREATE UNLOGGED TABLE relay_wakeup (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    awake      boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE relay_wakeup IS
    'One row kept by the active hcp-relay: whether it is working (writers need not NOTIFY) or about to wait (they must). UNLOGGED: a hint, lost on a crash, never a fact.';
COMMENT ON COLUMN relay_wakeup.singleton IS 'Always true: there is at most one row.';
COMMENT ON COLUMN relay_wakeup.awake IS 'True while the relay is stamping and will look again without being woken.';
COMMENT ON COLUMN relay_wakeup.updated_at IS 'When the relay last changed it.';

CREATE FUNCTION hcp_events_notify() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF current_setting('transaction_isolation') = 'read committed'
       AND EXISTS (SELECT 1 FROM relay_wakeup WHERE awake) THEN
        PERFORM pg_advisory_xact_lock_shared(1919249527);
        -- A new snapshot (VOLATILE, READ COMMITTED), taken under the lock.
        IF EXISTS (SELECT 1 FROM relay_wakeup WHERE awake) THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM pg_notify('hcp_events', '');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION hcp_events_notify() IS
    'Trigger function: NOTIFY hcp_events after an INSERT into events, unless the relay says it is awake (then it holds advisory lock 1919249527 shared until commit, so the relay waits for it before sleeping).';

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION hcp_events_notify();
COMMENT ON TRIGGER events_notify ON events IS
    'Wakes hcp-relay (LISTEN hcp_events) when events are committed.';

-- ---------------------------------------------------------------------------
-- Events are history: written once, stamped once, never changed or removed.
-- ---------------------------------------------------------------------------
-- The only change allowed is the relay's stamp: seq and stamped_at set on a
-- row that had none. The WHEN clause is evaluated without calling PL/pgSQL,
-- so the legitimate stamp (on the relay's hot path) costs nothing extra.
CREATE TRIGGER events_stamp_once BEFORE UPDATE ON events
    FOR EACH ROW
    WHEN (OLD.seq IS NOT NULL
          OR NEW.seq IS NULL
          OR NEW.id IS DISTINCT FROM OLD.id
          OR NEW.type IS DISTINCT FROM OLD.type
          OR NEW.key IS DISTINCT FROM OLD.key
          OR NEW.payload IS DISTINCT FROM OLD.payload
          OR NEW.created_at IS DISTINCT FROM OLD.created_at)
    EXECUTE FUNCTION hcp_refuse_change();
COMMENT ON TRIGGER events_stamp_once ON events IS
    'Append-only: an event may only be stamped (seq and stamped_at set once, by the relay); any other UPDATE is refused.';
CREATE TRIGGER events_append_only BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION hcp_refuse_change();
COMMENT ON TRIGGER events_append_only ON events IS
    'Append-only: events are never deleted.';
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION hcp_refuse_change();
COMMENT ON TRIGGER events_no_truncate ON events IS
    'Append-only: events are never truncated.';

-- Every event is written twice (insert, then stamp), so the table churns.
-- Vacuum it after 1 % of changes rather than the default 20 %: dead index
-- entries in events_unstamped would otherwise slow the relay's scans.
ALTER TABLE events SET (autovacuum_vacuum_scale_factor = 0.01,
                        autovacuum_vacuum_insert_scale_factor = 0.01);

-- ---------------------------------------------------------------------------
-- Time of an event as sent on the bus
-- ---------------------------------------------------------------------------
-- STABLE, as extract() on timestamptz is: so the planner inlines it.
CREATE FUNCTION hcp_event_at_ms(at timestamptz) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT floor(extract(epoch FROM at) * 1000)::bigint
$$;
COMMENT ON FUNCTION hcp_event_at_ms(timestamptz) IS
    'Unix milliseconds of a timestamp (hcp.v1.Event.at_ms). One definition, so an event reads the same whether it came over the bus or from the table.';

-- ---------------------------------------------------------------------------
-- Stamping
-- ---------------------------------------------------------------------------
-- Called by the relay as one statement in its own transaction (autocommit):
--     SELECT * FROM hcp_relay_stamp(5000);
-- Returns the events it stamped, in seq order, for the relay to publish
-- after the commit.
--
-- Why it is correct even with several callers at once (the relay also
-- holds an advisory lock so that only one relay is active, but this does
-- not rely on it):
--   1. relay_state is locked FOR UPDATE first: callers are serialised.
--   2. In READ COMMITTED, each statement of a VOLATILE PL/pgSQL function
--      takes a new snapshot. The UPDATE below therefore starts after the
--      lock was granted and sees every stamp committed by the previous
--      holder: it cannot stamp a row twice or reuse a number.
--   3. It stamps only rows visible (committed) at that moment. A row of a
--      transaction still open is not seen; it gets a later seq when it
--      commits. So "id 11 stamped before id 10" is expected and harmless:
--      id order only breaks ties among rows visible together, correctness
--      never depends on it.
--   4. seq = last_seq + the row's rank among the ids taken, every one of
--      them is updated (checked), and last_seq advances by that number in
--      the same transaction: gapless, or nothing at all on a rollback.
CREATE FUNCTION hcp_relay_stamp(max_rows integer)
RETURNS TABLE (seq bigint, type text, key text, at_ms bigint, payload bytea)
LANGUAGE plpgsql VOLATILE
-- Every query below must touch only what it needs of a table that grows
-- without end: the unstamped ids through the partial index events_unstamped,
-- the rows through the primary key. The planner, judging by statistics that
-- may have been taken during a backlog (when most rows were unstamped),
-- would otherwise scan or hash the whole table: measured, 30-50 ms per
-- call on 500k events instead of well under 1 ms.
SET enable_hashjoin = off
SET enable_mergejoin = off
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
#variable_conflict use_column
DECLARE
    previous bigint;
    stamped bigint;
    ids bigint[];
BEGIN
    -- Nothing to do is the common case of a poll: answer it without the
    -- row lock, which would cost a transaction id and a WAL flush. (Rows
    -- committed just after this look are found by the next call.)
    PERFORM FROM events u WHERE u.seq IS NULL ORDER BY u.id LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT r.last_seq INTO previous FROM relay_state r WHERE r.singleton FOR UPDATE;
    IF previous IS NULL THEN
        RAISE EXCEPTION 'relay_state has no row: the 001 migration was not applied whole';
    END IF;
    -- events_unstamped (a partial index on id WHERE seq IS NULL) gives the
    -- oldest unstamped ids in order, and LIMIT stops the scan early: the
    -- cost does not grow with a backlog.
    SELECT array_agg(u.id ORDER BY u.id) INTO ids
      FROM (SELECT u.id FROM events u WHERE u.seq IS NULL ORDER BY u.id LIMIT max_rows) u;
    IF ids IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
        WITH done AS (
            UPDATE events e
               SET seq = previous + t.n, stamped_at = now()
              FROM unnest(ids) WITH ORDINALITY AS t(id, n)
             WHERE e.id = t.id
            RETURNING e.seq, e.type, e.key, e.created_at, e.payload
        )
        SELECT d.seq, d.type, d.key, hcp_event_at_ms(d.created_at), d.payload
          FROM done d
         ORDER BY d.seq;
    GET DIAGNOSTICS stamped = ROW_COUNT;
    -- Every id was seen committed and unstamped under our lock, and only a
    -- holder of this lock stamps: all of them were updated.
    IF stamped <> cardinality(ids) THEN
        RAISE EXCEPTION 'hcp_relay_stamp: stamped % of % events', stamped, cardinality(ids);
    END IF;
    UPDATE relay_state SET last_seq = previous + stamped, updated_at = now()
     WHERE singleton;
END
$$;
COMMENT ON FUNCTION hcp_relay_stamp(integer) IS
    'Stamps up to max_rows committed, unstamped events with the next gapless seq numbers (serialised on relay_state) and returns them in seq order. Used by hcp-relay.';

-- The advisory lock key the relays compete for (session level): the one
-- holding it is the active relay, the others wait as standbys. The key is a
-- constant (1919249529, "rely" in ASCII) shared with services/relay/relay.h;
-- this view shows who holds it.
CREATE VIEW hcp_relay_leader AS
    SELECT a.pid, a.application_name, a.client_addr, a.backend_start
      FROM pg_locks l
      JOIN pg_stat_activity a USING (pid)
     WHERE l.locktype = 'advisory' AND l.granted
       AND l.classid = 0 AND l.objid = 1919249529 AND l.objsubid = 1;
COMMENT ON VIEW hcp_relay_leader IS
    'The active hcp-relay: the session holding advisory lock 1919249529 (empty when no relay is running).';
COMMENT ON COLUMN hcp_relay_leader.pid IS 'PostgreSQL backend process of the leader''s session.';
COMMENT ON COLUMN hcp_relay_leader.application_name IS 'hcp-relay:<pid of the relay process>.';
COMMENT ON COLUMN hcp_relay_leader.client_addr IS 'Address the relay connects from (NULL over a Unix socket).';
COMMENT ON COLUMN hcp_relay_leader.backend_start IS 'When the leader''s session started.';

-- What is waiting for the relay: a relay that keeps up shows 0 here.
CREATE VIEW hcp_relay_lag AS
    SELECT (SELECT count(*) FROM events WHERE seq IS NULL) AS unstamped,
           (SELECT min(created_at) FROM events WHERE seq IS NULL) AS oldest_unstamped,
           r.last_seq, r.updated_at AS last_stamped_at
      FROM relay_state r;
COMMENT ON VIEW hcp_relay_lag IS
    'Events committed but not yet stamped by the relay, and the last seq stamped. Non-zero for long means no relay is running.';
COMMENT ON COLUMN hcp_relay_lag.unstamped IS 'Committed events still waiting for their seq.';
COMMENT ON COLUMN hcp_relay_lag.oldest_unstamped IS 'Insertion time of the oldest of them (NULL when none).';
COMMENT ON COLUMN hcp_relay_lag.last_seq IS 'Highest seq stamped so far (relay_state.last_seq).';
COMMENT ON COLUMN hcp_relay_lag.last_stamped_at IS 'When the relay last stamped.';

-- ---------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------
REVOKE ALL ON FUNCTION hcp_relay_stamp(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hcp_relay_stamp(integer) TO hcp_service;
GRANT SELECT ON hcp_relay_leader, hcp_relay_lag, relay_wakeup TO hcp_service, hcp_auditor;
GRANT INSERT, UPDATE ON relay_wakeup TO hcp_service;
