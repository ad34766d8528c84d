-- 003_cases: bad-review cases (Art. 20-23), their state machine, their
-- append-only history, the handling-form numbers, staff command ids, and the
-- view effective_ratings (what statistics count).
--
-- The rules of the state machine live in table case_rules, and PostgreSQL
-- itself enforces them: a trigger on cases refuses any UPDATE that is not a
-- legal (from_state, action, to_state) move, and writes the history row of
-- every transition (so a transition without its history cannot exist). The
-- service (hcp-case-router) checks first to give people a clear answer; the
-- database is the last word. docs/state-machine.md draws the machine.
--
-- Deadlines of cases are in table deadlines (005_deadlines.sql), which
-- references cases(case_id).

-- ---------------------------------------------------------------------------
-- States and rules
-- ---------------------------------------------------------------------------
CREATE TABLE case_states (
    state        text PRIMARY KEY,
    position     smallint NOT NULL UNIQUE,
    terminal     boolean NOT NULL DEFAULT false,
    waiting_for  text NOT NULL CHECK (waiting_for IN ('hall', 'general_office', 'unit', 'nobody')),
    description  text NOT NULL
);
COMMENT ON TABLE case_states IS 'The states of a bad-review case (Art. 20-23); see docs/state-machine.md.';
COMMENT ON COLUMN case_states.state IS 'State name as stored in cases.state.';
COMMENT ON COLUMN case_states.position IS 'Display order (roughly the order of the workflow).';
COMMENT ON COLUMN case_states.terminal IS 'True when no action leaves the state.';
COMMENT ON COLUMN case_states.waiting_for IS 'Who must act next: hall (政务大厅), general_office (办公厅), unit (the responsible unit), nobody.';
COMMENT ON COLUMN case_states.description IS 'What the state means, for people.';

INSERT INTO case_states (state, position, terminal, waiting_for, description) VALUES
    ('awaiting_visit',   1, false, 'hall',           'Opened on a bad rating; the hall must make the follow-up visit (回访, Art. 21).'),
    ('visited',          2, false, 'hall',           'Visit recorded (cause, who was reached, how); the hall must file the handling form (Art. 21).'),
    ('form_filed',       3, false, 'general_office', 'Handling form (差评处理单) filed to the General Office, which must designate the responsible unit (Art. 21).'),
    ('assigned',         4, false, 'unit',           'Form sent to the responsible unit, which must answer or appeal within 10 working days (Art. 23).'),
    ('appealed',         5, false, 'general_office', 'The unit appealed the review as mistaken or malicious; the General Office must decide (Art. 23).'),
    ('appeal_rejected',  6, false, 'unit',           'The appeal was rejected; the unit must answer (rectify, ledger or explain).'),
    ('rectified_now',    7, false, 'general_office', 'Answered: rectified at once (立行立改, Art. 22); awaiting closing by the General Office.'),
    ('in_ledger',        8, false, 'unit',           'Answered: entered in the ledger (台账) with a rectification deadline (Art. 22).'),
    ('ledger_extended',  9, false, 'unit',           'Ledger item whose deadline was extended once (with a reason); no further extension.'),
    ('ledger_rectified',10, false, 'general_office', 'Ledger item rectified; awaiting closing by the General Office.'),
    ('explained',       11, false, 'general_office', 'Answered: no legal basis for the request, explained to the rater (Art. 22); awaiting closing.'),
    ('not_adopted',     12, false, 'general_office', 'Appeal upheld: the rating is not adopted (不予采纳, Art. 23) and leaves every statistic; awaiting closing.'),
    ('closed',          13, true,  'nobody',         'Closed by the General Office.');

CREATE TABLE case_rules (
    from_state    text REFERENCES case_states,
    action        text NOT NULL CHECK (action ~ '^[a-z_]{1,32}$'),
    to_state      text NOT NULL REFERENCES case_states,
    performed_by  text NOT NULL CHECK (performed_by IN ('case_router', 'hall', 'general_office', 'unit')),
    article       text NOT NULL,
    description   text NOT NULL,
    UNIQUE NULLS NOT DISTINCT (from_state, action)
);
COMMENT ON TABLE case_rules IS 'The legal transitions of a case: (from_state, action) -> to_state. A trigger on cases refuses every other change. from_state NULL is the opening of a case.';
COMMENT ON COLUMN case_rules.from_state IS 'State the case is in (NULL: the case does not exist yet).';
COMMENT ON COLUMN case_rules.action IS 'Action name, as in cases.last_action, case_history.action and the case.<action> event.';
COMMENT ON COLUMN case_rules.to_state IS 'State the action leads to.';
COMMENT ON COLUMN case_rules.performed_by IS 'Who performs it by the measures (documentation: the router records the actor''s name, it does not authenticate roles).';
COMMENT ON COLUMN case_rules.article IS 'Article of the measures the step implements.';
COMMENT ON COLUMN case_rules.description IS 'What the step means, for people.';

INSERT INTO case_rules (from_state, action, to_state, performed_by, article, description) VALUES
    (NULL,              'open',                  'awaiting_visit',   'case_router',    'Art. 21',         'A bad rating opens exactly one case; the form is due 5 working days after the rating day.'),
    ('awaiting_visit',  'visit',                 'visited',          'hall',           'Art. 21',         'Record the follow-up visit: cause, who was reached, how.'),
    ('visited',         'visit',                 'visited',          'hall',           'Art. 21',         'Record a further visit (e.g. a second call) before the form is filed.'),
    ('visited',         'file_form',             'form_filed',       'hall',           'Art. 21, Annex',  'File the handling form to the General Office; it gets its yearly number.'),
    ('form_filed',      'assign',                'assigned',         'general_office', 'Art. 20, 21',     'Designate the responsible unit (default: the unit that handles the item) and send it the form.'),
    ('assigned',        'transfer',              'assigned',         'general_office', 'Art. 20',         'Send the form to another unit, with a reason; its 10 working days start again.'),
    ('assigned',        'respond_rectified_now', 'rectified_now',    'unit',           'Art. 22, 23',     'The unit reports that it rectified at once (立行立改).'),
    ('assigned',        'respond_ledger',        'in_ledger',        'unit',           'Art. 22, 23',     'The unit enters the problem in its ledger (台账) with a rectification deadline.'),
    ('assigned',        'respond_explained',     'explained',        'unit',           'Art. 22, 23',     'The unit explained to the rater that the request has no legal basis.'),
    ('assigned',        'appeal',                'appealed',         'unit',           'Art. 23',         'The unit appeals the review as mistaken or malicious.'),
    ('appealed',        'uphold_appeal',         'not_adopted',      'general_office', 'Art. 23',         'Appeal verified: the rating is not adopted (stored, excluded from statistics).'),
    ('appealed',        'reject_appeal',         'appeal_rejected',  'general_office', 'Art. 23',         'Appeal rejected: the unit must answer within 10 working days of the decision.'),
    ('appeal_rejected', 'respond_rectified_now', 'rectified_now',    'unit',           'Art. 22, 23',     'After a rejected appeal: rectified at once.'),
    ('appeal_rejected', 'respond_ledger',        'in_ledger',        'unit',           'Art. 22, 23',     'After a rejected appeal: entered in the ledger with a deadline.'),
    ('appeal_rejected', 'respond_explained',     'explained',        'unit',           'Art. 22, 23',     'After a rejected appeal: explained to the rater.'),
    ('in_ledger',       'extend',                'ledger_extended',  'general_office', 'Art. 22',         'Extend the ledger deadline once, with a reason.'),
    ('in_ledger',       'rectified',             'ledger_rectified', 'unit',           'Art. 22',         'The ledger item was rectified.'),
    ('ledger_extended', 'rectified',             'ledger_rectified', 'unit',           'Art. 22',         'The ledger item was rectified (after its extension).'),
    ('rectified_now',   'close',                 'closed',           'general_office', 'Art. 20',         'Close after the rectification was reported.'),
    ('explained',       'close',                 'closed',           'general_office', 'Art. 20',         'Close after the explanation was reported.'),
    ('ledger_rectified','close',                 'closed',           'general_office', 'Art. 20',         'Close after the ledger item was rectified.'),
    ('not_adopted',     'close',                 'closed',           'general_office', 'Art. 23',         'Close a case whose rating was not adopted.');

-- ---------------------------------------------------------------------------
-- Cases
-- ---------------------------------------------------------------------------
CREATE TABLE cases (
    case_id          bigserial PRIMARY KEY,
    rating_id        uuid NOT NULL UNIQUE REFERENCES ratings,
    state            text NOT NULL REFERENCES case_states,
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    item_code        text NOT NULL REFERENCES service_items,
    unit_code        text REFERENCES units,
    rating_day       date NOT NULL,
    opened_at        timestamptz NOT NULL,
    visited_at       timestamptz,
    visit_cause      text,
    visit_reached    text,
    visit_method     text,
    form_number      text UNIQUE CHECK (form_number ~ '^[0-9]{4}-[0-9]{6}$'),
    form_filed_at    timestamptz,
    assigned_at      timestamptz,
    transfers        smallint NOT NULL DEFAULT 0,
    response         text CHECK (response IN ('rectified_now', 'ledger', 'explained')),
    response_text    text,
    responded_at     timestamptz,
    ledger_due_on    date,
    ledger_extended  boolean NOT NULL DEFAULT false,
    rectified_at     timestamptz,
    rectified_text   text,
    appealed_at      timestamptz,
    appeal_kind      text CHECK (appeal_kind IN ('mistaken', 'malicious')),
    appeal_text      text,
    appeal_decision  text CHECK (appeal_decision IN ('upheld', 'rejected')),
    appeal_decided_at timestamptz,
    rating_adopted   boolean NOT NULL DEFAULT true,
    closed_at        timestamptz,
    close_note       text,
    last_action      text NOT NULL,
    last_actor       text NOT NULL CHECK (length(last_actor) BETWEEN 1 AND 128),
    last_at          timestamptz NOT NULL,
    last_reason      text,
    last_details     jsonb NOT NULL DEFAULT '{}',
    CHECK (state <> 'closed' OR closed_at IS NOT NULL),
    CHECK (rating_adopted OR appeal_decision = 'upheld')
);
COMMENT ON TABLE cases IS 'One case per bad rating (Art. 20-23): follow-up visit, handling form, responsible unit, answer or appeal, ledger, closing. Rows change only by legal transitions (case_rules), each recorded in case_history by a trigger; never deleted.';
COMMENT ON COLUMN cases.case_id IS 'Case number.';
COMMENT ON COLUMN cases.rating_id IS 'The bad rating that opened the case (one case per rating).';
COMMENT ON COLUMN cases.state IS 'Current state (case_states).';
COMMENT ON COLUMN cases.version IS 'Incremented by exactly 1 on every transition: concurrent commands serialise (optimistic check), and case_history has one row per version.';
COMMENT ON COLUMN cases.item_code IS 'Service item rated (copied from the rating).';
COMMENT ON COLUMN cases.unit_code IS 'Responsible unit: at opening the unit that handles the item (谁办理、谁负责, Art. 20), as proposed; then the unit the General Office designated or transferred to.';
COMMENT ON COLUMN cases.rating_day IS 'Civil date (Asia/Shanghai) of the rating: the form deadline counts 5 working days from it (Art. 21).';
COMMENT ON COLUMN cases.opened_at IS 'When the case was opened (business clock).';
COMMENT ON COLUMN cases.visited_at IS 'When the (last) follow-up visit was recorded.';
COMMENT ON COLUMN cases.visit_cause IS 'Cause of the bad review established by the visit (Art. 21).';
COMMENT ON COLUMN cases.visit_reached IS 'Who was reached (the rater, a representative, nobody).';
COMMENT ON COLUMN cases.visit_method IS 'How: phone, in person, letter, online message.';
COMMENT ON COLUMN cases.form_number IS 'Number of the handling form (差评处理单), YYYY-NNNNNN, unique and gapless per year (form_counters).';
COMMENT ON COLUMN cases.form_filed_at IS 'When the hall filed the form to the General Office.';
COMMENT ON COLUMN cases.assigned_at IS 'When the responsible unit (last) received the form: its 10 working days count from this day (Art. 23).';
COMMENT ON COLUMN cases.transfers IS 'How many times the case was transferred to another unit.';
COMMENT ON COLUMN cases.response IS 'The unit''s answer (Art. 22): rectified_now (立行立改), ledger (台账), explained (解释说明).';
COMMENT ON COLUMN cases.response_text IS 'The unit''s report: what was rectified, the ledger entry, or the explanation.';
COMMENT ON COLUMN cases.responded_at IS 'When the unit answered.';
COMMENT ON COLUMN cases.ledger_due_on IS 'Rectification deadline of a ledger item (set by the unit, moved by the one extension).';
COMMENT ON COLUMN cases.ledger_extended IS 'True once the ledger deadline was extended (only one extension).';
COMMENT ON COLUMN cases.rectified_at IS 'When the ledger item was reported rectified.';
COMMENT ON COLUMN cases.rectified_text IS 'The unit''s report of the ledger rectification (published with the results, Art. 19).';
COMMENT ON COLUMN cases.appealed_at IS 'When the unit appealed the review as mistaken or malicious (Art. 23).';
COMMENT ON COLUMN cases.appeal_kind IS 'What the unit holds the review to be (Art. 23): mistaken (误评) or malicious (恶意差评).';
COMMENT ON COLUMN cases.appeal_text IS 'The unit''s grounds for the appeal.';
COMMENT ON COLUMN cases.appeal_decision IS 'upheld (the rating is not adopted) or rejected (the unit must answer).';
COMMENT ON COLUMN cases.appeal_decided_at IS 'When the General Office decided the appeal.';
COMMENT ON COLUMN cases.rating_adopted IS 'False once an appeal was upheld: the rating is not adopted (不予采纳) and drops out of effective_ratings. Never set back.';
COMMENT ON COLUMN cases.closed_at IS 'When the General Office closed the case.';
COMMENT ON COLUMN cases.close_note IS 'The General Office''s note on closing (e.g. how the result was verified).';
COMMENT ON COLUMN cases.last_action IS 'The action of the last transition (case_rules.action); written by every UPDATE, checked by the trigger.';
COMMENT ON COLUMN cases.last_actor IS 'Who performed the last transition (staff member, unit officer, or case-router).';
COMMENT ON COLUMN cases.last_at IS 'When the last transition happened (business clock).';
COMMENT ON COLUMN cases.last_reason IS 'Reason given with the last transition (required for transfer and extend).';
COMMENT ON COLUMN cases.last_details IS 'Fields of the last command (JSON), copied into case_history.';
CREATE INDEX cases_open_state ON cases (state) WHERE state <> 'closed';
CREATE INDEX cases_unit ON cases (unit_code, state);

-- One counter row per year: the form number is taken by an UPDATE in the
-- same transaction that files the form, so a rollback gives the number back
-- (gapless), and concurrent filings queue on the row (unique).
CREATE TABLE form_counters (
    year         integer PRIMARY KEY CHECK (year BETWEEN 2000 AND 9999),
    last_number  integer NOT NULL CHECK (last_number BETWEEN 0 AND 999999)
);
COMMENT ON TABLE form_counters IS 'Last handling-form number given per year; advanced in the filing transaction, so numbers are unique and gapless per year.';
COMMENT ON COLUMN form_counters.year IS 'Calendar year (Asia/Shanghai) of the filing.';
COMMENT ON COLUMN form_counters.last_number IS 'Highest number used in that year (0: none yet).';

CREATE TABLE case_history (
    case_id      bigint NOT NULL REFERENCES cases,
    version      integer NOT NULL,
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    from_state   text REFERENCES case_states,
    to_state     text NOT NULL REFERENCES case_states,
    unit_code    text,
    reason       text,
    details      jsonb NOT NULL DEFAULT '{}',
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, version)
);
COMMENT ON TABLE case_history IS 'Every transition of every case, written by a trigger on cases (never by hand). Append-only: UPDATE, DELETE and TRUNCATE are refused.';
COMMENT ON COLUMN case_history.case_id IS 'The case.';
COMMENT ON COLUMN case_history.version IS 'cases.version after the transition (1 = opening).';
COMMENT ON COLUMN case_history.at IS 'When it happened (business clock).';
COMMENT ON COLUMN case_history.actor IS 'Who performed it.';
COMMENT ON COLUMN case_history.action IS 'The action (case_rules.action).';
COMMENT ON COLUMN case_history.from_state IS 'State before (NULL for the opening).';
COMMENT ON COLUMN case_history.to_state IS 'State after.';
COMMENT ON COLUMN case_history.unit_code IS 'Responsible unit after the transition.';
COMMENT ON COLUMN case_history.reason IS 'Reason given (transfer, extension, appeal decision...).';
COMMENT ON COLUMN case_history.details IS 'Fields of the command as JSON (visit cause, ledger due date, form number...).';
COMMENT ON COLUMN case_history.recorded_at IS 'Database time the row was written (bookkeeping, not business time).';
CREATE INDEX case_history_at ON case_history (at);
CREATE TRIGGER case_history_append_only BEFORE UPDATE OR DELETE ON case_history
    FOR EACH ROW EXECUTE FUNCTION hcp_refuse_change();
CREATE TRIGGER case_history_no_truncate BEFORE TRUNCATE ON case_history
    FOR EACH STATEMENT EXECUTE FUNCTION hcp_refuse_change();

-- Staff commands already applied (or refused), by the client's request id:
-- a command retried after a lost reply gets the stored answer, and is never
-- applied twice.
CREATE TABLE case_requests (
    request_id   text PRIMARY KEY CHECK (length(request_id) BETWEEN 1 AND 128),
    case_id      bigint,
    action       text NOT NULL,
    actor        text NOT NULL,
    ok           boolean NOT NULL,
    code         text NOT NULL DEFAULT '',
    message      text NOT NULL DEFAULT '',
    state        text,
    version      integer,
    at           timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE case_requests IS 'Every staff command case-router answered, by request id: a retried command gets the same answer and is not applied twice.';
COMMENT ON COLUMN case_requests.request_id IS 'Client-chosen id of the command (hcpctl uses a UUIDv7).';
COMMENT ON COLUMN case_requests.case_id IS 'The case the command named.';
COMMENT ON COLUMN case_requests.action IS 'The action requested.';
COMMENT ON COLUMN case_requests.actor IS 'Who asked.';
COMMENT ON COLUMN case_requests.ok IS 'True if applied, false if refused.';
COMMENT ON COLUMN case_requests.code IS 'Machine code of a refusal (illegal_transition, not_found, invalid_field...).';
COMMENT ON COLUMN case_requests.message IS 'The answer sent, for people.';
COMMENT ON COLUMN case_requests.state IS 'State of the case after the command.';
COMMENT ON COLUMN case_requests.version IS 'Version of the case after the command.';
COMMENT ON COLUMN case_requests.at IS 'Business time of the command.';
COMMENT ON COLUMN case_requests.received_at IS 'Database time the answer was stored.';

-- ---------------------------------------------------------------------------
-- The guard: only legal transitions, each with its history row
-- ---------------------------------------------------------------------------
CREATE FUNCTION hcp_case_allowed_actions(from_state text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(string_agg(action, ', ' ORDER BY action), 'none (terminal state)')
      FROM case_rules WHERE case_rules.from_state IS NOT DISTINCT FROM $1
$$;
COMMENT ON FUNCTION hcp_case_allowed_actions(text) IS
    'The actions allowed in a state, comma-separated, for refusal messages.';

-- SQLSTATEs: HC001 illegal transition, HC002 version not old + 1,
-- HC003 a column that a transition may not change.
CREATE FUNCTION hcp_case_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT EXISTS (SELECT 1 FROM case_rules r WHERE r.from_state IS NULL
                          AND r.action = NEW.last_action AND r.to_state = NEW.state) THEN
            RAISE EXCEPTION 'a case is opened by action open in state awaiting_visit, not by % into %',
                NEW.last_action, NEW.state USING ERRCODE = 'HC001';
        END IF;
        IF NEW.version <> 1 OR NOT NEW.rating_adopted OR NEW.form_number IS NOT NULL THEN
            RAISE EXCEPTION 'a new case starts at version 1, adopted, without a form number'
                USING ERRCODE = 'HC003';
        END IF;
        RETURN NEW;
    END IF;
    -- UPDATE: every update is one transition.
    IF NOT EXISTS (SELECT 1 FROM case_rules r WHERE r.from_state = OLD.state
                      AND r.action = NEW.last_action AND r.to_state = NEW.state) THEN
        RAISE EXCEPTION 'case %: action % is not allowed in state % (to %)',
            OLD.case_id, NEW.last_action, OLD.state, NEW.state
            USING ERRCODE = 'HC001',
                  DETAIL = format('Allowed in state %s: %s.', OLD.state,
                                  hcp_case_allowed_actions(OLD.state)),
                  HINT = 'Every change of a case is a transition of table case_rules.';
    END IF;
    IF NEW.version <> OLD.version + 1 THEN
        RAISE EXCEPTION 'case %: version must go from % to %, not %',
            OLD.case_id, OLD.version, OLD.version + 1, NEW.version
            USING ERRCODE = 'HC002',
                  HINT = 'Someone else changed the case: read it again.';
    END IF;
    IF NEW.case_id <> OLD.case_id OR NEW.rating_id <> OLD.rating_id
       OR NEW.item_code <> OLD.item_code OR NEW.rating_day <> OLD.rating_day
       OR NEW.opened_at <> OLD.opened_at
       OR (OLD.form_number IS NOT NULL AND NEW.form_number IS DISTINCT FROM OLD.form_number)
       OR (NEW.form_number IS DISTINCT FROM OLD.form_number AND NEW.last_action <> 'file_form')
       OR (NEW.rating_adopted <> OLD.rating_adopted
           AND (OLD.rating_adopted = false OR NEW.last_action <> 'uphold_appeal'))
       OR (NEW.ledger_extended <> OLD.ledger_extended
           AND (OLD.ledger_extended OR NEW.last_action <> 'extend'))
       OR (NEW.unit_code IS DISTINCT FROM OLD.unit_code
           AND NEW.last_action NOT IN ('assign', 'transfer')) THEN
        RAISE EXCEPTION 'case %: action % may not change that column', OLD.case_id, NEW.last_action
            USING ERRCODE = 'HC003',
                  DETAIL = 'case_id, rating_id, item_code, rating_day and opened_at never change; the form number is set once by file_form; the unit only by assign/transfer; adoption only by uphold_appeal; ledger_extended once by extend.';
    END IF;
    IF NEW.last_action IN ('transfer', 'extend') AND coalesce(btrim(NEW.last_reason), '') = '' THEN
        RAISE EXCEPTION 'case %: % needs a reason', OLD.case_id, NEW.last_action
            USING ERRCODE = 'HC003';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION hcp_case_guard() IS
    'Trigger on cases: an INSERT must be the opening, an UPDATE a legal transition of case_rules with version = old + 1 and only the columns that action may change.';

-- Writes the history row of each transition. SECURITY DEFINER: the services
-- cannot INSERT into case_history themselves, so its rows can only come from
-- real transitions of cases.
CREATE FUNCTION hcp_case_record() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO case_history (case_id, version, at, actor, action, from_state, to_state,
                              unit_code, reason, details)
    VALUES (NEW.case_id, NEW.version, NEW.last_at, NEW.last_actor, NEW.last_action,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END, NEW.state, NEW.unit_code,
            NEW.last_reason, NEW.last_details);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION hcp_case_record() IS
    'Trigger on cases: writes the case_history row of every transition (the only way rows get there).';

CREATE TRIGGER cases_guard BEFORE INSERT OR UPDATE ON cases
    FOR EACH ROW EXECUTE FUNCTION hcp_case_guard();
CREATE TRIGGER cases_record AFTER INSERT OR UPDATE ON cases
    FOR EACH ROW EXECUTE FUNCTION hcp_case_record();
-- Cases change (by transitions) but are never removed.
CREATE FUNCTION hcp_case_refuse_removal() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cases are never removed: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'A case ends by the transition close; its history stays.';
END
$$;
COMMENT ON FUNCTION hcp_case_refuse_removal() IS
    'Trigger on cases: refuses DELETE and TRUNCATE.';
CREATE TRIGGER cases_no_delete BEFORE DELETE ON cases
    FOR EACH ROW EXECUTE FUNCTION hcp_case_refuse_removal();
CREATE TRIGGER cases_no_truncate BEFORE TRUNCATE ON cases
    FOR EACH STATEMENT EXECUTE FUNCTION hcp_case_refuse_removal();

-- ---------------------------------------------------------------------------
-- What statistics count
-- ---------------------------------------------------------------------------
CREATE VIEW effective_ratings AS
SELECT r.*
  FROM ratings r
 WHERE NOT EXISTS (SELECT 1 FROM cases c
                    WHERE c.rating_id = r.rating_id AND NOT c.rating_adopted)
   AND NOT (r.origin = 'default'
            AND EXISTS (SELECT 1 FROM ratings o
                         WHERE o.delivery_id = r.delivery_id AND o.origin = 'rater'));
COMMENT ON VIEW effective_ratings IS 'The ratings that count in every statistic, report and publication: all ratings, minus those not adopted after an upheld appeal (Art. 23; cases.rating_adopted = false), minus a default rating (Art. 11) superseded by the rater''s own rating of the same delivery (a late rating wins over the default). The excluded rows stay in ratings for audit.';
-- The view's columns are the ratings columns: give each the same comment, so
-- auditors reading \d+ effective_ratings see what every column means.
DO $$
DECLARE
    col record;
BEGIN
    FOR col IN SELECT a.attname, col_description('ratings'::regclass, a.attnum) AS text
                 FROM pg_attribute a
                WHERE a.attrelid = 'ratings'::regclass AND a.attnum > 0 AND NOT a.attisdropped
    LOOP
        EXECUTE format('COMMENT ON COLUMN effective_ratings.%I IS %L', col.attname,
                       'As ratings.' || col.attname || ': ' || col.text);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------
GRANT SELECT ON case_states, case_rules, cases, form_counters, case_history, case_requests,
    effective_ratings TO hcp_service, hcp_auditor;
GRANT INSERT, UPDATE ON cases, form_counters, case_requests TO hcp_service;
GRANT USAGE ON SEQUENCE cases_case_id_seq TO hcp_service;
REVOKE UPDATE, DELETE, TRUNCATE ON case_history FROM hcp_service;
REVOKE DELETE, TRUNCATE ON cases FROM hcp_service;
