"""Redis key names and pub/sub channels, in one place so every process agrees on them."""

import hashlib

PREFIX = "newsray:"
# Published with the JSON list of new article ids after every crawl that stored some.
CHANNEL_NEW_ARTICLES = f"{PREFIX}articles:new"

# Accounts (issue 5). Rate-limit windows: a sorted set of attempt times per action and subject
# (an account's keyed hash or a client address), trimmed to the window on every attempt.
RATE_LIMIT_PREFIX = f"{PREFIX}rl:"


def rate_limit_key(action: str, subject_kind: str, subject: str) -> str:
    return f"{RATE_LIMIT_PREFIX}{action}:{subject_kind}:{subject}"


# The general per-user API limit: a counter per user and fixed window (the sliding estimate
# weighs the previous window), expiring after two windows.
def api_usage_key(user_id: str, window: int) -> str:
    return f"{PREFIX}api:{user_id}:{window}"


# Milliseconds since the epoch before which a user's access tokens are void (disable, password
# change, account deletion); access tokens are stateless, so this is how they die early.
def tokens_not_before_key(user_id: str) -> str:
    return f"{PREFIX}auth:nbf:{user_id}"


# Search (issue 4): a query's embedding, per model version and normalized query text, so a
# repeated search costs no model call. Hashed: the key stays short whatever the query.
QUERY_EMBEDDING_PREFIX = f"{PREFIX}qvec:"


def query_embedding_key(model_version: str, query: str) -> str:
    digest = hashlib.sha256(f"{model_version}\x00{query}".encode()).hexdigest()
    return f"{QUERY_EMBEDDING_PREFIX}{digest}"
