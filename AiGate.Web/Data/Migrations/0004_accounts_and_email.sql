-- Accounts: the last accepted authenticator time step (TOTP codes are single use).
alter table users add column totp_last_step bigint;

-- email_outbox: every e-mail the product sends, written in the same transaction as its cause,
-- sent by the email-outbox job (Resend, or the local mailbox in Development).
create table email_outbox (
    id uuid not null,
    user_id uuid,
    kind character varying(64) not null,
    to_address character varying(256) not null,
    subject character varying(300) not null,
    html_body text not null,
    text_body text not null,
    status character varying(16) not null,
    attempts integer not null,
    created_at timestamp with time zone not null,
    next_attempt_at timestamp with time zone not null,
    locked_until timestamp with time zone,
    sent_at timestamp with time zone,
    provider_message_id character varying(200),
    last_error character varying(1000),
    constraint pk_email_outbox primary key (id),
    constraint fk_email_outbox_users_user_id foreign key (user_id) references users (id) on delete cascade
);
create index ix_email_outbox_created_at on email_outbox (created_at);
create index ix_email_outbox_status_next_attempt_at on email_outbox (status, next_attempt_at);
create index ix_email_outbox_user_id on email_outbox (user_id);
