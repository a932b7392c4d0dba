-- Billing (issue 6): Stripe customers and plans per user, processed Stripe events (each id once),
-- and fulfilled payments (one row per Checkout Session or invoice) that refunds and disputes claw back from.

create table stripe_events (
    id character varying(255) not null,
    type character varying(100) not null,
    created bigint not null,
    processed_at timestamp with time zone not null,
    outcome character varying(500),
    constraint pk_stripe_events primary key (id)
);
create table stripe_payments (
    id character varying(255) not null,
    user_id uuid not null,
    kind character varying(16) not null,
    payment_intent_id character varying(255),
    amount_cents bigint not null,
    currency character varying(3) not null,
    credited_micros bigint not null,
    clawed_back_micros bigint not null,
    receipt_url character varying(1000),
    created_at timestamp with time zone not null,
    constraint pk_stripe_payments primary key (id)
);
create table billing_accounts (
    user_id uuid not null,
    stripe_customer_id character varying(100),
    plan_id character varying(32) not null,
    subscription_id character varying(100),
    subscription_status character varying(32),
    current_period_end timestamp with time zone,
    cancel_at_period_end boolean not null,
    past_due_since timestamp with time zone,
    dunning_step integer not null,
    dunning_next_at timestamp with time zone,
    disputed_at timestamp with time zone,
    state_as_of bigint not null,
    updated_at timestamp with time zone not null,
    constraint pk_billing_accounts primary key (user_id),
    constraint fk_billing_accounts_users_user_id foreign key (user_id) references users (id) on delete cascade
);
create unique index ix_billing_accounts_stripe_customer_id on billing_accounts (stripe_customer_id);
create index ix_billing_accounts_subscription_id on billing_accounts (subscription_id);
create index ix_billing_accounts_dunning_next_at on billing_accounts (dunning_next_at);
create unique index ix_stripe_payments_payment_intent_id on stripe_payments (payment_intent_id);
create index ix_stripe_payments_user_id_created_at on stripe_payments (user_id, created_at);
