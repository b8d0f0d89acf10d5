-- Access keys: only a SHA-256 hash of each key is kept; the key itself is shown once, when
-- it is made. Scopes are `*` (every layer) or a comma list of layer ids.
CREATE TABLE api_keys (
    name         TEXT    PRIMARY KEY,
    key_hash     TEXT    NOT NULL UNIQUE,
    read_layers  TEXT    NOT NULL,
    write_layers TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
