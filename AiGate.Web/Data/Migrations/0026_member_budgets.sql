-- member_budgets (Features/Credits, issue 17): each member's spend in the organization for the calendar month (UTC) the
-- row counts, and the part of their monthly budget (organization_members.monthly_budget_micros) that instances hold as
-- leases for requests in flight. A lease taken for a member with a budget takes its slice from the organization's
-- balance (credit_accounts.held_micros) and from the member's remaining budget (budget - spent - held) in one
-- transaction, so neither can be overspent across instances. The budget itself stays on organization_members; a new
-- month starts spent again at 0. No foreign keys: usage of a member removed meanwhile is still counted (as the ledger).
create table member_budgets (
    org_id uuid not null,
    user_id uuid not null,
    month date not null,
    spent_micros bigint not null,
    held_micros bigint not null,
    updated_at timestamp with time zone not null,
    constraint pk_member_budgets primary key (org_id, user_id),
    constraint ck_member_budgets_held check (held_micros >= 0)
);

-- The member whose budget a lease also holds (null: an organization-only lease).
alter table credit_leases add column member_id uuid;

-- The member whose spend a stream counts, so a stream cut off by a dead instance is counted against them too.
alter table stream_checkpoints add column member_id uuid;
