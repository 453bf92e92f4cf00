-- Which den runs a session's sandbox (its instance name), set when a start begins. Recovery at
-- start takes only the starting or running sessions whose runner is gone: its own earlier run
-- (or none recorded), never another den's. Keep in step with the other database's file.
ALTER TABLE sessions ADD COLUMN runner TEXT;
CREATE INDEX sessions_status_runner ON sessions (status, runner);
