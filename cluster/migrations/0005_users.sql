-- Accounts: users, their refresh-token families, MFA (TOTP + backup codes + login challenges)
-- and the OpenID Connect identities linked to them. Deleting a user deletes all of it.
CREATE TABLE users (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Normalized (trimmed, lower case) by the application; the CHECK keeps a bypass out.
    email                text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    email_verified       boolean NOT NULL DEFAULT false,
    -- argon2id PHC string; NULL for accounts that only sign in through an identity provider.
    password_hash        text,
    role                 text NOT NULL DEFAULT 'reader' CHECK (role IN ('reader', 'admin')),
    disabled_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    last_login_at        timestamptz,
    password_changed_at  timestamptz,
    -- TOTP secrets are AES-GCM encrypted with a key derived from the application secret.
    totp_secret          bytea,
    totp_pending_secret  bytea,
    totp_enabled_at      timestamptz,
    -- The last accepted TOTP time step: a code is accepted only for a later step (no replay).
    totp_last_step       bigint,
    mfa_locked_until     timestamptz
);
CREATE INDEX users_created_idx ON users (created_at, id);

-- Rotating refresh tokens, stored as SHA-256 hashes. A family is one sign-in (one device):
-- every rotation adds a row to it; presenting a rotated token again revokes the family.
CREATE TABLE refresh_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id    uuid NOT NULL,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    rotated_at   timestamptz,
    revoked_at   timestamptz,
    user_agent   text
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

-- Ten single-use backup codes per user, HMAC-hashed (they are random, so no slow hash needed).
CREATE TABLE mfa_backup_codes (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- The second step of a login: the password (or provider) was right, the code is still due.
CREATE TABLE mfa_challenges (
    token_hash       bytea PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    failed_attempts  integer NOT NULL DEFAULT 0,
    consumed_at      timestamptz
);
CREATE INDEX mfa_challenges_user_idx ON mfa_challenges (user_id);

-- Accounts at OpenID Connect providers, linked to a user (by verified email or at creation).
CREATE TABLE oidc_identities (
    provider       text NOT NULL,
    subject        text NOT NULL,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);
CREATE INDEX oidc_identities_user_idx ON oidc_identities (user_id);
