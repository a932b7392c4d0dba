-- user_provider_keys (Features/Byok): provider keys users bring themselves (BYOK), sealed with the ACCOUNT's DEK
-- (owner 'account:{user id}', purpose 'byok-key', the row id); only the last 4 characters are kept in clear. Kind is
-- openai, anthropic, gemini (one key each per account) or custom (an OpenAI-compatible base URL, called as
-- byok/<label>/<model>; several per account, the label unique per account).
create table user_provider_keys (
    id uuid not null,
    user_id uuid not null,
    kind character varying(16) not null,
    label character varying(32) not null,
    base_url character varying(500),
    secret bytea not null,
    key_version integer not null,
    last4 character varying(4) not null,
    fallback_to_platform boolean not null,
    created_at timestamp with time zone not null,
    last_error_at timestamp with time zone,
    last_error character varying(300),
    constraint pk_user_provider_keys primary key (id),
    constraint fk_user_provider_keys_users_user_id foreign key (user_id) references users (id) on delete cascade
);
create unique index ix_user_provider_keys_user_id_label on user_provider_keys (user_id, label);

-- A call served with the user's own key (BYOK) is billed the BYOK fee, and marked so on its usage row.
-- The default (also in the EF model) fills the rows already there and keeps writers that predate the column working.
alter table usage_events add column byok boolean not null default false;
alter table stream_checkpoints add column byok boolean not null default false;
-- How many of a bucket's calls were BYOK (/api/v1/usage reports it per group); 0 for buckets rolled up before.
alter table usage_rollups_hourly add column byok_requests bigint not null default 0;
alter table usage_rollups_daily add column byok_requests bigint not null default 0;
