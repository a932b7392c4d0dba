-- provider_settings (Features/Providers): an admin's runtime switch per configured provider. No row = enabled;
-- a disabled provider's routes leave every instance's catalogue, so the router never tries it.
create table provider_settings (
    provider character varying(64) not null,
    enabled boolean not null,
    changed_at timestamp with time zone not null,
    constraint pk_provider_settings primary key (provider)
);
