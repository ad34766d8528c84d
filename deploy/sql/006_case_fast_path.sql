-- 006_case_fast_path: tell case-router about bad ratings the moment they commit.
--
-- The ordered path from a bad rating to its case is: ingest commits → the
-- relay stamps the event (a second commit) → the bus → case-router. Each
-- commit waits for a disk flush, and the relay's is the one whose jitter
-- made the tail of "bad rating → case" latency (Art. 21: every bad review
-- gets its follow-up). This trigger lets case-router skip the relay: a
-- statement that stores bad ratings raises NOTIFY hcp_bad_ratings with their
-- ids, delivered only if and when the transaction commits.
--
-- It is a hint, not the record: notifications are not durable and are lost
-- when case-router is down. The event path (with its durable offset) and the
-- sweep still open every case; the unique cases.rating_id makes the three
-- paths agree on exactly one case.
--
-- One notification per statement (ingest stores a whole batch in one
-- statement), only when the statement stored a bad rating; default ratings
-- (基本满意) are never bad, so default-rater never notifies. The payload is
-- the comma-separated ids while they fit (NOTIFY payloads must stay under
-- 8000 bytes); a larger batch sends an empty payload and case-router leaves
-- it to the event path.
CREATE FUNCTION hcp_ratings_notify_bad() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids text;
    bad integer;
BEGIN
    SELECT count(*), string_agg(rating_id::text, ',')
      INTO bad, ids
      FROM stored WHERE is_bad;
    IF bad > 0 THEN
        PERFORM pg_notify('hcp_bad_ratings', CASE WHEN bad <= 200 THEN ids ELSE '' END);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION hcp_ratings_notify_bad() IS
    'Trigger function: NOTIFY hcp_bad_ratings with the ids of the bad ratings a statement stored (empty payload when more than 200), so case-router opens their cases without waiting for the relay.';

CREATE TRIGGER ratings_notify_bad AFTER INSERT ON ratings
    REFERENCING NEW TABLE AS stored
    FOR EACH STATEMENT EXECUTE FUNCTION hcp_ratings_notify_bad();
COMMENT ON TRIGGER ratings_notify_bad ON ratings IS
    'Wakes case-router (LISTEN hcp_bad_ratings) when bad ratings are committed (Art. 21).';
