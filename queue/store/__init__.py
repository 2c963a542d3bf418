"""The hall server's storage, the only code that speaks SQL: `Store`, a facade over one
module per concept (tickets, applications, notifications, terminals, tokens, events,
throttling), with the schema, the connection and the views (rows to dataclasses and JSON
data) apart. SQLite in WAL mode in the data folder, or PostgreSQL for several server
processes on one database (database.py says what differs and where); every change is one
transaction that writes the tickets, the window and an event row together. Nothing about
the queue lives only in memory.
"""

from kiosq.queue.store.applications import TRACKING_PREFIX
from kiosq.queue.store.errors import (
           AlreadyExists,
           EnrollmentRefused,
           IdempotencyConflict,
           KeyRetired,
           NotFound,
           RateLimited,
           StoreError,
           Unavailable,
           Unusable,
)
from kiosq.queue.store.facade import DB_FILE, Store, utcnow
from kiosq.queue.store.people import AuditEntry, Who
from kiosq.queue.store.rollover import roll_over_daily
from kiosq.queue.store.schema import MIGRATIONS
from kiosq.queue.store.throttling import Limit
from kiosq.queue.store.tickets import IDEMPOTENCY_DAYS
from kiosq.queue.store.tokens import ROLES, Token, hash_token
from kiosq.queue.store.views import Notification, StoredEvent, application_event_data, ticket_data

__all__ = ["DB_FILE", "IDEMPOTENCY_DAYS", "MIGRATIONS", "ROLES", "TRACKING_PREFIX", "AlreadyExists", "AuditEntry",
           "EnrollmentRefused", "IdempotencyConflict", "KeyRetired", "Limit", "NotFound", "Notification", "RateLimited",
           "Store", "StoreError", "StoredEvent", "Token", "Unavailable", "Unusable", "Who", "application_event_data",
           "hash_token", "roll_over_daily", "ticket_data", "utcnow"]
