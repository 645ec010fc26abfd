"""Named click-to-call reasons and results: one table, no dependencies.

These strings cross the wire (AMQP headers, outcome bodies, SQLite, arictl), so they never
change once released; add new ones instead.
"""

from __future__ import annotations

# ---- refusals: the request was never placed; retrying the same message cannot help ----------
MALFORMED = "malformed"                    # not JSON, not an object, a field of the wrong type
TOO_LARGE = "too_large"                    # body over the size limit
BAD_REQUEST_ID = "bad_request_id"          # missing or not a safe id
BAD_DESTINATION = "bad_destination"        # neither a known endpoint nor a phone number
BAD_TIMEOUT = "bad_timeout"                # out of bounds
BAD_CALLER_ID = "bad_caller_id"
BAD_VARIABLES = "bad_variables"
UNKNOWN_CLIENT = "unknown_client"
INACTIVE_CLIENT = "inactive_client"
UNKNOWN_ORIGIN = "unknown_origin"          # not in endpoints_pjsip.def
ORIGIN_NOT_OF_CLIENT = "origin_not_of_client"
CALL_LIMIT = "call_limit"                  # the client's max_chamadas calls are up
ORIGIN_OFFLINE = "origin_offline"          # ARI says the endpoint is not registered
ORIGIN_UNREACHABLE = "origin_unreachable"  # originate answered 500 "Allocation failed"
ASTERISK_REJECTED = "asterisk_rejected"    # any other 4xx on the originate
DUPLICATE_REQUEST_ID = "duplicate_request_id"  # same id already used by another client
INTERNAL_ERROR = "internal_error"          # a bug of ours: kept in the dead-letter queue
EXPIRED = "expired"                        # waited in the queue longer than clicktocall.max_wait
NOT_AUTHORIZED = "not_authorized"          # the publisher, or the client, may not ask this (authorize.py)

REFUSAL_TEXT = {
    MALFORMED: "malformed request",
    TOO_LARGE: "request too large",
    BAD_REQUEST_ID: "bad request_id",
    BAD_DESTINATION: "bad destination",
    BAD_TIMEOUT: "bad timeout",
    BAD_CALLER_ID: "bad caller_id",
    BAD_VARIABLES: "bad variables",
    UNKNOWN_CLIENT: "unknown client",
    INACTIVE_CLIENT: "client not active",
    UNKNOWN_ORIGIN: "unknown origin",
    ORIGIN_NOT_OF_CLIENT: "origin does not belong to the client",
    CALL_LIMIT: "client concurrent-call limit reached",
    ORIGIN_OFFLINE: "origin offline",
    ORIGIN_UNREACHABLE: "origin unreachable",
    ASTERISK_REJECTED: "Asterisk rejected the originate",
    DUPLICATE_REQUEST_ID: "request_id already used by another client",
    INTERNAL_ERROR: "internal error",
    EXPIRED: "waited too long in the queue",
    NOT_AUTHORIZED: "not authorized",
}

# ---- call failures: placed, but the two legs never talked ------------------------------------
ORIGIN_BUSY = "origin_busy"
ORIGIN_NO_ANSWER = "origin_no_answer"
ORIGIN_FAILED = "origin_failed"            # congestion, rejected, gone without a reason
DESTINATION_BUSY = "destination_busy"
DESTINATION_NO_ANSWER = "destination_no_answer"
DESTINATION_OFFLINE = "destination_offline"  # an endpoint not registered: cause 20, CHANUNAVAIL
# A phone number (trunk_dial) or an endpoint Asterisk could not allocate a channel for: the
# /channels/create of leg B answered 500 "Allocation failed" (trunk down, unknown endpoint).
DESTINATION_UNREACHABLE = "destination_unreachable"
DESTINATION_FAILED = "destination_failed"
ORIGIN_HUNG_UP = "origin_hung_up"          # the origin gave up while the destination rang
ASTERISK_ERROR = "asterisk_error"          # a REST step of the flow failed
# The engine was down (or lost Asterisk) when the call ended: how it ended is unknown.
ENDED_UNSEEN = "ended_unseen"
# In flight when arimonitor stopped, legs gone at the next start (whiledown.py): result
# `completed` (talk time up to the last-alive mark) or `failed`.
ENDED_WHILE_DOWN = "ended_while_down"
# Never placed: Asterisk stayed unreachable past clicktocall.max_attempts / max_age (consumer;
# dead-lettered). Result `failed`, yet the same request_id may be sent again.
RETRIES_EXHAUSTED = "retries_exhausted"

FAILURE_TEXT = {
    ORIGIN_BUSY: "origin busy",
    ORIGIN_NO_ANSWER: "origin did not answer",
    ORIGIN_FAILED: "origin call failed",
    DESTINATION_BUSY: "destination busy",
    DESTINATION_NO_ANSWER: "destination did not answer",
    DESTINATION_OFFLINE: "destination offline",
    DESTINATION_UNREACHABLE: "destination unreachable",
    DESTINATION_FAILED: "destination call failed",
    ORIGIN_HUNG_UP: "origin hung up before the destination answered",
    ASTERISK_ERROR: "Asterisk error",
    RETRIES_EXHAUSTED: "Asterisk unreachable, retries exhausted",
    ENDED_UNSEEN: "the call ended while the engine was not watching",
    ENDED_WHILE_DOWN: "ended while arimonitor was down",
}

# ---- results: the `result` field of a final outcome ----------------------------------------
RESULT_REFUSED = "refused"      # never placed (a refusal above)
RESULT_FAILED = "failed"        # placed, never connected (a failure above)
RESULT_COMPLETED = "completed"  # connected, then ended (cause, duration)

# ---- outcome events (PUB topic c2c.<event>; only `final` is final) --------------------------
EV_ACCEPTED = "accepted"
EV_ORIGIN_RINGING = "origin_ringing"
EV_ORIGIN_ANSWERED = "origin_answered"
EV_DESTINATION_RINGING = "destination_ringing"
EV_CONNECTED = "connected"
EV_FINAL = "final"


def describe(reason: str) -> str:
    """Operator text of a refusal or failure code; the code itself when unknown."""
    return REFUSAL_TEXT.get(reason) or FAILURE_TEXT.get(reason) or reason
