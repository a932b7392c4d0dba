-- stream_checkpoints (Features/Credits): what each open stream has produced so far, written every few seconds,
-- so a stream on an instance that dies (kill -9, a lost machine) is still billed once that instance's lease is
-- swept (RELIABILITY F7). A row goes when its usage row is written, in the same statement.
create table stream_checkpoints (
    request_id character varying(64) not null,
    user_id uuid not null,
    key_id uuid not null,
    lease_id uuid not null,
    model_id character varying(128) not null,
    provider character varying(64) not null,
    prompt_tokens bigint not null,
    completion_tokens bigint not null,
    cached_tokens bigint not null,
    cost_micros bigint not null,
    provider_cost_micros bigint not null,
    started_at timestamp with time zone not null,
    updated_at timestamp with time zone not null,
    constraint pk_stream_checkpoints primary key (request_id)
);
create index ix_stream_checkpoints_lease_id on stream_checkpoints (lease_id);
