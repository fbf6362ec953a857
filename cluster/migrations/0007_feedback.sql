-- Reading state and feedback, what the ranking learns from: the current state per user and
-- article (one row, upserted), and every change as an event with its time.
CREATE TABLE article_states (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    article_id      uuid NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    first_opened_at timestamptz,
    last_opened_at  timestamptz,
    open_count      integer NOT NULL DEFAULT 0,
    read_at         timestamptz,
    -- Total time spent reading, over every visit.
    dwell_ms        bigint NOT NULL DEFAULT 0 CHECK (dwell_ms >= 0),
    reaction        smallint CHECK (reaction IN (-1, 1)),
    reacted_at      timestamptz,
    rating          smallint CHECK (rating BETWEEN 1 AND 5),
    rated_at        timestamptz,
    saved_at        timestamptz,
    hidden_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, article_id)
);
-- History, newest activity first, per user.
CREATE INDEX article_states_user_recent_idx ON article_states (user_id, updated_at DESC, article_id DESC);
CREATE INDEX article_states_article_idx ON article_states (article_id);

CREATE TABLE feedback_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    article_id  uuid NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('opened', 'read', 'unread', 'like', 'dislike', 'unreact',
                                              'rating', 'unrate', 'saved', 'unsaved', 'hidden', 'unhidden',
                                              'dwell')),
    value       integer,
    dwell_ms    integer,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_events_user_time_idx ON feedback_events (user_id, created_at DESC);
CREATE INDEX feedback_events_article_idx ON feedback_events (article_id);
