-- Which credentials a user's sessions may start from. Bumped, in the same
-- transaction, by everything that ends a user's sessions wholesale (password
-- change, disabling, revoking every session). A login remembers the version
-- it read with the password hash it verified and starts its session only
-- while the version is unchanged (see Store::start_session), so a login in
-- flight cannot outlive the change.
ALTER TABLE users ADD COLUMN credentials_version bigint NOT NULL DEFAULT 0;
