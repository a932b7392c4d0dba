-- users (Features/Admin, issue 13): an operator's suspension (every key refused with a 403 that says so) and
-- per-account rate limits that beat the plan and the usage tier. Null means "not suspended" / "no override".
alter table users add column suspended_at timestamp with time zone;
alter table users add column suspension_reason character varying(500);
alter table users add column requests_per_minute_override integer;
alter table users add column tokens_per_minute_override bigint;
