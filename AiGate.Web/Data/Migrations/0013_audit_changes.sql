-- audit_log (Features/Admin): what a change was (before and after, as JSON), why (the reason an admin gave),
-- and which request made it (the X-Request-Id of the page post; null for CLI verbs and jobs).
alter table audit_log add column before_value text;
alter table audit_log add column after_value text;
alter table audit_log add column reason character varying(1000);
alter table audit_log add column request_id character varying(100);
create index ix_audit_log_actor_at on audit_log (actor, at);
create index ix_audit_log_action_at on audit_log (action, at);
