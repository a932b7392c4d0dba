-- usage_events.error_code / error_message (issue 18, the request log's detail): what the client was answered when a
-- metered call failed (the OpenAI envelope's code, or its type when it has none, and its message, cut at 300
-- characters), so the request detail can say why. Null for calls that succeeded and for rows written before this.
alter table usage_events add column error_code character varying(64);
alter table usage_events add column error_message character varying(300);
