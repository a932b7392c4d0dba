-- organizations (Features/Organizations, issue 17): every account is an organization. Balances, ledgers, plans,
-- subscriptions, keys, usage, alerts and budgets keep the column they always had (user_id, or owner_id on api_keys),
-- which now holds the ORGANIZATION's id. Each user's personal organization takes the user's own id, so no row of
-- money moves and no amount changes: the migration only adds the organizations and re-points the foreign keys.
create table organizations (
    id uuid not null,
    name character varying(100) not null,
    personal boolean not null,
    created_at timestamp with time zone not null,
    constraint pk_organizations primary key (id)
);

-- Roles: owner (exactly one), admin, billing, member. Per-member caps are null when not set.
create table organization_members (
    org_id uuid not null,
    user_id uuid not null,
    role character varying(16) not null,
    monthly_budget_micros bigint,
    requests_per_minute integer,
    tokens_per_minute bigint,
    joined_at timestamp with time zone not null,
    constraint pk_organization_members primary key (org_id, user_id),
    constraint fk_organization_members_organizations_org_id foreign key (org_id) references organizations (id) on delete cascade,
    constraint fk_organization_members_users_user_id foreign key (user_id) references users (id) on delete cascade
);
create index ix_organization_members_user_id on organization_members (user_id);
create unique index ix_organization_members_org_id on organization_members (org_id) where role = 'owner';

-- Invitations by e-mail: only the SHA-256 of the link's token is kept; accepted, revoked or expired ones stay for the record.
create table organization_invitations (
    id uuid not null,
    org_id uuid not null,
    email character varying(256) not null,
    normalized_email character varying(256) not null,
    role character varying(16) not null,
    token_hash bytea not null,
    invited_by uuid,
    created_at timestamp with time zone not null,
    expires_at timestamp with time zone not null,
    accepted_at timestamp with time zone,
    accepted_by uuid,
    revoked_at timestamp with time zone,
    constraint pk_organization_invitations primary key (id),
    constraint fk_organization_invitations_organizations_org_id foreign key (org_id) references organizations (id) on delete cascade
);
create unique index ix_organization_invitations_token_hash on organization_invitations (token_hash);
create index ix_organization_invitations_org_id_normalized_email on organization_invitations (org_id, normalized_email);

-- The organization the user last chose in the switcher (checked against their memberships on every request).
alter table users add column current_org_id uuid;

-- Keys name their creator (the member whose limits they carry); today's keys were created by their owner.
alter table api_keys add column created_by uuid;
update api_keys set created_by = owner_id;
alter table api_keys alter column created_by set not null;
create index ix_api_keys_created_by on api_keys (created_by);

-- A personal organization for every user there is, named after them, with them as its owner. An address may have 256
-- characters and a name 100: the name is the address's first 100 (the owner can rename it).
insert into organizations (id, name, personal, created_at)
select id, left(coalesce(email, user_name, 'Personal'), 100), true, created_at from users;
insert into organization_members (org_id, user_id, role, joined_at)
select id, id, 'owner', created_at from users;

-- ... and for every user to come, whatever creates them (sign-up, the create-user verb, demo data, tests).
create function create_personal_organization() returns trigger language plpgsql as $$
begin
    insert into organizations (id, name, personal, created_at)
    values (new.id, left(coalesce(new.email, new.user_name, 'Personal'), 100), true, new.created_at);
    insert into organization_members (org_id, user_id, role, joined_at) values (new.id, new.id, 'owner', new.created_at);
    return new;
end $$;
create trigger tr_users_personal_organization after insert on users
for each row execute function create_personal_organization();

-- The account's rows now hang off the organization (deleting an organization deletes them, as deleting a user did).
alter table api_keys drop constraint fk_api_keys_users_owner_id;
alter table api_keys add constraint fk_api_keys_organizations_owner_id foreign key (owner_id) references organizations (id) on delete cascade;
alter table credit_accounts drop constraint fk_credit_accounts_users_user_id;
alter table credit_accounts add constraint fk_credit_accounts_organizations_user_id foreign key (user_id) references organizations (id) on delete cascade;
alter table billing_accounts drop constraint fk_billing_accounts_users_user_id;
alter table billing_accounts add constraint fk_billing_accounts_organizations_user_id foreign key (user_id) references organizations (id) on delete cascade;
alter table alert_settings drop constraint fk_alert_settings_users_user_id;
alter table alert_settings add constraint fk_alert_settings_organizations_user_id foreign key (user_id) references organizations (id) on delete cascade;
alter table usage_alerts drop constraint fk_usage_alerts_users_user_id;
alter table usage_alerts add constraint fk_usage_alerts_organizations_user_id foreign key (user_id) references organizations (id) on delete cascade;
alter table low_balance_alerts drop constraint fk_low_balance_alerts_users_user_id;
alter table low_balance_alerts add constraint fk_low_balance_alerts_organizations_user_id foreign key (user_id) references organizations (id) on delete cascade;
alter table budget_stops drop constraint fk_budget_stops_users_user_id;
alter table budget_stops add constraint fk_budget_stops_organizations_user_id foreign key (user_id) references organizations (id) on delete cascade;
alter table user_provider_keys drop constraint fk_user_provider_keys_users_user_id;
alter table user_provider_keys add constraint fk_user_provider_keys_organizations_user_id foreign key (user_id) references organizations (id) on delete cascade;
