-- The provider's list cost of each call beside what we charged for it (the business page's cost and margin).
-- Null for calls metered before this migration: their list cost was never recorded, and today's prices need not
-- be the prices of then, so nothing is back-filled. A rollup bucket holding any such call has a null list cost too.
alter table usage_events add column provider_cost_micros bigint;
alter table usage_rollups_hourly add column provider_cost_micros bigint;
alter table usage_rollups_daily add column provider_cost_micros bigint;

-- audit_log is append-only: the app has no path that edits or deletes an entry, and the database refuses one too.
create function audit_log_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_log is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end
$$;
create trigger audit_log_append_only before update or delete on audit_log
    for each row execute function audit_log_append_only();
create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function audit_log_append_only();
