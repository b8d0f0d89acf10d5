-- The owner of a feature a signed-in resident created: the SHA-256 of the identity
-- provider and the person's `sub` (src/auth/token.rs), so that only they may change or
-- delete it. NULL for features ingested, written with an access key or by other SQL
-- clients. Never served.
ALTER TABLE features ADD COLUMN owner text;
