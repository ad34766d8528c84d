-- 005_deadlines: the deadlines of bad-review cases (Art. 21-23), what the
-- deadline-watcher did about them, and the views operators and auditors read.
--
-- One row of deadlines per deadline: case-router opens and closes them in its
-- own transactions (common/hcp_deadline.c); hcp-deadline-watcher warns before
-- they fall due, marks them overdue, escalates them to the General Office and
-- recomputes them when the working-day calendar changes. Every one of those
-- steps also appends a row to deadline_actions (append-only) in the same
-- transaction, so SQL alone shows what happened to a deadline, when and by whom.
--
-- Time: a period ends at 24:00 Asia/Shanghai of its last day (due_on), so
-- due_at is the next day's 00:00 in Asia/Shanghai; the reminder falls at 00:00
-- of warn_on. Both are generated from the dates, so they can never disagree.
-- Business time (met_at, warned_at, ...) is the services' clock (hcp_clock),
-- never the database's now().

-- ---------------------------------------------------------------------------
-- Deadlines
-- ---------------------------------------------------------------------------
CREATE TABLE deadlines (
    deadline_id   bigserial PRIMARY KEY,
    case_id       bigint NOT NULL REFERENCES cases (case_id),
    kind          text NOT NULL
                  CHECK (kind IN ('form', 'answer', 'appeal_decision', 'ledger')),
    starts_on     date NOT NULL,
    period        integer NOT NULL CHECK (period BETWEEN 0 AND 3660),
    day_kind      text NOT NULL CHECK (day_kind IN ('working', 'natural', 'fixed')),
    due_on        date NOT NULL,
    due_at        timestamptz NOT NULL
                  GENERATED ALWAYS AS (((due_on + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'))
                  STORED,
    warn_on       date NOT NULL,
    warn_at       timestamptz NOT NULL
                  GENERATED ALWAYS AS ((warn_on::timestamp AT TIME ZONE 'Asia/Shanghai')) STORED,
    provisional   boolean NOT NULL DEFAULT false,
    state         text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'met', 'cancelled')),
    opened_at     timestamptz NOT NULL,
    met_at        timestamptz,
    cancelled_at  timestamptz,
    warned_at     timestamptz,
    overdue_at    timestamptz,
    escalated_at  timestamptz,
    escalated_to  text,
    extended      smallint NOT NULL DEFAULT 0 CHECK (extended >= 0),
    extended_to   date,
    recomputed    integer NOT NULL DEFAULT 0 CHECK (recomputed >= 0),
    CONSTRAINT deadlines_period_needed CHECK (day_kind = 'fixed' OR period >= 1),
    CONSTRAINT deadlines_fixed_is_a_date CHECK (day_kind <> 'fixed' OR period = 0),
    CONSTRAINT deadlines_due_after_start CHECK (due_on >= starts_on OR extended_to IS NOT NULL),
    CONSTRAINT deadlines_warn_before_due CHECK (warn_on <= due_on),
    CONSTRAINT deadlines_only_working_is_provisional CHECK (NOT provisional OR (day_kind = 'working'
                                                             AND extended_to IS NULL)),
    CONSTRAINT deadlines_state_times CHECK (
        (state = 'open' AND met_at IS NULL AND cancelled_at IS NULL)
        OR (state = 'met' AND met_at IS NOT NULL AND cancelled_at IS NULL)
        OR (state = 'cancelled' AND cancelled_at IS NOT NULL AND met_at IS NULL)),
    CONSTRAINT deadlines_escalated_when_overdue CHECK (escalated_at IS NULL OR overdue_at IS NOT NULL),
    CONSTRAINT deadlines_extension_moves_due CHECK (extended_to IS NULL OR due_on = extended_to),
    CONSTRAINT deadlines_one_ledger_extension CHECK (kind <> 'ledger' OR extended <= 1)
);
COMMENT ON TABLE deadlines IS 'Deadlines of bad-review cases: the handling form 5 working days after the rating day (Art. 21), the unit''s answer or appeal 10 working days after it received the form (Art. 23), the General Office''s appeal decision, and the ledger rectification date the unit set (Art. 22). At most one open deadline per case and kind. Never deleted; what happened to each is in deadline_actions.';
COMMENT ON COLUMN deadlines.deadline_id IS 'Deadline number.';
COMMENT ON COLUMN deadlines.case_id IS 'The case (cases.case_id).';
COMMENT ON COLUMN deadlines.kind IS 'form (handling form, Art. 21), answer (unit''s answer or appeal, Art. 23), appeal_decision (General Office decides an appeal), ledger (rectification of a ledger item, Art. 22).';
COMMENT ON COLUMN deadlines.starts_on IS 'The day the period starts from (not counted: the period ends on the n-th day after it); for day_kind fixed, the date set.';
COMMENT ON COLUMN deadlines.period IS 'n: number of working or natural days; 0 for a fixed date.';
COMMENT ON COLUMN deadlines.day_kind IS 'working (skips weekends and statutory holidays, counts adjusted working days, 调休), natural (calendar days), fixed (a date someone set).';
COMMENT ON COLUMN deadlines.due_on IS 'Last day of the period (Asia/Shanghai civil date); the deadline passes at 24:00 of this day. After an extension, the extended date.';
COMMENT ON COLUMN deadlines.due_at IS 'The instant the deadline passes: 24:00 Asia/Shanghai of due_on (generated).';
COMMENT ON COLUMN deadlines.warn_on IS 'Day of the reminder: deadline_watcher.warn_working_days working days before due_on (default 1).';
COMMENT ON COLUMN deadlines.warn_at IS 'The instant the reminder is due: 00:00 Asia/Shanghai of warn_on (generated).';
COMMENT ON COLUMN deadlines.provisional IS 'True when due_on counted working days in a year the calendar file lacks, on Monday-Friday: a guess until the State Council notice is in the calendar; recomputed by deadline-watcher when the calendar is reloaded. See view deadline_provisional.';
COMMENT ON COLUMN deadlines.state IS 'open (running), met (the action it waited for happened: see met_at, possibly after due_at), cancelled (no longer needed, e.g. the case was closed or transferred).';
COMMENT ON COLUMN deadlines.opened_at IS 'When it was opened (business clock).';
COMMENT ON COLUMN deadlines.met_at IS 'When the action that satisfied it happened (business clock). A late action has met_at > due_at.';
COMMENT ON COLUMN deadlines.cancelled_at IS 'When it was cancelled (business clock).';
COMMENT ON COLUMN deadlines.warned_at IS 'When deadline-watcher sent the reminder (event deadline.warned); NULL if not (yet) sent. Cleared when an extension or a recomputation moves the reminder into the future, so the new date gets its own reminder.';
COMMENT ON COLUMN deadlines.overdue_at IS 'When deadline-watcher marked it overdue (event deadline.overdue). Cleared if an extension or a recomputation moves due_at into the future again.';
COMMENT ON COLUMN deadlines.escalated_at IS 'When deadline-watcher escalated it to the General Office (event deadline.escalated).';
COMMENT ON COLUMN deadlines.escalated_to IS 'Unit code it was escalated to (deadline_watcher.escalate_to, default GO, the General Office 办公厅).';
COMMENT ON COLUMN deadlines.extended IS 'How many times it was extended (a ledger deadline at most once, Art. 22).';
COMMENT ON COLUMN deadlines.extended_to IS 'The date set by the last extension (then due_on = extended_to, and recomputation leaves due_on alone).';
COMMENT ON COLUMN deadlines.recomputed IS 'How many times a calendar change moved its dates (see deadline_actions, action recomputed).';
COMMENT ON CONSTRAINT deadlines_period_needed ON deadlines IS 'A working or natural period has at least one day.';
COMMENT ON CONSTRAINT deadlines_fixed_is_a_date ON deadlines IS 'A fixed deadline is a date, with period 0.';
COMMENT ON CONSTRAINT deadlines_due_after_start ON deadlines IS 'A period ends on or after the day it starts from (an extension may set any date).';
COMMENT ON CONSTRAINT deadlines_warn_before_due ON deadlines IS 'The reminder comes no later than the due day.';
COMMENT ON CONSTRAINT deadlines_only_working_is_provisional ON deadlines IS 'Only a count of working days can depend on a missing calendar year.';
COMMENT ON CONSTRAINT deadlines_state_times ON deadlines IS 'met has met_at, cancelled has cancelled_at, open has neither.';
COMMENT ON CONSTRAINT deadlines_escalated_when_overdue ON deadlines IS 'Only an overdue deadline is escalated.';
COMMENT ON CONSTRAINT deadlines_extension_moves_due ON deadlines IS 'An extended deadline is due on the extended date.';
COMMENT ON CONSTRAINT deadlines_one_ledger_extension ON deadlines IS 'A ledger deadline may be extended once (Art. 22).';

-- At most one running deadline of a kind per case: hcp_deadline_open is
-- idempotent through this index (INSERT ... ON CONFLICT DO NOTHING).
CREATE UNIQUE INDEX deadlines_one_open_per_kind ON deadlines (case_id, kind) WHERE state = 'open';
-- The watcher's two sweeps read only these small partial indexes.
-- An overdue deadline is never reminded (the escalation says more), so it
-- leaves deadlines_to_warn as soon as it is marked.
CREATE INDEX deadlines_to_warn ON deadlines (warn_at)
    WHERE state = 'open' AND warned_at IS NULL AND overdue_at IS NULL;
CREATE INDEX deadlines_to_mark_overdue ON deadlines (due_at) WHERE state = 'open' AND overdue_at IS NULL;
CREATE INDEX deadlines_open_provisional ON deadlines (due_on) WHERE state = 'open' AND provisional;
CREATE INDEX deadlines_case ON deadlines (case_id);

-- Deadlines are history once closed: a met or cancelled deadline never
-- changes, the identity of a deadline never changes, and rows are never
-- deleted. Only the services' rules move an open deadline.
CREATE FUNCTION hcp_deadline_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state <> 'open' THEN
        RAISE EXCEPTION 'deadline % of case % is % and can no longer change',
            OLD.deadline_id, OLD.case_id, OLD.state
            USING ERRCODE = 'HD001',
                  HINT = 'Open a new deadline instead.';
    END IF;
    IF NEW.deadline_id <> OLD.deadline_id OR NEW.case_id <> OLD.case_id
       OR NEW.kind <> OLD.kind OR NEW.starts_on <> OLD.starts_on OR NEW.period <> OLD.period
       OR NEW.day_kind <> OLD.day_kind OR NEW.opened_at <> OLD.opened_at
       OR NEW.extended < OLD.extended OR NEW.recomputed < OLD.recomputed THEN
        RAISE EXCEPTION 'deadline %: deadline_id, case_id, kind, starts_on, period, day_kind and opened_at never change; extended and recomputed only grow',
            OLD.deadline_id
            USING ERRCODE = 'HD002';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION hcp_deadline_guard() IS
    'Trigger on deadlines: a met or cancelled deadline is frozen; the identity columns of a deadline never change.';
CREATE TRIGGER deadlines_guard BEFORE UPDATE ON deadlines
    FOR EACH ROW EXECUTE FUNCTION hcp_deadline_guard();
CREATE TRIGGER deadlines_no_delete BEFORE DELETE ON deadlines
    FOR EACH ROW EXECUTE FUNCTION hcp_refuse_change();
CREATE TRIGGER deadlines_no_truncate BEFORE TRUNCATE ON deadlines
    FOR EACH STATEMENT EXECUTE FUNCTION hcp_refuse_change();

-- Raised by hcp_deadline_extend when the case has no open deadline of the
-- kind, so that the caller's error message says so (and its transaction,
-- which was about to record an extension, is aborted).
CREATE FUNCTION hcp_deadline_missing(case_id bigint, kind text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case %: no open % deadline to extend', case_id, kind
        USING ERRCODE = 'HD003',
              HINT = 'Only a running deadline can be extended; see deadline_status_at().';
END
$$;
COMMENT ON FUNCTION hcp_deadline_missing(bigint, text) IS
    'Raises SQLSTATE HD003 "case N: no open KIND deadline to extend" (used by hcp_deadline_extend).';

-- ---------------------------------------------------------------------------
-- What happened to each deadline
-- ---------------------------------------------------------------------------
CREATE TABLE deadline_actions (
    action_id        bigserial PRIMARY KEY,
    deadline_id      bigint NOT NULL REFERENCES deadlines,
    case_id          bigint NOT NULL,
    kind             text NOT NULL,
    action           text NOT NULL CHECK (action IN ('opened', 'met', 'cancelled', 'extended',
                                                     'recomputed', 'warned', 'overdue',
                                                     'escalated')),
    at               timestamptz NOT NULL,
    due_on           date NOT NULL,
    previous_due_on  date,
    provisional      boolean NOT NULL,
    escalated_to     text,
    actor            text NOT NULL DEFAULT current_setting('application_name'),
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((action = 'escalated') = (escalated_to IS NOT NULL))
);
COMMENT ON TABLE deadline_actions IS 'Append-only history of every deadline: opened, met, cancelled, extended (by case-router through hcp_deadline), warned, overdue, escalated and recomputed (by deadline-watcher). Written in the same transaction as the change of deadlines and, for the watcher''s actions, as the event it publishes; so one row here means exactly one event.';
COMMENT ON COLUMN deadline_actions.action_id IS 'Insertion number.';
COMMENT ON COLUMN deadline_actions.deadline_id IS 'The deadline (deadlines.deadline_id).';
COMMENT ON COLUMN deadline_actions.case_id IS 'Its case, copied for convenience.';
COMMENT ON COLUMN deadline_actions.kind IS 'Its kind, copied for convenience.';
COMMENT ON COLUMN deadline_actions.action IS 'opened, met, cancelled, extended (a new date, Art. 22), recomputed (a calendar change moved the dates), warned (reminder sent: event deadline.warned), overdue (event deadline.overdue), escalated to the General Office (event deadline.escalated).';
COMMENT ON COLUMN deadline_actions.at IS 'When it happened (business clock).';
COMMENT ON COLUMN deadline_actions.due_on IS 'The due date after the action.';
COMMENT ON COLUMN deadline_actions.previous_due_on IS 'The due date before an extension or a recomputation.';
COMMENT ON COLUMN deadline_actions.provisional IS 'Whether due_on was provisional after the action.';
COMMENT ON COLUMN deadline_actions.escalated_to IS 'For escalated: the unit code it went to (the General Office).';
COMMENT ON COLUMN deadline_actions.actor IS 'Who acted: the writing service''s application_name, or deadline-watcher@host:pid for the watcher.';
COMMENT ON COLUMN deadline_actions.recorded_at IS 'Database time the row was written (bookkeeping, not business time).';
CREATE INDEX deadline_actions_deadline ON deadline_actions (deadline_id);
CREATE INDEX deadline_actions_case ON deadline_actions (case_id);
CREATE INDEX deadline_actions_at ON deadline_actions (at);
CREATE TRIGGER deadline_actions_append_only BEFORE UPDATE OR DELETE ON deadline_actions
    FOR EACH ROW EXECUTE FUNCTION hcp_refuse_change();
CREATE TRIGGER deadline_actions_no_truncate BEFORE TRUNCATE ON deadline_actions
    FOR EACH STATEMENT EXECUTE FUNCTION hcp_refuse_change();

-- ---------------------------------------------------------------------------
-- Views
-- ---------------------------------------------------------------------------
-- The status of every open deadline at a given instant. A view cannot take a
-- parameter, and business decisions use the services' clock, so the function
-- is the real thing; the view deadline_status below is the same at now().
CREATE FUNCTION deadline_status_at(at timestamptz)
RETURNS TABLE (deadline_id bigint, case_id bigint, kind text, status text, due_on date,
               due_at timestamptz, warn_at timestamptz, provisional boolean,
               warned_at timestamptz, overdue_at timestamptz, escalated_at timestamptz,
               unit_code text, case_state text, starts_on date, period integer,
               day_kind text, extended smallint)
LANGUAGE sql STABLE AS $$
    SELECT d.deadline_id, d.case_id, d.kind,
           CASE WHEN $1 >= d.due_at THEN 'overdue'
                WHEN $1 >= d.warn_at THEN 'due_soon'
                ELSE 'due' END,
           d.due_on, d.due_at, d.warn_at, d.provisional, d.warned_at, d.overdue_at,
           d.escalated_at, c.unit_code, c.state, d.starts_on, d.period, d.day_kind, d.extended
      FROM deadlines d
      JOIN cases c USING (case_id)
     WHERE d.state = 'open'
$$;
COMMENT ON FUNCTION deadline_status_at(timestamptz) IS
    'Every open deadline with its status at the given instant: due (before its reminder day), due_soon (on or after warn_at, before due_at), overdue (at or after due_at, i.e. after 24:00 Asia/Shanghai of due_on). Use it with the business time, e.g. SELECT * FROM deadline_status_at(''2026-02-26 09:00+08'') WHERE status = ''overdue''.';

CREATE VIEW deadline_status AS
    SELECT * FROM deadline_status_at(now());
COMMENT ON VIEW deadline_status IS 'Every open deadline as due, due_soon or overdue NOW, by the database clock: a display for people. Services, tests and drills that run on another business clock use deadline_status_at(instant) instead. The watcher''s own marks are warned_at, overdue_at and escalated_at.';
COMMENT ON COLUMN deadline_status.deadline_id IS 'The deadline.';
COMMENT ON COLUMN deadline_status.case_id IS 'Its case.';
COMMENT ON COLUMN deadline_status.kind IS 'form, answer, appeal_decision or ledger.';
COMMENT ON COLUMN deadline_status.status IS 'due, due_soon (reminder day reached) or overdue (24:00 of due_on passed), at now().';
COMMENT ON COLUMN deadline_status.due_on IS 'Last day of the period.';
COMMENT ON COLUMN deadline_status.due_at IS '24:00 Asia/Shanghai of due_on.';
COMMENT ON COLUMN deadline_status.warn_at IS 'When the reminder is due.';
COMMENT ON COLUMN deadline_status.provisional IS 'True when due_on is a Monday-Friday guess (calendar year missing).';
COMMENT ON COLUMN deadline_status.warned_at IS 'When the reminder was sent, if it was.';
COMMENT ON COLUMN deadline_status.overdue_at IS 'When the watcher marked it overdue, if it did.';
COMMENT ON COLUMN deadline_status.escalated_at IS 'When it was escalated to the General Office, if it was.';
COMMENT ON COLUMN deadline_status.unit_code IS 'Responsible unit of the case (NULL before one is designated).';
COMMENT ON COLUMN deadline_status.case_state IS 'State of the case.';
COMMENT ON COLUMN deadline_status.starts_on IS 'Day the period starts from (not counted).';
COMMENT ON COLUMN deadline_status.period IS 'Number of days (0 for a fixed date).';
COMMENT ON COLUMN deadline_status.day_kind IS 'working, natural or fixed.';
COMMENT ON COLUMN deadline_status.extended IS 'How many times it was extended.';

CREATE VIEW deadline_provisional AS
    SELECT d.deadline_id, d.case_id, d.kind, d.starts_on, d.period, d.due_on,
           extract(year FROM d.due_on)::integer AS due_year, d.opened_at
      FROM deadlines d
     WHERE d.state = 'open' AND d.provisional;
COMMENT ON VIEW deadline_provisional IS 'Open deadlines whose due date is provisional: the working days were counted Monday-Friday because the calendar file lacks a year. Add the State Council notice of that year to the calendar file (calendar.file); deadline-watcher recomputes these on reload (SIGHUP or file change) and this view empties. SELECT count(*) FROM deadline_provisional is the figure to watch.';
COMMENT ON COLUMN deadline_provisional.deadline_id IS 'The deadline.';
COMMENT ON COLUMN deadline_provisional.case_id IS 'Its case.';
COMMENT ON COLUMN deadline_provisional.kind IS 'form, answer or appeal_decision (working-day kinds).';
COMMENT ON COLUMN deadline_provisional.starts_on IS 'Day the period starts from.';
COMMENT ON COLUMN deadline_provisional.period IS 'Working days.';
COMMENT ON COLUMN deadline_provisional.due_on IS 'The provisional due date.';
COMMENT ON COLUMN deadline_provisional.due_year IS 'Year of the due date (usually the year missing from the calendar).';
COMMENT ON COLUMN deadline_provisional.opened_at IS 'When the deadline was opened.';

CREATE VIEW deadline_escalations AS
    SELECT a.action_id, a.deadline_id, a.case_id, a.kind, a.at AS escalated_at, a.due_on,
           a.escalated_to, c.unit_code, c.state AS case_state, d.state AS deadline_state,
           d.met_at, a.actor
      FROM deadline_actions a
      JOIN deadlines d USING (deadline_id)
      JOIN cases c ON c.case_id = a.case_id
     WHERE a.action = 'escalated';
COMMENT ON VIEW deadline_escalations IS 'Every escalation of an overdue deadline to the General Office (Art. 20, 25: units slow to rectify), with what became of the deadline since.';
COMMENT ON COLUMN deadline_escalations.action_id IS 'The deadline_actions row.';
COMMENT ON COLUMN deadline_escalations.deadline_id IS 'The deadline.';
COMMENT ON COLUMN deadline_escalations.case_id IS 'Its case.';
COMMENT ON COLUMN deadline_escalations.kind IS 'form, answer, appeal_decision or ledger.';
COMMENT ON COLUMN deadline_escalations.escalated_at IS 'When it was escalated (business clock).';
COMMENT ON COLUMN deadline_escalations.due_on IS 'The due date that was missed.';
COMMENT ON COLUMN deadline_escalations.escalated_to IS 'Unit code escalated to (the General Office).';
COMMENT ON COLUMN deadline_escalations.unit_code IS 'Responsible unit of the case now.';
COMMENT ON COLUMN deadline_escalations.case_state IS 'State of the case now.';
COMMENT ON COLUMN deadline_escalations.deadline_state IS 'State of the deadline now (open, met late, cancelled).';
COMMENT ON COLUMN deadline_escalations.met_at IS 'When it was finally met, if it was.';
COMMENT ON COLUMN deadline_escalations.actor IS 'The watcher instance that escalated it.';

-- ---------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------
GRANT SELECT ON deadlines, deadline_actions, deadline_status, deadline_provisional,
    deadline_escalations TO hcp_service, hcp_auditor;
GRANT EXECUTE ON FUNCTION deadline_status_at(timestamptz) TO hcp_service, hcp_auditor;
GRANT EXECUTE ON FUNCTION hcp_deadline_missing(bigint, text) TO hcp_service;
GRANT INSERT, UPDATE ON deadlines TO hcp_service;
GRANT INSERT ON deadline_actions TO hcp_service;
GRANT USAGE ON SEQUENCE deadlines_deadline_id_seq, deadline_actions_action_id_seq TO hcp_service;
REVOKE DELETE, TRUNCATE ON deadlines FROM hcp_service;
REVOKE UPDATE, DELETE, TRUNCATE ON deadline_actions FROM hcp_service;
