-- Usage rollups (hourly and daily aggregates, the rollup's watermark) and usage alerts (settings,
-- sent budget alerts, low-balance alerts, hard stops).

create table usage_rollups_hourly (
    hour timestamp with time zone not null,
    user_id uuid not null,
    key_id uuid not null,
    model_id character varying(128) not null,
    provider character varying(64) not null,
    requests bigint not null,
    prompt_tokens bigint not null,
    completion_tokens bigint not null,
    cached_tokens bigint not null,
    cost_micros bigint not null,
    errors bigint not null,
    latency_p50_ms integer not null,
    latency_p95_ms integer not null,
    constraint pk_usage_rollups_hourly primary key (user_id, hour, key_id, model_id, provider)
);

create table usage_rollups_daily (
    day date not null,
    user_id uuid not null,
    key_id uuid not null,
    model_id character varying(128) not null,
    provider character varying(64) not null,
    requests bigint not null,
    prompt_tokens bigint not null,
    completion_tokens bigint not null,
    cached_tokens bigint not null,
    cost_micros bigint not null,
    errors bigint not null,
    constraint pk_usage_rollups_daily primary key (user_id, day, key_id, model_id, provider)
);
create index ix_usage_rollups_daily_day on usage_rollups_daily (day);

create table usage_rollup_state (
    id integer not null,
    last_event_id bigint not null,
    raw_kept_from timestamp with time zone not null,
    updated_at timestamp with time zone not null,
    constraint pk_usage_rollup_state primary key (id)
);
-- The one row: nothing rolled up yet, nothing pruned yet.
insert into usage_rollup_state (id, last_event_id, raw_kept_from, updated_at) values (1, 0, '-infinity', now());

create table alert_settings (
    user_id uuid not null,
    monthly_budget_micros bigint,
    notify70 boolean not null,
    notify90 boolean not null,
    notify100 boolean not null,
    hard_stop boolean not null,
    low_balance_enabled boolean not null,
    low_balance_micros bigint not null,
    updated_at timestamp with time zone not null,
    constraint pk_alert_settings primary key (user_id),
    constraint fk_alert_settings_users_user_id foreign key (user_id) references users (id) on delete cascade
);

create table usage_alerts (
    user_id uuid not null,
    period date not null,
    threshold integer not null,
    budget_micros bigint not null,
    spend_micros bigint not null,
    created_at timestamp with time zone not null,
    constraint pk_usage_alerts primary key (user_id, period, threshold),
    constraint fk_usage_alerts_users_user_id foreign key (user_id) references users (id) on delete cascade
);

create table low_balance_alerts (
    user_id uuid not null,
    threshold_micros bigint not null,
    balance_micros bigint not null,
    created_at timestamp with time zone not null,
    constraint pk_low_balance_alerts primary key (user_id),
    constraint fk_low_balance_alerts_users_user_id foreign key (user_id) references users (id) on delete cascade
);

create table budget_stops (
    user_id uuid not null,
    period date not null,
    budget_micros bigint not null,
    spend_micros bigint not null,
    created_at timestamp with time zone not null,
    constraint pk_budget_stops primary key (user_id),
    constraint fk_budget_stops_users_user_id foreign key (user_id) references users (id) on delete cascade
);
