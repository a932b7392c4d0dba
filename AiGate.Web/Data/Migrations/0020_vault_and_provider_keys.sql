-- vault_deks (Features/Vault): each owner's data-encryption key, stored only wrapped by the KEK (Vault__Kek);
-- kek_id is the wrapping KEK's fingerprint (first 8 hex of its SHA-256), which rotate-kek moves and
-- vault-status counts. Owners: 'platform' now, 'account:{id}' for BYOK later.
create table vault_deks (
    owner character varying(100) not null,
    version integer not null,
    wrapped bytea not null,
    kek_id character varying(8) not null,
    created_at timestamp with time zone not null,
    rewrapped_at timestamp with time zone,
    constraint pk_vault_deks primary key (owner, version)
);
create index ix_vault_deks_kek_id on vault_deks (kek_id);

-- provider_keys (Features/Providers): platform keys for upstream providers, sealed with the platform DEK
-- (associated data: owner, purpose, row id, key version); only the last 4 characters are kept in clear.
create table provider_keys (
    id uuid not null,
    provider character varying(64) not null,
    label character varying(100) not null,
    secret bytea not null,
    key_version integer not null,
    last4 character varying(4) not null,
    status character varying(16) not null,
    created_at timestamp with time zone not null,
    created_by character varying(256) not null,
    last_used_at timestamp with time zone,
    last_error_at timestamp with time zone,
    last_error character varying(300),
    disabled_at timestamp with time zone,
    retired_at timestamp with time zone,
    constraint pk_provider_keys primary key (id)
);
create index ix_provider_keys_provider_status on provider_keys (provider, status);
