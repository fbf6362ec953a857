-- What each user follows (sources from the shared catalog, in folders of their own) and how
-- they want to read. Sources are shared: a subscription never owns its source.
CREATE TABLE folders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Target of the composite key below: a subscription can only be put in its user's folder.
    UNIQUE (id, user_id)
);
CREATE UNIQUE INDEX folders_user_name_idx ON folders (user_id, lower(name));

CREATE TABLE subscriptions (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source_id   bigint NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    folder_id   bigint,
    title       text CHECK (title IS NULL OR length(title) BETWEEN 1 AND 300),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, source_id),
    -- Deleting a folder keeps its subscriptions, unfiled.
    FOREIGN KEY (folder_id, user_id) REFERENCES folders (id, user_id) ON DELETE SET NULL (folder_id)
);
CREATE INDEX subscriptions_source_idx ON subscriptions (source_id);
CREATE INDEX subscriptions_folder_idx ON subscriptions (folder_id) WHERE folder_id IS NOT NULL;

CREATE TABLE preferences (
    user_id          uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    topics_followed  text[] NOT NULL DEFAULT '{}',
    topics_muted     text[] NOT NULL DEFAULT '{}',
    languages        text[] NOT NULL DEFAULT '{}',
    time_zone        text NOT NULL DEFAULT 'UTC',
    digest_enabled   boolean NOT NULL DEFAULT false,
    digest_hour      smallint NOT NULL DEFAULT 7 CHECK (digest_hour BETWEEN 0 AND 23),
    offline_reading  boolean NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
