-- 004_windows: the 7-natural-day rating windows of Art. 11 (hcp-default-rater).
--
-- Every delivery of a configured stage (default_rater.stages) opens one
-- window. It ends at 24:00 Asia/Shanghai of the day D + window_days, D being
-- the day of delivery (the day on which a period starts is not counted).
-- When it ends with no rating from the rater, hcp-default-rater stores a
-- rating of 基本满意 (3) on every dimension with origin = 'default', and
-- the event rating.defaulted, in the same transaction as it marks the
-- window 'defaulted'. Exactly once, whatever the number of instances and
-- restarts: windows are claimed with FOR UPDATE SKIP LOCKED, and the
-- unique index ratings_one_default_per_delivery (001) refuses a second
-- default for a delivery.
--
-- Ratings that arrive late — the rule (docs in services/default-rater/README.md):
--   * A rater's own rating for the delivery always wins over the default,
--     whenever it arrives. If one is stored when the window is processed,
--     no default is made (state 'rated'), even if it came after 24:00.
--   * If it arrives after the default was stored, ingest stores it like
--     any other rating: nothing is lost, and a bad one opens a case
--     (Art. 21 wants every bad review followed up). The default row stays
--     (ratings are append-only) and the window becomes 'rated_late' with
--     late_rating_id set, so the supersession is visible here.
--   * Statistics read effective_ratings (003_cases.sql), which drops a
--     default whenever the rater has rated the same delivery. So both
--     orders (late rating before or after the default-rater got to the
--     window) give the same statistics.
--
--   open ──(rating before the end)──▶ rated
--     └──(end passed, no rating)──▶ defaulted ──(rating after)──▶ rated_late
--
-- The transitions are enforced by a trigger: nothing else can change a row,
-- and rows are never deleted.

-- ---------------------------------------------------------------------------
-- Dates in Asia/Shanghai (UTC+8, no daylight saving since 1991), the same
-- arithmetic as common/hcp_calendar.c, without the time-zone database.
-- ---------------------------------------------------------------------------
CREATE FUNCTION hcp_shanghai_date(at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((at AT TIME ZONE 'UTC') + interval '8 hours')::date
$$;
COMMENT ON FUNCTION hcp_shanghai_date(timestamptz) IS
    'The civil date in Asia/Shanghai (UTC+8) of a moment; same as hcp_date_from_ms in C.';

CREATE FUNCTION hcp_shanghai_day_end(day date) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((day + 1)::timestamp - interval '8 hours') AT TIME ZONE 'UTC'
$$;
COMMENT ON FUNCTION hcp_shanghai_day_end(date) IS
    '24:00 Asia/Shanghai of a day (= 00:00 of the next day): when a period whose last day it is ends. Same as hcp_date_end_ms in C.';

CREATE FUNCTION hcp_rating_window_end(delivered_at timestamptz, days integer)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hcp_shanghai_day_end(hcp_shanghai_date(delivered_at) + days)
$$;
COMMENT ON FUNCTION hcp_rating_window_end(timestamptz, integer) IS
    'End of a rating window of `days` natural days (Art. 11: 7): the delivery day is not counted, the window ends at 24:00 Asia/Shanghai of day D + days.';

-- ---------------------------------------------------------------------------
-- Windows
-- ---------------------------------------------------------------------------
CREATE TABLE rating_windows (
    delivery_id     text PRIMARY KEY REFERENCES deliveries,
    stage           smallint NOT NULL CHECK (stage BETWEEN 1 AND 3),
    ends_at         timestamptz NOT NULL,
    state           text NOT NULL DEFAULT 'open'
                    CHECK (state IN ('open', 'rated', 'defaulted', 'rated_late')),
    -- Not foreign keys, on purpose: the window names its default before
    -- the rating row is inserted, in the same transaction, and an FK check
    -- costs ~12 µs per window on the default-rater's hot path (a third of
    -- the target budget). Both ids are written only by hcp-default-rater,
    -- from rows it reads or writes in that transaction.
    rating_id       uuid,
    late_rating_id  uuid,
    opened_at       timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz,
    CHECK ((state = 'open') = (closed_at IS NULL)),
    CHECK ((state = 'rated_late') = (late_rating_id IS NOT NULL))
);
COMMENT ON TABLE rating_windows IS 'The rating window (Art. 11) of each delivery whose stage is configured in default_rater.stages: open until a rating comes or its end passes; then rated, or defaulted (基本满意 stored as origin default), or rated_late (the rater rated after the default). Rows are never deleted; only the transitions open→rated, open→defaulted, defaulted→rated_late are allowed.';
COMMENT ON COLUMN rating_windows.delivery_id IS 'The delivery whose window this is (one window per delivery).';
COMMENT ON COLUMN rating_windows.stage IS 'Stage of the delivery (1 application, 2 consultation, 3 completion), copied for reports.';
COMMENT ON COLUMN rating_windows.ends_at IS 'End of the window: 24:00 Asia/Shanghai of the delivery day + default_rater.window_days (7), see hcp_rating_window_end.';
COMMENT ON COLUMN rating_windows.state IS 'open: waiting; rated: the rater rated before the default; defaulted: the default rating was stored; rated_late: the rater rated after the default, which is then superseded in effective_ratings.';
COMMENT ON COLUMN rating_windows.rating_id IS 'rated: the rater''s rating that closed the window; defaulted and rated_late: the default rating (ratings.rating_id; written in the same transaction as that rating, not an enforced foreign key).';
COMMENT ON COLUMN rating_windows.late_rating_id IS 'rated_late: the rater''s rating that arrived after the default (it supersedes the default in statistics); ratings.rating_id, not an enforced foreign key.';
COMMENT ON COLUMN rating_windows.opened_at IS 'When the window row was written (database time, bookkeeping).';
COMMENT ON COLUMN rating_windows.closed_at IS 'Business time (hcp_clock) of the last state change; NULL while open.';

-- "Open and ends before now": the default-rater's sweep, ordered by end.
CREATE INDEX rating_windows_due ON rating_windows (ends_at) WHERE state = 'open';
-- (No index on rating_id: from a rating, its window is found by
-- ratings.delivery_id, the primary key here.)

-- The only changes allowed. The WHEN clause is evaluated without calling
-- PL/pgSQL, so the legal updates (100,000s per sweep) cost nothing extra.
CREATE FUNCTION hcp_rating_windows_refuse() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'rating_windows: % → % refused for delivery %', OLD.state, NEW.state,
                        OLD.delivery_id
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Allowed: open→rated, open→defaulted, defaulted→rated_late; delivery_id, stage, ends_at, opened_at never change.';
    END IF;
    RAISE EXCEPTION 'rating_windows: % refused: windows are history', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
COMMENT ON FUNCTION hcp_rating_windows_refuse() IS
    'Trigger function: refuses an illegal change of a rating window (see the rating_windows triggers).';

CREATE TRIGGER rating_windows_transitions BEFORE UPDATE ON rating_windows
    FOR EACH ROW
    WHEN (NOT ((OLD.state = 'open' AND NEW.state IN ('rated', 'defaulted'))
               OR (OLD.state = 'defaulted' AND NEW.state = 'rated_late'
                   AND NEW.rating_id IS NOT DISTINCT FROM OLD.rating_id))
          OR NEW.delivery_id IS DISTINCT FROM OLD.delivery_id
          OR NEW.stage IS DISTINCT FROM OLD.stage
          OR NEW.ends_at IS DISTINCT FROM OLD.ends_at
          OR NEW.opened_at IS DISTINCT FROM OLD.opened_at)
    EXECUTE FUNCTION hcp_rating_windows_refuse();
COMMENT ON TRIGGER rating_windows_transitions ON rating_windows IS
    'Only open→rated, open→defaulted and defaulted→rated_late (keeping the default''s rating_id); the window''s identity and end never change.';
CREATE TRIGGER rating_windows_no_delete BEFORE DELETE ON rating_windows
    FOR EACH ROW EXECUTE FUNCTION hcp_rating_windows_refuse();
COMMENT ON TRIGGER rating_windows_no_delete ON rating_windows IS
    'Windows are history: never deleted.';
CREATE TRIGGER rating_windows_no_truncate BEFORE TRUNCATE ON rating_windows
    FOR EACH STATEMENT EXECUTE FUNCTION hcp_rating_windows_refuse();
COMMENT ON TRIGGER rating_windows_no_truncate ON rating_windows IS
    'Windows are history: never truncated.';

-- For operators: how many windows in each state, and how far behind the
-- default-rater is (open windows whose end has passed should be ~0; the
-- wall clock is fine here, this is monitoring, not a business decision).
CREATE VIEW rating_windows_summary AS
    SELECT state, stage, count(*) AS windows,
           count(*) FILTER (WHERE state = 'open' AND ends_at <= now()) AS open_past_end,
           min(ends_at) FILTER (WHERE state = 'open') AS next_end
      FROM rating_windows
     GROUP BY state, stage;
COMMENT ON VIEW rating_windows_summary IS
    'Rating windows per state and stage; open_past_end > 0 for long means hcp-default-rater is not running or not keeping up (by the wall clock).';
COMMENT ON COLUMN rating_windows_summary.state IS 'Window state: open, rated, defaulted or rated_late.';
COMMENT ON COLUMN rating_windows_summary.stage IS 'Stage of the delivery: 1 application, 2 consultation, 3 completion.';
COMMENT ON COLUMN rating_windows_summary.windows IS 'Number of windows in this state and stage.';
COMMENT ON COLUMN rating_windows_summary.open_past_end IS 'Open windows whose end has passed by the wall clock: defaults not applied yet.';
COMMENT ON COLUMN rating_windows_summary.next_end IS 'Earliest end among the open windows: when the next default is due.';

-- ---------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------
GRANT SELECT ON rating_windows, rating_windows_summary TO hcp_service, hcp_auditor;
GRANT INSERT, UPDATE ON rating_windows TO hcp_service;
