"""The store's schema: numbered migrations, each applied once in its own transaction and
recorded in the database (kiosq.base.sqlite.migrate). SQLite's dialect; a second database
keeps its own list with the same numbers and names."""

from kiosq.base.sqlite import Migration

MIGRATIONS: list[Migration] = [
    ("tickets, windows, events, tokens", [
        """CREATE TABLE tickets (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,  -- "<seq>-<random>": found through seq, so it needs no index of its own
            day TEXT NOT NULL,
            number_service TEXT NOT NULL,
            number INTEGER NOT NULL,
            label TEXT NOT NULL,
            service TEXT NOT NULL,
            priority TEXT NOT NULL,
            rank INTEGER NOT NULL,
            status TEXT NOT NULL,
            window INTEGER,
            issued_at TEXT NOT NULL,
            called_at TEXT,
            started_at TEXT,
            ended_at TEXT,
            recalls INTEGER NOT NULL DEFAULT 0,
            transfers INTEGER NOT NULL DEFAULT 0,
            issued_by TEXT,
            UNIQUE (number_service, day, number)
        )""",
        # The head of each service's queue, and the count of people ahead.
        "CREATE INDEX tickets_waiting ON tickets (day, service, rank DESC, seq) WHERE status = 'waiting'",
        # At most one ticket is called to or served at a window at a time.
        "CREATE UNIQUE INDEX tickets_at_window ON tickets (window) WHERE status IN ('called', 'serving')",
        """CREATE TABLE windows (
            number INTEGER PRIMARY KEY,
            state TEXT NOT NULL DEFAULT 'open',
            changed_at TEXT
        )""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            at TEXT NOT NULL,
            day TEXT NOT NULL,
            ticket TEXT,
            window INTEGER,
            data TEXT NOT NULL
        )""",
        """CREATE TABLE idempotency (
            caller TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            ticket TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (caller, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE tokens (
            hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            windows TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ]),
    # How many tickets wait, per day, service and priority class, kept by triggers in the
    # transaction of each change: counting a long queue's index costs more than the rest
    # of issuing a ticket (BENCHMARKS.md).
    ("waiting counts", [
        """CREATE TABLE waiting_counts (
            day TEXT NOT NULL,
            service TEXT NOT NULL,
            rank INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (day, service, rank)
        ) WITHOUT ROWID""",
        """CREATE TRIGGER waiting_insert AFTER INSERT ON tickets WHEN NEW.status = 'waiting' BEGIN
            INSERT INTO waiting_counts VALUES (NEW.day, NEW.service, NEW.rank, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END""",
        """CREATE TRIGGER waiting_leave AFTER UPDATE OF status, service ON tickets WHEN OLD.status = 'waiting' BEGIN
            UPDATE waiting_counts SET n = n - 1 WHERE day = OLD.day AND service = OLD.service AND rank = OLD.rank;
        END""",
        """CREATE TRIGGER waiting_enter AFTER UPDATE OF status, service ON tickets WHEN NEW.status = 'waiting' BEGIN
            INSERT INTO waiting_counts VALUES (NEW.day, NEW.service, NEW.rank, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END""",
        """INSERT INTO waiting_counts SELECT day, service, rank, COUNT(*) FROM tickets
            WHERE status = 'waiting' GROUP BY day, service, rank""",
    ]),
    # The last calls of the day, for a display that opens (or reopens) in the middle of it.
    ("recent calls", [
        "CREATE INDEX events_calls ON events (day, id) WHERE type IN ('ticket.called', 'ticket.recalled')",
    ]),
    # Simple applications filed at terminals (queue/applications.py). Personal data is only
    # in `applicant`, sealed with AES-GCM under a key kept outside the database, and in
    # `id_hash`, an HMAC of the ID number for lookups by card.
    ("applications", [
        """CREATE TABLE applications (
            seq INTEGER PRIMARY KEY,
            tracking_no TEXT NOT NULL UNIQUE,
            provisional_no TEXT UNIQUE,  -- a terminal's number from its outbox; NULLs do not clash
            day TEXT NOT NULL,  -- the hall's local date of filing, as in the tracking number
            item TEXT NOT NULL,
            item_name TEXT NOT NULL,
            department TEXT NOT NULL,
            service TEXT NOT NULL,
            status TEXT NOT NULL,
            submitted_at TEXT NOT NULL,
            clock_from TEXT NOT NULL,
            promised_days INTEGER NOT NULL,
            legal_days INTEGER NOT NULL,
            promised_date TEXT NOT NULL,
            legal_date TEXT NOT NULL,
            finished_at TEXT,
            terminal TEXT NOT NULL,
            id_hash TEXT NOT NULL,
            applicant BLOB NOT NULL,
            fingerprint TEXT NOT NULL,  -- HMAC of the filed body: a replay must match it
            rejection_by TEXT,
            rejection_at TEXT,
            rejection_note TEXT
        )""",
        "CREATE INDEX applications_by_person ON applications (id_hash, seq)",
        "CREATE INDEX applications_by_service ON applications (service, status)",
        "CREATE INDEX applications_by_day ON applications (day)",
        "CREATE TABLE application_counters (day TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
        """CREATE TABLE application_steps (
            id INTEGER PRIMARY KEY,
            tracking_no TEXT NOT NULL,
            action TEXT NOT NULL,
            status TEXT NOT NULL,
            at TEXT NOT NULL,
            actor TEXT,
            note TEXT
        )""",
        "CREATE INDEX application_steps_by_no ON application_steps (tracking_no, id)",
        # Wrong lookups and lookups by card, per scope (a tracking number, a hashed client
        # address, a terminal), for throttling; rows older than the window are dropped.
        "CREATE TABLE throttle (scope TEXT NOT NULL, at TEXT NOT NULL)",
        "CREATE INDEX throttle_by_scope ON throttle (scope, at)",
        """CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            tracking_no TEXT NOT NULL,
            status TEXT NOT NULL,
            payload TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'queued',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at TEXT,
            last_error TEXT,
            created_at TEXT NOT NULL,
            sent_at TEXT
        )""",
        "CREATE INDEX notifications_due ON notifications (next_at) WHERE state = 'queued'",
        "CREATE INDEX notifications_queued_by_no ON notifications (tracking_no, id) WHERE state = 'queued'",
    ]),
    # The fleet (queue/fleet.py): one-time enrollment codes (hashed) and each terminal's
    # enrollment, revocation and last heartbeat. A terminal's token is in `tokens` under its name.
    ("terminals", [
        """CREATE TABLE enroll_codes (
            hash TEXT PRIMARY KEY,
            terminal TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            created_by TEXT,
            used_at TEXT,
            replaced_at TEXT  -- a newer code was made for the same terminal
        ) WITHOUT ROWID""",
        "CREATE INDEX enroll_codes_by_terminal ON enroll_codes (terminal)",
        """CREATE TABLE terminals (
            name TEXT PRIMARY KEY,
            enrolled_at TEXT,
            revoked_at TEXT,
            last_seen TEXT,
            heartbeat TEXT,  -- the last heartbeat's body (JSON)
            state TEXT  -- what the last terminal.changed event said (JSON), to send changes only
        ) WITHOUT ROWID""",
    ]),
    # People (queue/people.py): staff accounts with argon2id password hashes, their sign-in
    # sessions (the cookie's secret only as a hash), tokens that expire and say when they
    # were last used, and the append-only audit log: triggers refuse to change or delete it.
    ("people", [
        """CREATE TABLE users (
            login TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            windows TEXT NOT NULL DEFAULT '[]',
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            password_set_at TEXT NOT NULL,
            disabled_at TEXT,
            last_sign_in_at TEXT
        ) WITHOUT ROWID""",
        """CREATE TABLE sessions (
            hash TEXT PRIMARY KEY,
            login TEXT NOT NULL REFERENCES users (login),
            created_at TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            ended_at TEXT
        ) WITHOUT ROWID""",
        "CREATE INDEX sessions_by_login ON sessions (login) WHERE ended_at IS NULL",
        "ALTER TABLE tokens ADD COLUMN expires_at TEXT",
        "ALTER TABLE tokens ADD COLUMN last_used_at TEXT",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            actor TEXT NOT NULL,
            actor_kind TEXT NOT NULL,
            address TEXT,
            target TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX audit_by_at ON audit (at)",
        """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN
            SELECT RAISE(ABORT, 'the audit log is append-only');
        END""",
        """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN
            SELECT RAISE(ABORT, 'the audit log is append-only');
        END""",
    ]),
    # Lookup codes (#17): the keyed hash (HMAC) of each application's random lookup code,
    # checked by POST /api/applications/{no}/lookup; NULL for applications filed before.
    ("lookup codes", [
        "ALTER TABLE applications ADD COLUMN lookup_hash TEXT",
    ]),
    # Sealed notes (#17): staff notes are personal data, sealed like the applicant record
    # (queue/store/sealed.py). The clear columns stay for the notes of before, which the
    # server seals at its start and empties (Store.seal_notes_with).
    ("sealed notes", [
        "ALTER TABLE applications ADD COLUMN rejection_sealed BLOB",
        "ALTER TABLE application_steps ADD COLUMN sealed_note BLOB",
        "ALTER TABLE notifications ADD COLUMN sealed_note BLOB",
    ]),
    # 好差评 (#18, queue/ratings.py): one rating per service (a ticket, an application) and
    # a case per 差评; comments and notes sealed as staff notes are. Tickets keep who served.
    ("ratings", [
        """CREATE TABLE ratings (
            id INTEGER PRIMARY KEY,
            subject TEXT NOT NULL UNIQUE,  -- "ticket:<seq>" or "application:<tracking_no>"
            day TEXT NOT NULL,  -- the service's business day
            rated_at TEXT NOT NULL,
            channel TEXT NOT NULL,
            level INTEGER NOT NULL,
            reasons TEXT NOT NULL DEFAULT '[]',
            comment BLOB,
            service TEXT,
            "window" INTEGER,
            clerk TEXT,
            item TEXT,
            department TEXT,
            label TEXT NOT NULL
        )""",
        "CREATE INDEX ratings_by_day ON ratings (day)",
        """CREATE TABLE rating_cases (
            rating_id BIGINT PRIMARY KEY REFERENCES ratings (id),
            state TEXT NOT NULL,
            opened_on TEXT NOT NULL,
            callback_due TEXT NOT NULL,
            fix_due TEXT NOT NULL,
            callback_at TEXT,
            callback_by TEXT,
            callback_note BLOB,
            fixed_at TEXT,
            fixed_by TEXT,
            fix_note BLOB,
            appeal_at TEXT,
            appeal_by TEXT,
            appeal_note BLOB,
            decided_at TEXT,
            decided_by TEXT,
            decision_note BLOB
        )""",
        "CREATE INDEX rating_cases_by_state ON rating_cases (state)",
        "ALTER TABLE tickets ADD COLUMN served_by TEXT",
    ]),
    # 效能投诉 (#18, queue/complaints.py): the citizen's text, phone and lookup code in one
    # sealed record; the decline's reason and the answer sealed as notes are.
    ("complaints", [
        """CREATE TABLE complaints (
            seq INTEGER PRIMARY KEY,
            complaint_no TEXT NOT NULL UNIQUE,
            day TEXT NOT NULL,
            received_at TEXT NOT NULL,
            channel TEXT NOT NULL,
            about_window INTEGER,
            about_staff TEXT,
            about_item TEXT,
            category TEXT NOT NULL,
            record BLOB NOT NULL,
            lookup_hash TEXT NOT NULL,
            state TEXT NOT NULL,
            accept_by TEXT NOT NULL,
            reply_by TEXT NOT NULL,
            accepted_at TEXT,
            accepted_by TEXT,
            declined_at TEXT,
            declined_by TEXT,
            decline_reason BLOB,
            answered_at TEXT,
            answered_by TEXT,
            answer BLOB,
            closed_at TEXT,
            satisfaction INTEGER
        )""",
        "CREATE INDEX complaints_by_state ON complaints (state)",
        "CREATE TABLE complaint_counters (day TEXT PRIMARY KEY, n INTEGER NOT NULL)",
    ]),
]
