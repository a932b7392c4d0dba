-- app_instances: live instances report themselves every 10 s (InstanceRegistry); shared budgets such
-- as rate limits are split between the instances seen in the last 30 s.
create table app_instances (
    id character varying(64) not null,
    started_at timestamp with time zone not null,
    last_seen_at timestamp with time zone not null,
    constraint pk_app_instances primary key (id)
);
create index ix_app_instances_last_seen_at on app_instances (last_seen_at);
