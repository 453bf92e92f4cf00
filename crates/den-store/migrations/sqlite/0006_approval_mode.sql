-- Whether a session's file edits and shell commands wait for the person (`ask`) or run at once
-- (`auto`, the default and the behaviour before this column). Keep in step with the other
-- database's file.
ALTER TABLE sessions ADD COLUMN approval_mode TEXT NOT NULL DEFAULT 'auto';
