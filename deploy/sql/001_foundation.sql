-- 001_foundation: catalog, deliveries, ratings, personal data, rejections, events.
--
-- Applied by `hcpctl migrate` inside one transaction. Every table and column
-- carries a COMMENT: auditors read the schema with \d+ in psql.
--
-- Roles (created here if missing, NOLOGIN: deployments grant them to login roles):
--   hcp_service    the services: write facts, read everything but personal data
--   hcp_pii        may read rater personal data (hall staff doing follow-up visits)
--   hcp_auditor    read-only, no personal data
--   hcp_public     published views only (publisher)

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hcp_service') THEN
        CREATE ROLE hcp_service NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hcp_pii') THEN
        CREATE ROLE hcp_pii NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hcp_auditor') THEN
        CREATE ROLE hcp_auditor NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hcp_public') THEN
        CREATE ROLE hcp_public NOLOGIN;
    END IF;
END
$$;

-- A time-ordered UUID (version 7) made in SQL, for rows the services create
-- themselves (default ratings). Adapters choose their own ids.
CREATE FUNCTION hcp_uuidv7(at timestamptz DEFAULT clock_timestamp()) RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send((extract(epoch FROM at) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1), 'hex')::uuid
$$;
COMMENT ON FUNCTION hcp_uuidv7(timestamptz) IS
    'A new UUIDv7 (RFC 9562) for the given time: time-ordered keys keep indexes compact.';

-- Refuses UPDATE, DELETE and TRUNCATE: for append-only tables. Corrections
-- are new facts, never changes in place.
CREATE FUNCTION hcp_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Record a correction as a new fact instead.';
END
$$;
COMMENT ON FUNCTION hcp_refuse_change() IS
    'Trigger function that makes a table append-only (no UPDATE, DELETE or TRUNCATE).';

-- ---------------------------------------------------------------------------
-- Catalog (loaded from YAML by `hcpctl catalog load`)
-- ---------------------------------------------------------------------------
CREATE TABLE units (
    unit_code   text PRIMARY KEY CHECK (unit_code ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name        text NOT NULL,
    contact     text,
    phone       text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE units IS 'Responsible units of the ministry (departments, bureaus, units) that handle service items and answer bad reviews (Art. 20-23).';
COMMENT ON COLUMN units.unit_code IS 'Stable code of the unit, e.g. its 18-character unified social credit code or an internal code.';
COMMENT ON COLUMN units.name IS 'Name of the unit as printed on the handling form.';
COMMENT ON COLUMN units.contact IS 'Contact person for bad-review handling.';
COMMENT ON COLUMN units.phone IS 'Contact telephone for bad-review handling.';
COMMENT ON COLUMN units.updated_at IS 'When this row was last loaded from the catalog file.';

CREATE TABLE service_items (
    item_code    text PRIMARY KEY CHECK (item_code ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name         text NOT NULL,
    unit_code    text NOT NULL REFERENCES units,
    disclosable  boolean NOT NULL DEFAULT true,
    active       boolean NOT NULL DEFAULT true,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE service_items IS 'Ministry-level service items handled on application (Art. 6): what is rated.';
COMMENT ON COLUMN service_items.item_code IS 'Item code (事项编码) used by adapters and the national platform.';
COMMENT ON COLUMN service_items.name IS 'Item name.';
COMMENT ON COLUMN service_items.unit_code IS 'Unit that handles the item and by default answers its bad reviews (谁办理、谁负责, Art. 20).';
COMMENT ON COLUMN service_items.disclosable IS 'False when results for this item may not be published (Art. 19 exception).';
COMMENT ON COLUMN service_items.active IS 'False when the item was withdrawn: new submissions for it are rejected, history is kept.';
COMMENT ON COLUMN service_items.updated_at IS 'When this row was last loaded from the catalog file.';

-- ---------------------------------------------------------------------------
-- Facts from the channels
-- ---------------------------------------------------------------------------
CREATE TABLE deliveries (
    delivery_id    text PRIMARY KEY CHECK (delivery_id ~ '^[\x21-\x7e]{1,64}$'),
    item_code      text NOT NULL REFERENCES service_items,
    stage          smallint NOT NULL CHECK (stage BETWEEN 1 AND 3),
    channel        smallint NOT NULL CHECK (channel BETWEEN 1 AND 7),
    rater_type     smallint NOT NULL CHECK (rater_type BETWEEN 1 AND 6),
    rater_key      text,
    division_code  text,
    delivered_at   timestamptz NOT NULL,
    fingerprint    bytea NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE deliveries IS 'Service deliveries (办件): an application filed, a consultation, a completion (Art. 13). Each may open a 7-day rating window (Art. 11). Append-only.';
COMMENT ON COLUMN deliveries.delivery_id IS 'Adapter-chosen id (e.g. the 办件编号), unique; resending it is answered duplicate.';
COMMENT ON COLUMN deliveries.item_code IS 'Service item delivered.';
COMMENT ON COLUMN deliveries.stage IS '1 application (申报), 2 consultation (咨询), 3 completion (办结).';
COMMENT ON COLUMN deliveries.channel IS '1 hall device, 2 window QR, 3 online platform, 4 mobile app, 5 hotline, 6 suggestion box, 7 solicitation.';
COMMENT ON COLUMN deliveries.rater_type IS 'Service object kind, GB/T 39046 A.4: 1 natural person, 2 enterprise, 3 public institution, 4 social organisation, 5 administrative organ, 6 other.';
COMMENT ON COLUMN deliveries.rater_key IS 'Adapter''s pseudonymous key of the service object (no personal data).';
COMMENT ON COLUMN deliveries.division_code IS 'Administrative division code (行政区划) of the service object.';
COMMENT ON COLUMN deliveries.delivered_at IS 'When the service was delivered; the rating window starts the day after (Art. 11).';
COMMENT ON COLUMN deliveries.fingerprint IS 'SHA-256 of the canonical submission: a resend with other content under the same id is a conflict.';
COMMENT ON COLUMN deliveries.received_at IS 'When ingest committed the delivery.';
CREATE TRIGGER deliveries_append_only BEFORE UPDATE OR DELETE ON deliveries
    FOR EACH ROW EXECUTE FUNCTION hcp_refuse_change();
CREATE TRIGGER deliveries_no_truncate BEFORE TRUNCATE ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION hcp_refuse_change();

CREATE TABLE ratings (
    rating_id        uuid PRIMARY KEY,
    delivery_id      text REFERENCES deliveries,
    item_code        text NOT NULL REFERENCES service_items,
    channel          smallint NOT NULL CHECK (channel BETWEEN 1 AND 7),
    stage            smallint NOT NULL CHECK (stage BETWEEN 1 AND 3),
    rating_count     smallint NOT NULL CHECK (rating_count IN (1, 2)),
    rater_type       smallint NOT NULL CHECK (rater_type BETWEEN 1 AND 6),
    rater_key        text,
    division_code    text,
    rated_at         timestamptz NOT NULL,
    standardization  smallint CHECK (standardization BETWEEN 1 AND 5),
    convenience      smallint CHECK (convenience BETWEEN 1 AND 5),
    accuracy         smallint CHECK (accuracy BETWEEN 1 AND 5),
    comment          text NOT NULL DEFAULT '',
    origin           text NOT NULL DEFAULT 'rater' CHECK (origin IN ('rater', 'default')),
    is_bad           boolean GENERATED ALWAYS AS (
                         coalesce(standardization >= 4, false)
                         OR coalesce(convenience >= 4, false)
                         OR coalesce(accuracy >= 4, false)) STORED,
    fingerprint      bytea NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(standardization, convenience, accuracy) > 0),
    CHECK (origin = 'rater' OR delivery_id IS NOT NULL)
);
COMMENT ON TABLE ratings IS 'Every rating, from every channel, and the default ratings of Art. 11. Append-only: never updated or deleted; an upheld appeal is recorded elsewhere (the rating is then not adopted).';
COMMENT ON COLUMN ratings.rating_id IS 'Adapter-chosen UUID (UUIDv7 recommended); resending it is answered duplicate, other content under it is rejected as a conflict.';
COMMENT ON COLUMN ratings.delivery_id IS 'The delivery rated, when the channel knows it; NULL for e.g. a suggestion-box letter.';
COMMENT ON COLUMN ratings.item_code IS 'Service item rated.';
COMMENT ON COLUMN ratings.channel IS '1 hall device, 2 window QR, 3 online platform, 4 mobile app, 5 hotline, 6 suggestion box, 7 solicitation (Art. 12-16).';
COMMENT ON COLUMN ratings.stage IS '1 after application, 2 after consultation, 3 after completion (Art. 13).';
COMMENT ON COLUMN ratings.rating_count IS '1 first rating, 2 second (follow-up) rating (GB/T 39046 评价次数).';
COMMENT ON COLUMN ratings.rater_type IS 'Service object kind, GB/T 39046 A.4 (see deliveries.rater_type).';
COMMENT ON COLUMN ratings.rater_key IS 'Adapter''s pseudonymous key of the rater (no personal data; see rater_pii).';
COMMENT ON COLUMN ratings.division_code IS 'Administrative division code where the rating was made.';
COMMENT ON COLUMN ratings.rated_at IS 'When the rater rated (for a default rating: the end of the 7-day window).';
COMMENT ON COLUMN ratings.standardization IS 'Art. 7 service standardization: 1 非常满意 very satisfied .. 5 非常不满意 very dissatisfied; NULL = not rated on this channel.';
COMMENT ON COLUMN ratings.convenience IS 'Art. 8 service convenience, graded as standardization; NULL = not rated.';
COMMENT ON COLUMN ratings.accuracy IS 'Art. 9 service accuracy, graded as standardization; NULL = not rated.';
COMMENT ON COLUMN ratings.comment IS 'Free text from the rater (文字评价), UTF-8, length-limited by ingest.';
COMMENT ON COLUMN ratings.origin IS 'rater: given by the service object; default: 基本满意 applied after 7 natural days without a rating (Art. 11).';
COMMENT ON COLUMN ratings.is_bad IS 'True when any dimension is 4 不满意 or 5 非常不满意 (Art. 10): opens a bad-review case.';
COMMENT ON COLUMN ratings.fingerprint IS 'SHA-256 of the canonical submission, to tell a resend (duplicate) from a conflict.';
COMMENT ON COLUMN ratings.received_at IS 'When ingest (or default-rater) committed the rating.';
CREATE INDEX ratings_delivery ON ratings (delivery_id) WHERE delivery_id IS NOT NULL;
CREATE INDEX ratings_bad ON ratings (rated_at) WHERE is_bad;
CREATE INDEX ratings_item_time ON ratings (item_code, rated_at);
CREATE UNIQUE INDEX ratings_one_default_per_delivery ON ratings (delivery_id) WHERE origin = 'default';
CREATE TRIGGER ratings_append_only BEFORE UPDATE OR DELETE ON ratings
    FOR EACH ROW EXECUTE FUNCTION hcp_refuse_change();
CREATE TRIGGER ratings_no_truncate BEFORE TRUNCATE ON ratings
    FOR EACH STATEMENT EXECUTE FUNCTION hcp_refuse_change();

CREATE TABLE rater_pii (
    fact_kind   text NOT NULL CHECK (fact_kind IN ('delivery', 'rating')),
    fact_id     text NOT NULL,
    name        text,
    phone       text,
    id_number   text,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (fact_kind, fact_id)
);
COMMENT ON TABLE rater_pii IS 'Personal data of raters, kept apart so that only role hcp_pii (follow-up visits) can read it; never exported or published.';
COMMENT ON COLUMN rater_pii.fact_kind IS 'delivery or rating: which table fact_id refers to.';
COMMENT ON COLUMN rater_pii.fact_id IS 'deliveries.delivery_id or ratings.rating_id (as text).';
COMMENT ON COLUMN rater_pii.name IS 'Name of the service object (person or organisation).';
COMMENT ON COLUMN rater_pii.phone IS 'Telephone, for the follow-up visit of Art. 21.';
COMMENT ON COLUMN rater_pii.id_number IS 'ID card number or unified social credit code.';
COMMENT ON COLUMN rater_pii.stored_at IS 'When ingest stored it.';

CREATE TABLE rejected_submissions (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    fact_id      text,
    field        text NOT NULL,
    code         text NOT NULL,
    reason       text NOT NULL,
    peer         text,
    size_bytes   integer NOT NULL,
    excerpt      bytea
);
COMMENT ON TABLE rejected_submissions IS 'Every submission ingest refused, with the field and the reason that were sent back to the adapter.';
COMMENT ON COLUMN rejected_submissions.id IS 'Row number, in the order of refusal.';
COMMENT ON COLUMN rejected_submissions.received_at IS 'When it was refused.';
COMMENT ON COLUMN rejected_submissions.fact_id IS 'rating_id or delivery_id if the message decoded far enough to have one.';
COMMENT ON COLUMN rejected_submissions.field IS 'The offending field, e.g. rating.comment, or message for an undecodable message.';
COMMENT ON COLUMN rejected_submissions.code IS 'Machine code of the reason, e.g. invalid_utf8, unknown_item, conflict.';
COMMENT ON COLUMN rejected_submissions.reason IS 'The one-line reason sent to the adapter.';
COMMENT ON COLUMN rejected_submissions.peer IS 'ZeroMQ routing id of the adapter connection (hex).';
COMMENT ON COLUMN rejected_submissions.size_bytes IS 'Size of the message as received.';
COMMENT ON COLUMN rejected_submissions.excerpt IS 'First bytes of the message (at most 1 KiB), for diagnosis; personal data is possible, so hcp_auditor cannot read this column.';

-- ---------------------------------------------------------------------------
-- Events: the transactional outbox and the event log
-- ---------------------------------------------------------------------------
CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    seq         bigint UNIQUE,
    type        text NOT NULL,
    key         text NOT NULL,
    payload     bytea NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    stamped_at  timestamptz
);
COMMENT ON TABLE events IS 'Transactional outbox: every state change writes its event here in the same transaction. The relay stamps seq in commit order; subscribers catch up with WHERE seq > last.';
COMMENT ON COLUMN events.id IS 'Insertion number. NOT the public order: ids are taken at insert, rows appear at commit.';
COMMENT ON COLUMN events.seq IS 'Gapless public sequence number, stamped by the single active relay after commit; NULL until then.';
COMMENT ON COLUMN events.type IS 'Event type, e.g. rating.stored, delivery.stored, case.opened.';
COMMENT ON COLUMN events.key IS 'The aggregate the event is about (rating id, delivery id, case id).';
COMMENT ON COLUMN events.payload IS 'Type-specific protobuf (hcp.v1), never with personal data.';
COMMENT ON COLUMN events.created_at IS 'When the writing transaction inserted the event.';
COMMENT ON COLUMN events.stamped_at IS 'When the relay stamped seq.';
CREATE INDEX events_unstamped ON events (id) WHERE seq IS NULL;

CREATE TABLE relay_state (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_seq   bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE relay_state IS 'One row: the last sequence number stamped by the relay. Locked FOR UPDATE while stamping, so stamping is serialised even with several relays.';
COMMENT ON COLUMN relay_state.singleton IS 'Always true: there is one row.';
COMMENT ON COLUMN relay_state.last_seq IS 'Highest events.seq stamped so far.';
COMMENT ON COLUMN relay_state.updated_at IS 'When it was last advanced.';
INSERT INTO relay_state DEFAULT VALUES;

CREATE TABLE consumer_offsets (
    consumer    text PRIMARY KEY,
    last_seq    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE consumer_offsets IS 'Durable position of each event consumer (service), advanced in the same transaction as the work the events caused.';
COMMENT ON COLUMN consumer_offsets.consumer IS 'Consumer name, e.g. case-router.';
COMMENT ON COLUMN consumer_offsets.last_seq IS 'Highest events.seq fully handled.';
COMMENT ON COLUMN consumer_offsets.updated_at IS 'When it last advanced.';

-- ---------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT SELECT ON units, service_items, deliveries, ratings, events, relay_state,
    consumer_offsets TO hcp_service, hcp_auditor;
GRANT SELECT (id, received_at, fact_id, field, code, reason, peer, size_bytes)
    ON rejected_submissions TO hcp_auditor;
GRANT INSERT, UPDATE ON units, service_items TO hcp_service;
GRANT INSERT ON deliveries, ratings, rater_pii, rejected_submissions, events TO hcp_service;
GRANT SELECT ON rejected_submissions TO hcp_service;
GRANT UPDATE (seq, stamped_at) ON events TO hcp_service;
GRANT UPDATE ON relay_state TO hcp_service;
GRANT INSERT, UPDATE ON consumer_offsets TO hcp_service;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO hcp_service;
GRANT SELECT ON rater_pii TO hcp_pii;
REVOKE UPDATE, DELETE, TRUNCATE ON ratings, deliveries FROM hcp_service;
