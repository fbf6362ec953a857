-- Server errors (unhandled exceptions), written by the API's global exception handler so that
-- admins can see recent ones without shell access. No request bodies, no query strings.
CREATE TABLE error_logs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    method       text NOT NULL,
    path         text NOT NULL,
    status       integer NOT NULL,
    error_type   text NOT NULL,
    message      text NOT NULL,
    user_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    request_id   text
);
CREATE INDEX error_logs_recent_idx ON error_logs (occurred_at DESC, id DESC);
